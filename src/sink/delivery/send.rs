//! How the delivery engine sends what is queued: datagrams, [`BATCH`] per sendmmsg(2) (one
//! too large for a datagram alone, another way), or frames on a stream, [`BATCH`] per
//! sendmsg(2), a frame cut short resumed where it stopped; and what a sent entry becomes (in
//! flight until the peer has taken it).

use std::io::{self, IoSlice, Write};
use std::time::Instant;

use super::{Delivery, InFlight, Looks, OutputFraming, Protocol, Transport, BATCH};
use crate::sink::decimal_bytes;

impl<T: Transport> Delivery<T> {
    /// Sends queued entries; stops at the first error that is not about one entry (a full
    /// queue, the peer gone), leaving the rest queued.
    pub(super) fn send_pending(&mut self, now: Instant) -> io::Result<()> {
        match self.transport.framing() {
            OutputFraming::Datagram => self.send_datagrams(now),
            framing => {
                // A server that closed the connection is noticed before writing into it.
                self.transport.check_open()?;
                self.send_stream(framing, now)
            }
        }
    }

    fn send_datagrams(&mut self, now: Instant) -> io::Result<()> {
        let mut wire_len = [0; BATCH];
        while !self.pending.is_empty() {
            let mut batch: [&[u8]; BATCH] = [&[]; BATCH];
            let n = self.pending.len().min(BATCH);
            for (slot, encoded) in batch.iter_mut().zip(&self.pending) {
                *slot = encoded;
            }
            match self.transport.send_datagrams(&batch[..n], &mut wire_len) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(sent) => {
                    for &len in &wire_len[..sent] {
                        self.sent(len, now);
                    }
                }
                Err(e) if self.transport.rejects(&e) => self.reject_front(&e),
                // Too large for a datagram: this one goes alone, another way.
                Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => {
                    let front = self.pending.front().expect("not empty");
                    let len = self.transport.send_large(front)?;
                    self.sent(len, now);
                }
                Err(e) => return Err(e),
            }
            self.maybe_trim(now)?;
        }
        Ok(())
    }

    fn send_stream(&mut self, framing: OutputFraming, now: Instant) -> io::Result<()> {
        while !self.pending.is_empty() {
            let n = self.pending.len().min(BATCH);
            let mut prefixes = [[0u8; PREFIX_MAX]; BATCH];
            let mut prefix_len = [0; BATCH];
            if framing == OutputFraming::OctetCounting {
                for (i, encoded) in self.pending.iter().take(n).enumerate() {
                    prefix_len[i] = octet_count_prefix(&mut prefixes[i], encoded.len());
                }
            }
            let mut slices = [IoSlice::new(&[]); 2 * BATCH];
            for (i, encoded) in self.pending.iter().take(n).enumerate() {
                let start = PREFIX_MAX - prefix_len[i];
                (slices[2 * i], slices[2 * i + 1]) = match framing {
                    OutputFraming::NulTerminated => (IoSlice::new(encoded), IoSlice::new(b"\0")),
                    _ => (IoSlice::new(&prefixes[i][start..]), IoSlice::new(encoded)),
                };
            }
            let mut bufs = &mut slices[..2 * n];
            IoSlice::advance_slices(&mut bufs, self.written);
            let wanted: usize = bufs.iter().map(|b| b.len()).sum();
            let written = self.transport.write_stream(bufs)?;
            if written == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            // Whole frames move to the in-flight entries; a part of one is remembered.
            let mut left = self.written + written;
            while let Some(front) = self.pending.front() {
                let len = frame_len(framing, front.len());
                if left < len {
                    break;
                }
                left -= len;
                self.sent(len, now);
            }
            self.written = left;
            self.maybe_trim(now)?;
            if written < wanted {
                // The socket is full: the next write would say EAGAIN.
                return Err(io::Error::from_raw_os_error(libc::EAGAIN));
            }
        }
        Ok(())
    }

    /// Moves the front entry, just sent, to the in-flight entries until the peer has taken
    /// it (or forgets it where that cannot be told: UDP).
    fn sent(&mut self, wire_len: usize, now: Instant) {
        let encoded = self.pending.pop_front().expect("sent from pending");
        let marked = self.pending_marked > 0;
        self.pending_marked = self.pending_marked.saturating_sub(1);
        self.stats.delivered += 1;
        self.sends += 1;
        if !self.transport.tracks_unsettled() {
            self.recycle(encoded);
            return;
        }
        // The send worked: the peer was alive at the last look, which it can now be trusted.
        for _ in 0..std::mem::take(&mut self.taken_unconfirmed) {
            let sent = self.in_flight.pop_front().expect("taken from in flight");
            self.recycle(sent.encoded);
        }
        self.in_flight.push_back(InFlight {
            encoded,
            wire_len,
            marked,
        });
        self.sends_since_trim += 1;
        if matches!(T::Protocol::LOOKS, Looks::WhenDue { .. }) && self.trim_at.is_none() {
            self.trim_at = Some(now + self.trim_retry);
        }
    }

    /// An entry the peer cannot take (a UDP error, a datagram too large): to stderr.
    fn reject_front(&mut self, error: &io::Error) {
        let encoded = self.pending.pop_front().expect("rejected from pending");
        self.pending_marked = self.pending_marked.saturating_sub(1);
        self.stats.undelivered += 1;
        let _ = writeln!(
            io::stderr(),
            "tcp-listener: {} did not take an entry ({error}): {}",
            self.transport.describe(),
            T::Protocol::text_of(&encoded)
        );
        self.recycle(encoded);
    }
}

/// Room for `LEN SP` before a frame.
const PREFIX_MAX: usize = 21;

/// Writes `LEN SP` at the end of `buf`; returns its length.
fn octet_count_prefix(buf: &mut [u8; PREFIX_MAX], len: usize) -> usize {
    let mut digits = [0; 20];
    let digits = decimal_bytes(&mut digits, len as u64);
    let start = PREFIX_MAX - 1 - digits.len();
    buf[start..PREFIX_MAX - 1].copy_from_slice(digits);
    buf[PREFIX_MAX - 1] = b' ';
    PREFIX_MAX - start
}

/// The bytes an entry of `len` bytes occupies on the wire.
fn frame_len(framing: OutputFraming, len: usize) -> usize {
    match framing {
        OutputFraming::Datagram => len,
        OutputFraming::OctetCounting => {
            let mut digits = [0; 20];
            decimal_bytes(&mut digits, len as u64).len() + 1 + len
        }
        OutputFraming::NulTerminated => len + 1,
    }
}
