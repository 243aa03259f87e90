//! Reading datagrams in batches: one recvmmsg(2) takes up to [`BATCH`] datagrams, each with
//! its sender, its length as sent (MSG_TRUNC: a datagram longer than the slot is cut, and
//! said so) and the kernel's drop count (the SO_RXQ_OVFL control message). Owns the slots
//! and the system call; what a datagram becomes is `datagram.rs`'s.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Datagrams one recvmmsg(2) reads at most.
pub const BATCH: usize = 32;

/// Room for one SO_RXQ_OVFL control message (a u32), in u64 words so it is aligned.
const CONTROL_WORDS: usize = 4;

/// One datagram read.
#[derive(Debug, Clone, Copy)]
pub struct Datagram<'a> {
    pub from: SocketAddr,
    /// What was read of it: all of it, or the first slot's worth.
    pub bytes: &'a [u8],
    /// Its length as sent: more than `bytes.len()` when it was cut.
    pub sent_len: usize,
    /// The socket's count of datagrams dropped for want of buffer when this one was queued
    /// (absent while none was).
    pub kernel_drops: Option<u32>,
}

impl Datagram<'_> {
    pub fn truncated(&self) -> bool {
        self.sent_len > self.bytes.len()
    }
}

/// The slots of a batch: `BATCH` buffers of `size` bytes (allocated zeroed, so the pages a
/// datagram never wrote stay out of memory), their sender addresses and control messages.
pub struct Batch {
    size: usize,
    bufs: Vec<u8>,
    names: Vec<libc::sockaddr_storage>,
    controls: Vec<[u64; CONTROL_WORDS]>,
    /// What the last call read of each slot: its length as sent, the kernel's drop count,
    /// the length of its sender's address.
    got: Vec<(usize, Option<u32>, libc::socklen_t)>,
    len: usize,
}

impl Batch {
    /// Slots for datagrams of up to `size` bytes.
    pub fn new(size: usize) -> Batch {
        Batch {
            size,
            bufs: vec![0; size * BATCH],
            // SAFETY: sockaddr_storage is plain data, all zeroes a valid value.
            names: vec![unsafe { zeroed() }; BATCH],
            controls: vec![[0; CONTROL_WORDS]; BATCH],
            got: vec![(0, None, 0); BATCH],
            len: 0,
        }
    }

    pub fn slot_size(&self) -> usize {
        self.size
    }

    /// The datagrams the last [`Batch::receive`] read.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Reads up to `max` (at most [`BATCH`]) datagrams without waiting; returns how many
    /// (WouldBlock when there was none).
    pub fn receive(&mut self, fd: BorrowedFd<'_>, max: usize) -> io::Result<usize> {
        let n = max.clamp(1, BATCH);
        let mut iovecs: [libc::iovec; BATCH] = unsafe { zeroed() };
        // SAFETY: mmsghdr is plain data; every pointer in it is set below.
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        let base = self.bufs.as_mut_ptr();
        for i in 0..n {
            iovecs[i] = libc::iovec {
                // SAFETY: slot i is within `bufs` (BATCH slots of `size` bytes).
                iov_base: unsafe { base.add(i * self.size) }.cast(),
                iov_len: self.size,
            };
            let hdr = &mut msgs[i].msg_hdr;
            hdr.msg_name = (&mut self.names[i] as *mut libc::sockaddr_storage).cast();
            hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            hdr.msg_iov = &mut iovecs[i];
            hdr.msg_iovlen = 1;
            hdr.msg_control = self.controls[i].as_mut_ptr().cast();
            hdr.msg_controllen = size_of::<[u64; CONTROL_WORDS]>() as _;
        }
        // SAFETY: `n` initialised headers whose buffers live as long as the call.
        let r = unsafe {
            libc::recvmmsg(
                fd.as_raw_fd(),
                msgs.as_mut_ptr(),
                n as libc::c_uint,
                (libc::MSG_DONTWAIT | libc::MSG_TRUNC) as _,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            self.len = 0;
            return Err(io::Error::last_os_error());
        }
        self.len = r as usize;
        for (got, msg) in self.got.iter_mut().zip(&msgs[..self.len]) {
            let hdr = &msg.msg_hdr;
            *got = (msg.msg_len as usize, drops_of(hdr), hdr.msg_namelen);
        }
        Ok(self.len)
    }

    /// Datagram `i` of the last [`Batch::receive`] (`None` past its count, or for a sender
    /// address that is not IP, which a UDP socket never gives).
    pub fn get(&self, i: usize) -> Option<Datagram<'_>> {
        if i >= self.len {
            return None;
        }
        let (sent_len, kernel_drops, namelen) = self.got[i];
        // SAFETY: the kernel wrote a sockaddr of `namelen` bytes into the storage.
        let from = unsafe { socket2::SockAddr::new(self.names[i], namelen) }.as_socket()?;
        let start = i * self.size;
        let bytes = &self.bufs[start..start + sent_len.min(self.size)];
        Some(Datagram {
            from,
            bytes,
            sent_len,
            kernel_drops,
        })
    }
}

