//! What the delivery engine needs to know of a peer, and what differs between journald and a
//! syslog server: the [`Protocol`] (the bytes of an entry, its redelivery mark, how the peer
//! takes entries), the [`Transport`] (the socket), and the errno classes of a failed send
//! ([`classify`]), written here only.

use std::borrow::Cow;
use std::io::{self, IoSlice};
use std::time::{Duration, Instant};

use mio::Registry;

use crate::entry::Entry;

/// What differs between the peers an entry goes to, beside the socket: the bytes of an entry,
/// its redelivery mark, and how the peer takes entries. Its value holds the encoder's state.
pub trait Protocol: Default {
    /// The peer, in the outage notice: "journald", "the server".
    const PEER: &'static str;
    /// The redelivery mark, as the outage notice names it.
    const MARK: &'static str;
    /// The capacity of a new entry buffer (when no spare one is left).
    const ENTRY_CAPACITY: usize;
    /// The longest wait between two reconnects.
    const RECONNECT_MAX: Duration;
    /// Of the entries the peer has taken, how many of the newest it may not have stored yet
    /// (journald stores an entry after reading it): they stay in flight until a later one is
    /// taken.
    const TAKEN_UNSTORED: usize;
    /// When to look at what the peer has taken.
    const LOOKS: Looks;
    /// Writes `entry` into `out` (empty, with room).
    fn encode(&mut self, out: &mut Vec<u8>, entry: &Entry<'_>);
    /// Marks an encoded entry as perhaps sent before.
    fn mark_redelivered(encoded: &mut Vec<u8>);
    /// The text of an encoded entry, for stderr.
    fn text_of(encoded: &[u8]) -> Cow<'_, str>;
}

/// When [`Delivery::flush`](super::Delivery::flush) looks at what the peer has taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Looks {
    /// At the end of every flush that sent something, and again every `TRIM_RETRY` (10 ms)
    /// while some may not be taken; once all is taken, at the next send. For a peer that
    /// reads at once (journald): the look right after a send finds most of it read.
    AfterEachSend,
    /// `TRIM_RETRY` (10 ms) after a send, then again while some may not be taken, the wait
    /// doubling up to `up_to` while the peer takes nothing; and one last look at the drain.
    /// For a peer that acknowledges a round trip later (a TCP server).
    WhenDue { up_to: Duration },
}

/// The connection to the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    Down,
    /// A stream connect in progress.
    Connecting,
    Up,
}

/// How entries are delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFraming {
    /// One datagram per entry (journald, `/dev/log`, UDP).
    Datagram,
    /// RFC 6587 octet counting, `LEN SP MSG` (syslog over TCP).
    OctetCounting,
    /// The entry and a NUL byte (a stream `/dev/log`, as glibc's syslog(3)).
    NulTerminated,
}

/// What the engine needs from the socket to the peer. The defaults are those of a datagram
/// socket to a local reader that never rejects an entry.
pub trait Transport {
    type Protocol: Protocol;
    /// `journald at /run/systemd/journal/socket`, `syslog at tcp://host:port`, for messages.
    fn describe(&self) -> &str;
    fn state(&self) -> LinkState;
    /// Opens a new connection (the next address, if a name has several) and registers it for
    /// writable events. A stream connect may return [`LinkState::Connecting`].
    fn connect(&mut self, registry: &Registry, now: Instant) -> io::Result<LinkState>;
    /// Whether a connect in progress is done: [`LinkState::Up`], still connecting, or why not.
    fn finish_connect(&mut self) -> io::Result<LinkState> {
        Ok(self.state())
    }
    /// Addresses not tried yet since the last connection was made: the next is tried at once.
    fn untried(&self) -> usize {
        0
    }
    /// Closes the connection; `discard`: what the kernel has not sent yet is dropped (TCP).
    fn disconnect(&mut self, discard: bool);
    /// How entries are framed on the current connection.
    fn framing(&self) -> OutputFraming {
        OutputFraming::Datagram
    }
    /// Sends the first entries of `entries`, one datagram each, in one call; returns how many
    /// went, and the bytes each one occupies in `wire_len`. When the first cannot go the error
    /// says why (EMSGSIZE: too large for a datagram, see [`Transport::send_large`]).
    fn send_datagrams(&mut self, entries: &[&[u8]], wire_len: &mut [usize]) -> io::Result<usize>;
    /// Sends an entry too large for a datagram another way (journald: a sealed memfd); returns
    /// its wire bytes.
    fn send_large(&mut self, _entry: &[u8]) -> io::Result<usize> {
        Err(io::Error::from_raw_os_error(libc::EMSGSIZE))
    }
    /// Writes what the socket takes of `bufs` to the stream; returns how many bytes.
    fn write_stream(&mut self, _bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP))
    }
    /// Whether a send error concerns only the entry sent (UDP errors, a datagram too large
    /// for `/dev/log`), not the connection: the entry goes to stderr.
    fn rejects(&self, _error: &io::Error) -> bool {
        false
    }
    /// Whether [`Transport::unsettled_bytes`] says anything (not for UDP: a datagram is done
    /// once sent).
    fn tracks_unsettled(&self) -> bool {
        true
    }
    /// Bytes sent that the peer has not taken yet: not read (Unix), not acknowledged (TCP).
    fn unsettled_bytes(&self) -> io::Result<usize>;
    /// Whether a peer that died shows only at the next send (the local syslog daemon's
    /// datagram socket): its freed queue then reads as taken, so what a look finds taken is
    /// forgotten only once a later send has succeeded, which proves the peer was alive then.
    fn confirms_by_send(&self) -> bool {
        false
    }
    /// For a stream: an error if the peer closed the connection or it failed.
    fn check_open(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// Whether the peer is still there, without waiting, before entries a look found taken
    /// are forgotten (a datagram journald ignores; a dead journald's freed queue reads as
    /// all read). Only a [`Failure::Gone`] error counts.
    fn probe(&self) -> io::Result<()> {
        Ok(())
    }
    /// Whether unsettled bytes sit in our own send queue (TCP), where they are lost when the
    /// connection closes: the drain waits for them.
    fn holds_unsent(&self) -> bool {
        false
    }
    /// Waits at most `timeout`; `for_room`: returns early once the socket takes more (or a
    /// connect is done).
    fn wait(&self, timeout: Duration, for_room: bool);
}

/// What a failed send says: the errno classes of both sinks, written here only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The peer's queue or our socket buffer is full (or the send was interrupted): the peer
    /// is there, try again soon.
    Full,
    /// This process ran out of descriptors or memory: nothing to do with the peer.
    OutOfResources,
    /// The peer is not there (dead, stopped, its socket removed, the connection reset).
    Gone,
}

pub fn classify(error: &io::Error) -> Failure {
    match error.raw_os_error() {
        Some(libc::EAGAIN | libc::ENOBUFS | libc::EINTR) => Failure::Full,
        Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM) => Failure::OutOfResources,
        _ => Failure::Gone,
    }
}
