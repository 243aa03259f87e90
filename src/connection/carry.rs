//! What a connection carries over a restart (systemd's file descriptor store, `fdstore.rs`):
//! [`ConnectionState`], what it is saved as at a stop and restored from in the next process,
//! and the unfinished line it logs as partial when it is handed over.

use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use mio::net::TcpStream;

use super::{finish_line, scope_of, Connection, Line, Sender};
use crate::config::Config;
use crate::entry::text_room;
use crate::framing::{Framer, FramerState};
use crate::syslog_message::Sticky;

/// What one connection needs to go on in the next process.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionState {
    pub id: u64,
    pub peer: SocketAddr,
    /// How long ago it was opened, and last sent something.
    pub age: Duration,
    pub idle: Duration,
    pub bytes: u64,
    pub lines: u64,
    pub dropped: u64,
    /// Dropped lines not reported yet.
    pub unreported_drops: u64,
    pub dropping_line: bool,
    pub framer: FramerState,
    /// Syslog framing: the header of the message being cut in pieces, if any
    /// (`syslog_message::Sticky::save`).
    pub sticky: Option<Vec<u8>>,
}

impl Connection {
    /// A connection carried over from the previous process (systemd's file descriptor store),
    /// going on from its saved state under the configuration in force now. A state that
    /// cannot be used gives the stream back, with the reason.
    pub fn restore(
        stream: TcpStream,
        saved: &ConnectionState,
        config: &Config,
        now: Instant,
    ) -> Result<Connection, (TcpStream, String)> {
        // The state's peer must be the socket's: it is what every entry names.
        let actual = stream.peer_addr().map(crate::entry::canonical);
        let same = actual.as_ref().is_ok_and(|a| {
            a.ip() == saved.peer.ip()
                && a.port() == saved.peer.port()
                && scope_of(*a) == scope_of(saved.peer)
        });
        if !same {
            let actual = actual.map_or_else(|e| e.to_string(), |a| a.to_string());
            return Err((
                stream,
                format!(
                    "the state names {} as its peer, the socket {actual}",
                    saved.peer
                ),
            ));
        }
        let sticky = match saved.sticky.as_deref().map(Sticky::restore) {
            None => None,
            Some(Some(sticky)) => Some(Box::new(sticky)),
            Some(None) => return Err((stream, "a syslog header that cannot be".into())),
        };
        let mut conn = Connection::new(stream, saved.peer, saved.id, config, now);
        let room = text_room(config.max_line_length, &conn.label);
        conn.framer = match Framer::restore(saved.framer.clone(), room) {
            Ok(framer) => framer,
            Err(why) => return Err((conn.stream, why)),
        };
        conn.framer.reconfigure(config.framing, room);
        conn.sticky = sticky;
        conn.dropping_line = saved.dropping_line;
        conn.opened = now.checked_sub(saved.age).unwrap_or(now);
        conn.last_active = now.checked_sub(saved.idle).unwrap_or(now);
        conn.bytes = saved.bytes;
        conn.lines = saved.lines;
        conn.dropped = saved.dropped;
        conn.drop_reports.count(now, saved.unreported_drops);
        Ok(conn)
    }

    /// What this connection needs to go on in another process.
    pub fn save(&self, now: Instant) -> ConnectionState {
        ConnectionState {
            id: self.peer.connection_id,
            peer: self.peer.addr,
            age: now.duration_since(self.opened),
            idle: now.duration_since(self.last_active),
            bytes: self.bytes,
            lines: self.lines,
            dropped: self.dropped,
            unreported_drops: self.drop_reports.pending(),
            dropping_line: self.dropping_line,
            framer: self.framer.save(),
            sticky: self.sticky.as_ref().map(|s| s.save()),
        }
    }

    /// The socket, to hand it to the file descriptor store.
    pub fn socket(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }

    /// Bytes of an unfinished line (or frame) held.
    pub fn unfinished(&self) -> usize {
        self.framer.buffered()
    }

    /// The daemon is handing this connection to the next process: its unfinished line, if
    /// any (and not the rest of a line being dropped), goes to `log` as a partial line now
    /// (so that a plain stop loses nothing), as [`Connection::finish`] would log it, and is
    /// kept: if the next process takes the connection back, it logs the whole line under the
    /// same line number. Returns how many lines it began (0 or 1: 0 if pieces of the line
    /// were logged already).
    pub fn log_carried(&self, log: impl FnMut(Line<'_>)) -> u64 {
        let sender = Sender {
            label: &self.label,
            peer: self.peer,
            tls: self.tls_fields(),
        };
        let (mut framer, mut sticky, mut lines) =
            (self.framer.clone(), self.sticky.clone(), self.lines);
        finish_line(
            &mut framer,
            &mut sticky,
            self.dropping_line,
            &mut lines,
            sender,
            log,
        )
    }
}
