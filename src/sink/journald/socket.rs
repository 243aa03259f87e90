//! The system calls behind the journald sink: the datagram socket to journald (a
//! [`Transport`] of the delivery engine), sendmmsg(2) for a batch, a sealed memfd for an entry
//! too large for a datagram, SIOCOUTQ for what journald has not read yet, and one descriptor
//! held in reserve for when the process runs out of them.

use std::fs::File;
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};

use super::delivery::Journal;
use crate::sink::delivery::{LinkState, Transport};
use crate::sink::syscall;

/// How long one send may wait for room in journald's queue.
const SEND_TIMEOUT: Duration = Duration::from_millis(2);

/// The journal socket: a datagram socket connected to journald's native-protocol socket.
pub struct JournalSocket {
    path: PathBuf,
    /// `journald at PATH`, for messages.
    description: String,
    token: Token,
    socket: Option<UnixDatagram>,
    /// A descriptor held in reserve: when the process is out of them (clients took them all),
    /// it is given up so that a memfd for a large entry, or a socket to reconnect, can still
    /// be made. Without it the sink could wait for a descriptor that only reading clients
    /// (which waits for the sink) would free.
    reserve: Option<File>,
}

impl JournalSocket {
    /// Not connected yet; `token` is the one it registers with for writable events.
    pub fn new(path: &Path, token: Token) -> JournalSocket {
        JournalSocket {
            path: path.to_owned(),
            description: format!("journald at {}", path.display()),
            token,
            socket: None,
            reserve: open_reserve(),
        }
    }

    /// The journal socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes the reserve descriptor back after it was given up, if one is free by now.
    fn restore_reserve(&mut self) {
        if self.reserve.is_none() {
            self.reserve = open_reserve();
        }
    }
}

impl Transport for JournalSocket {
    type Protocol = Journal;

    fn describe(&self) -> &str {
        &self.description
    }

    fn state(&self) -> LinkState {
        match self.socket {
            Some(_) => LinkState::Up,
            None => LinkState::Down,
        }
    }

    fn connect(&mut self, registry: &Registry, _: Instant) -> io::Result<LinkState> {
        self.restore_reserve();
        let socket = with_reserve(&mut self.reserve, UnixDatagram::unbound)?;
        socket.connect(&self.path)?;
        // Blocking, with a short timeout: when journald's queue is full (it holds only
        // net.unix.max_dgram_qlen datagrams: 512 where systemd is PID 1, the kernel's 10
        // elsewhere) a send waits in the kernel for the next free slot, as a plain blocking
        // sender does, instead of failing with EAGAIN and waking the loop for every slot
        // journald frees. A journald that does not read (stopped, hung) costs SEND_TIMEOUT
        // per attempt; then the entries wait as before and the server stops reading.
        socket.set_write_timeout(Some(SEND_TIMEOUT))?;
        registry.register(
            &mut SourceFd(&socket.as_raw_fd()),
            self.token,
            Interest::WRITABLE,
        )?;
        self.socket = Some(socket);
        Ok(LinkState::Up)
    }

    fn disconnect(&mut self, _: bool) {
        // Closing the socket also removes it from the poll set.
        self.socket = None;
    }

    fn send_datagrams(&mut self, entries: &[&[u8]], wire_len: &mut [usize]) -> io::Result<usize> {
        self.restore_reserve();
        let socket = self.socket.as_ref().ok_or_else(not_connected)?;
        syscall::sendmmsg(socket.as_raw_fd(), entries, wire_len, 0)
    }

    fn send_large(&mut self, entry: &[u8]) -> io::Result<usize> {
        let socket = self.socket.as_ref().ok_or_else(not_connected)?;
        with_reserve(&mut self.reserve, || send_memfd(socket, entry)).map(|()| 0)
    }

    fn unsettled_bytes(&self) -> io::Result<usize> {
        let socket = self.socket.as_ref().ok_or_else(not_connected)?;
        syscall::unsettled_bytes(socket.as_raw_fd())
    }

    fn probe(&self) -> io::Result<()> {
        let socket = self.socket.as_ref().ok_or_else(not_connected)?;
        // An empty datagram: journald ignores it (checked with systemd 252); a journald that
        // died refuses it (ECONNREFUSED). MSG_DONTWAIT: a full queue answers EAGAIN at once.
        nix::sys::socket::send(socket.as_raw_fd(), &[], MsgFlags::MSG_DONTWAIT)?;
        Ok(())
    }

    fn wait(&self, timeout: Duration, for_room: bool) {
        let socket = self.socket.as_ref().filter(|_| for_room);
        syscall::wait_writable(socket.map(|s| s.as_fd()), timeout);
    }
}

fn not_connected() -> io::Error {
    io::Error::from_raw_os_error(libc::ENOTCONN)
}

fn open_reserve() -> Option<File> {
    File::open("/dev/null").ok()
}

/// Runs `f`; if it fails for want of a file descriptor, gives up the reserved one and runs
/// it again, then takes the reserve back if a descriptor is free by then (else later).
fn with_reserve<T>(
    reserve: &mut Option<File>,
    mut f: impl FnMut() -> io::Result<T>,
) -> io::Result<T> {
    match f() {
        Err(e) if reserve.is_some() && e.raw_os_error() == Some(libc::EMFILE) => {
            *reserve = None;
            let result = f();
            *reserve = open_reserve();
            result
        }
        result => result,
    }
}

/// Sends one entry as a sealed memfd, the way journald takes entries too large for a
/// datagram.
fn send_memfd(socket: &UnixDatagram, data: &[u8]) -> io::Result<()> {
    let memfd = crate::memfd::sealed_memfd(data, c"tcp-listener-entry")?;
    let fds = [memfd.as_raw_fd()];
    let no_data: [IoSlice<'_>; 0] = [];
    sendmsg::<UnixAddr>(
        socket.as_raw_fd(),
        &no_data,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )?;
    Ok(())
}