/// The SO_RXQ_OVFL count among a message's control messages.
fn drops_of(hdr: &libc::msghdr) -> Option<u32> {
    // SAFETY: the CMSG_* macros walk the control buffer the kernel filled, within
    // msg_controllen.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(hdr);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SO_RXQ_OVFL {
                let data = libc::CMSG_DATA(cmsg).cast::<u32>();
                return Some(data.read_unaligned());
            }
            cmsg = libc::CMSG_NXTHDR(hdr, cmsg);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    fn socket(buffer: usize) -> std::net::UdpSocket {
        super::super::socket::open("127.0.0.1:0".parse().unwrap(), buffer)
            .unwrap()
            .socket
    }

    #[test]
    fn a_batch_reads_several_datagrams_with_senders_and_cuts_a_long_one() {
        let rx = socket(1 << 16);
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        let mut batch = Batch::new(64);
        assert_eq!(
            batch.receive(rx.as_fd(), BATCH).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        tx.send_to(b"one", to).unwrap();
        tx.send_to(b"", to).unwrap();
        tx.send_to(&[b'x'; 100], to).unwrap();
        assert_eq!(batch.receive(rx.as_fd(), BATCH).unwrap(), 3);
        let d: Vec<Datagram<'_>> = (0..3).map(|i| batch.get(i).unwrap()).collect();
        assert!(batch.get(3).is_none());
        assert_eq!(d[0].from, tx.local_addr().unwrap());
        assert_eq!((d[0].bytes, d[0].truncated()), (&b"one"[..], false));
        assert_eq!((d[1].bytes, d[1].truncated()), (&b""[..], false));
        assert_eq!((d[2].bytes.len(), d[2].sent_len), (64, 100));
        assert!(d[2].truncated());
        assert_eq!(d[0].kernel_drops, None, "nothing dropped yet");
    }

    #[test]
    fn the_kernels_drops_come_with_the_next_datagram_queued() {
        // The smallest buffer the kernel grants: a burst overflows it.
        let rx = socket(4096);
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        let sent = 2000;
        for _ in 0..sent {
            tx.send_to(&[b'y'; 200], to).unwrap();
        }
        let mut batch = Batch::new(256);
        let mut read = 0;
        while let Ok(n) = batch.receive(rx.as_fd(), BATCH) {
            read += n;
        }
        // One more, queued after the drops, says how many there were.
        tx.send_to(b"last", to).unwrap();
        let n = batch.receive(rx.as_fd(), BATCH).unwrap();
        let drops = batch
            .get(n - 1)
            .unwrap()
            .kernel_drops
            .expect("drops counted");
        assert!(read < sent, "the burst overflowed the buffer: {read}");
        assert_eq!(read as u32 + drops, sent as u32);
    }
}
