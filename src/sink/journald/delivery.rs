//! Delivery to journald: journald's [`Protocol`] for the delivery engine
//! ([`crate::sink::delivery`], which owns the queue, redelivery and outages; its tests with
//! this protocol against a scripted journald are in `sink/delivery/tests/journald.rs`).
//!
//! - An entry is in journald's native protocol ([`super::encode`]); sent again after journald
//!   was lost it carries `REDELIVERED=1`.
//! - journald reads at once, so what it has read is looked at after every flush that sent
//!   ([`Looks::AfterEachSend`]); it takes one datagram at a time and stores it before it takes
//!   the next, so the last one read is kept in flight until a later one is read.
//! - A reconnect is tried every [`RETRY_INTERVAL`], without backing off: journald's socket
//!   unit keeps the path while it restarts, and a connect costs nothing.

use std::borrow::Cow;
use std::time::Duration;

use super::encode::{encode_entry_cached, encode_field, message_of, PeerFields};
use crate::entry::Entry;
pub use crate::sink::delivery::RETRY_INTERVAL;
use crate::sink::delivery::{Looks, Protocol};

/// journald's native protocol, with the encoded fields of the last peer cached.
#[derive(Default)]
pub struct Journal {
    peer_fields: PeerFields,
}

impl Protocol for Journal {
    const PEER: &'static str = "journald";
    const MARK: &'static str = "REDELIVERED=1";
    /// A line of a hundred bytes or so with its fields. A new buffer is made this big at
    /// once: grown from empty it would be reallocated five or six times (measured: 40% of the
    /// entries of a burst found no spare buffer, and reallocating them was a fifth of the
    /// daemon's work).
    const ENTRY_CAPACITY: usize = 384;
    const RECONNECT_MAX: Duration = RETRY_INTERVAL;
    const TAKEN_UNSTORED: usize = 1;
    const LOOKS: Looks = Looks::AfterEachSend;

    fn encode(&mut self, out: &mut Vec<u8>, entry: &Entry<'_>) {
        encode_entry_cached(out, entry, &mut self.peer_fields);
    }

    fn mark_redelivered(encoded: &mut Vec<u8>) {
        encode_field(encoded, "REDELIVERED", b"1");
    }

    fn text_of(encoded: &[u8]) -> Cow<'_, str> {
        message_of(encoded)
    }
}
