//! Datagrams read while the sink has no room, held in memory in arrival order (up to
//! `udp_hold_buffer` bytes) until it has. UDP cannot be slowed down: while journald pauses,
//! what is not read is queued by the kernel only up to the receive buffer, then dropped. So
//! the input goes on reading into this hold, and stops reading (leaving the kernel to queue,
//! and to count what it drops) only when the hold is full. One byte ring: each datagram is a
//! fixed header (its sender, its length as sent, the kernel's drop count) and its bytes.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use super::receive::Datagram;

/// The bytes a held datagram takes besides its own.
pub const HEADER: usize = 36;

/// A hold this big (or bigger) after it has emptied is given back to the allocator.
const KEEP_CAPACITY: usize = 256 * 1024;

pub struct Held {
    ring: VecDeque<u8>,
    limit: usize,
    count: usize,
    /// The bytes of the datagram [`Held::pop`] took last (it lends them out).
    taken: Vec<u8>,
}

impl Held {
    /// A hold of `limit` bytes (0: nothing is held).
    pub fn new(limit: usize) -> Held {
        Held {
            ring: VecDeque::new(),
            limit,
            count: 0,
            taken: Vec::new(),
        }
    }

    /// A reload's new limit: what is held stays (a smaller limit only stops the holding of
    /// more until the hold is under it).
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    /// Datagrams held.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether a datagram of `len` bytes fits.
    pub fn fits(&self, len: usize) -> bool {
        self.ring.len() + HEADER + len <= self.limit
    }

    /// Holds a copy of `d`; false (nothing held) if it does not fit.
    pub fn push(&mut self, d: &Datagram<'_>) -> bool {
        if !self.fits(d.bytes.len()) {
            return false;
        }
        let mut header = [0u8; HEADER];
        header[0..4].copy_from_slice(&(d.bytes.len() as u32).to_le_bytes());
        header[4..8].copy_from_slice(&(d.sent_len as u32).to_le_bytes());
        if let Some(drops) = d.kernel_drops {
            header[8] = 1;
            header[9..13].copy_from_slice(&drops.to_le_bytes());
        }
        header[14..16].copy_from_slice(&d.from.port().to_be_bytes());
        match d.from {
            SocketAddr::V4(a) => {
                header[13] = 4;
                header[16..20].copy_from_slice(&a.ip().octets());
            }
            SocketAddr::V6(a) => {
                header[13] = 6;
                header[16..32].copy_from_slice(&a.ip().octets());
                header[32..36].copy_from_slice(&a.scope_id().to_le_bytes());
            }
        }
        self.ring.extend(header);
        self.ring.extend(d.bytes);
        self.count += 1;
        true
    }

    /// The oldest datagram held, taken out (its bytes lent until the next call).
    pub fn pop(&mut self) -> Option<Datagram<'_>> {
        if self.count == 0 {
            return None;
        }
        let mut header = [0u8; HEADER];
        for (h, b) in header.iter_mut().zip(self.ring.drain(..HEADER)) {
            *h = b;
        }
        let word = |at: usize| u32::from_le_bytes(header[at..at + 4].try_into().unwrap());
        let len = word(0) as usize;
        self.taken.clear();
        self.taken.extend(self.ring.drain(..len));
        self.count -= 1;
        if self.count == 0 && self.ring.capacity() >= KEEP_CAPACITY {
            self.ring = VecDeque::new();
        }
        let port = u16::from_be_bytes([header[14], header[15]]);
        let from = if header[13] == 4 {
            let ip: [u8; 4] = header[16..20].try_into().unwrap();
            SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port))
        } else {
            let ip: [u8; 16] = header[16..32].try_into().unwrap();
            SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(ip), port, 0, word(32)))
        };
        Some(Datagram {
            from,
            bytes: &self.taken,
            sent_len: word(4) as usize,
            kernel_drops: (header[8] == 1).then(|| word(9)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datagram<'a>(
        from: &str,
        bytes: &'a [u8],
        sent_len: usize,
        drops: Option<u32>,
    ) -> Datagram<'a> {
        Datagram {
            from: from.parse().unwrap(),
            bytes,
            sent_len,
            kernel_drops: drops,
        }
    }

    #[test]
    fn datagrams_come_back_in_order_with_sender_length_and_drop_count() {
        let mut held = Held::new(1 << 16);
        let sent = [
            datagram("192.0.2.7:514", b"<13>one", 7, None),
            datagram("[fe80::1%3]:40000", b"", 0, Some(5)),
            datagram("[2001:db8::9]:1", b"cut", 900, Some(u32::MAX)),
        ];
        for d in &sent {
            assert!(held.push(d));
        }
        assert_eq!(held.len(), 3);
        for want in &sent {
            let got = held.pop().unwrap();
            assert_eq!(got.from, want.from);
            assert_eq!(got.bytes, want.bytes);
            assert_eq!(got.sent_len, want.sent_len);
            assert_eq!(got.kernel_drops, want.kernel_drops);
        }
        assert!(held.pop().is_none());
        assert!(held.is_empty());
    }

    #[test]
    fn the_limit_counts_every_byte_and_nothing_is_held_past_it() {
        let limit = 3 * (HEADER + 100);
        let mut held = Held::new(limit);
        let d = datagram("10.0.0.1:9", &[b'x'; 100], 100, None);
        assert!(held.fits(100) && !held.fits(limit - HEADER + 1));
        assert!(held.push(&d) && held.push(&d) && held.push(&d));
        assert!(!held.fits(0));
        assert!(!held.push(&d), "a fourth does not fit");
        assert!(
            !held.push(&datagram("10.0.0.1:9", b"", 0, None)),
            "nor an empty one"
        );
        assert_eq!(held.len(), 3);
        held.pop().unwrap();
        assert!(held.fits(100) && !held.fits(101));
        let mut none = Held::new(0);
        assert!(!none.fits(0));
        assert!(!none.push(&d));
    }

    #[test]
    fn a_smaller_limit_keeps_what_is_held() {
        let mut held = Held::new(1 << 20);
        let d = datagram("10.0.0.1:9", b"kept", 4, None);
        assert!(held.push(&d) && held.push(&d));
        held.set_limit(10);
        assert!(!held.push(&d));
        assert_eq!(held.pop().unwrap().bytes, b"kept");
        assert_eq!(held.pop().unwrap().bytes, b"kept");
    }

    #[test]
    fn an_emptied_big_hold_gives_its_memory_back() {
        let mut held = Held::new(4 << 20);
        let big = vec![b'z'; 60_000];
        let d = datagram("10.0.0.1:9", &big, big.len(), None);
        for _ in 0..10 {
            assert!(held.push(&d));
        }
        assert!(held.ring.capacity() >= KEEP_CAPACITY);
        while held.pop().is_some() {}
        assert!(held.ring.capacity() < KEEP_CAPACITY);
    }
}
