//! The system calls both sinks' sockets make alike: sendmmsg(2) of a batch of datagrams,
//! SIOCOUTQ for the bytes the peer has not taken yet, and a wait for room to send.

use std::io;
use std::os::fd::{BorrowedFd, RawFd};
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::delivery::BATCH;

/// Sends the first entries of `entries` (at most [`BATCH`]) on `fd`, one datagram each, with
/// one sendmmsg(2) and `flags`; returns how many went, and the bytes of each in `wire_len`.
pub fn sendmmsg(
    fd: RawFd,
    entries: &[&[u8]],
    wire_len: &mut [usize],
    flags: libc::c_int,
) -> io::Result<usize> {
    let n = entries.len().min(BATCH).min(wire_len.len());
    // SAFETY: zeroed iovec/mmsghdr are valid "empty" values; every pointer set below points
    // into `entries` or `iov`, which outlive the call and are not touched until it returns.
    let mut iov: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
    let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
    for (i, entry) in entries[..n].iter().enumerate() {
        iov[i] = libc::iovec {
            iov_base: entry.as_ptr() as *mut libc::c_void,
            iov_len: entry.len(),
        };
    }
    for i in 0..n {
        hdrs[i].msg_hdr.msg_iov = &mut iov[i];
        hdrs[i].msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: `hdrs[..n]` are initialised as above.
    let rc = unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), n as _, flags as _) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let sent = rc as usize;
    for (len, hdr) in wire_len.iter_mut().zip(&hdrs[..sent]) {
        *len = hdr.msg_len as usize;
    }
    Ok(sent)
}

/// Bytes sent on `fd` that the peer has not taken (SIOCOUTQ): for a Unix socket those it has
/// not read yet, for TCP those it has not acknowledged.
pub fn unsettled_bytes(fd: RawFd) -> io::Result<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: TIOCOUTQ (= SIOCOUTQ) writes one c_int.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut n) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n.max(0) as usize)
}

/// Waits at most `timeout` (1 ms to 1 s) for room to send on `fd`; without one, sleeps.
pub fn wait_writable(fd: Option<BorrowedFd<'_>>, timeout: Duration) {
    let Some(fd) = fd else {
        std::thread::sleep(timeout);
        return;
    };
    let ms = timeout.as_millis().clamp(1, 1000) as u16;
    let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
    let _ = poll(&mut fds, PollTimeout::from(ms));
}
