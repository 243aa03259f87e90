//! The accept and refuse path: new clients taken from the listening socket, each admitted
//! (`admission.rs`: the allow list and the limits) or refused and logged as the refusal rules
//! say; a TLS client is connected only once its handshake is over and its names allowed.

use std::net::SocketAddr;
use std::time::Instant;

use mio::net::TcpStream;

use super::Server;
use crate::admission::{Refusal, REFUSAL_WINDOW};
use crate::connection::Connection;
use crate::entry::{priority, Entry};
use crate::listener::Accepted;
use crate::source::ConnectionEvent;

/// Connections accepted before the loop polls again.
const ACCEPTS_PER_TURN: usize = 128;
impl Server {
    pub(super) fn accept_clients(&mut self, now: Instant) {
        for _ in 0..ACCEPTS_PER_TURN {
            match self.acceptor.accept(now) {
                Accepted::Client(stream, addr) => self.admit(stream, addr, now),
                Accepted::Nobody => return,
                Accepted::OutOfResources(report) => {
                    if let Some(text) = report {
                        self.announce(priority::ERR, &text);
                    }
                    return;
                }
            }
        }
    }

    pub(super) fn admit(&mut self, stream: TcpStream, addr: SocketAddr, now: Instant) {
        let ip = addr.ip().to_canonical();
        let open = (self.conns.len(), self.sources.open(ip));
        let checked = self
            .admission
            .check(ip, open.0, open.1)
            .and_then(|()| match self.tls {
                Some(_) => self.admission.check_handshake(),
                None => Ok(()),
            });
        if let Err(refusal) = checked {
            return self.refuse(addr, refusal, now);
        }
        let mut conn = Connection::new(stream, addr, self.next_id, &self.config, now);
        if let Some(tls) = &self.tls {
            conn.start_tls(tls.session(now));
        }
        let (label, peer, tls) = (conn.label.clone(), conn.peer, conn.is_tls());
        if let Err(e) = self.conns.insert(conn, self.poll.registry()) {
            return self.refuse(addr, Refusal::CannotWatch(e.to_string()), now);
        }
        self.next_id += 1;
        self.sources.connected(ip, now);
        if tls {
            // Connected once its handshake is over (see `established`); refused if it fails.
            self.admission.handshake_started();
            return;
        }
        self.summary.connections += 1;
        if self.sources.log_event(ip, ConnectionEvent::Connected, now) {
            self.sink
                .log(&Entry::connected(&mut self.message, &label, peer, None));
        }
    }

    /// A TLS client's handshake is over: admitted if `tls.allow_names` has its certificate's
    /// names, and logged as connected (with who it is) only now.
    pub(super) fn established(&mut self, key: usize, now: Instant) {
        self.admission.handshake_ended();
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if let Some(tls) = &self.tls {
            if !tls.admits(conn.tls_names()) {
                let names = crate::tls::list_names(conn.tls_names());
                return self.refuse_connection(key, Refusal::NameNotAllowed(names), now);
            }
        }
        self.summary.connections += 1;
        let ip = conn.peer.addr.ip();
        if self.sources.log_event(ip, ConnectionEvent::Connected, now) {
            self.sink.log(&Entry::connected(
                &mut self.message,
                &conn.label,
                conn.peer,
                conn.tls_fields(),
            ));
        }
        // Lines may have come with the last handshake message.
        self.conns.requeue(key);
    }

    /// Turns away a client already in the loop (a TLS handshake that failed, timed out, or
    /// whose certificate names are not allowed): closed, and logged as a refusal.
    pub(super) fn refuse_connection(&mut self, key: usize, refusal: Refusal, now: Instant) {
        let Some(conn) = self.conns.remove(key, self.poll.registry()) else {
            return;
        };
        if conn.handshaking() {
            self.admission.handshake_ended();
        }
        self.sources.disconnected(conn.peer.addr.ip());
        self.refuse(conn.peer.addr, refusal, now);
    }

    /// Logs a refused connection as the admission's report rules say; the stream is closed by
    /// the caller dropping it.
    pub(super) fn refuse(&mut self, addr: SocketAddr, refusal: Refusal, now: Instant) {
        self.summary.refused += 1;
        *self
            .counters
            .connections_refused
            .entry(refusal.label())
            .or_default() += 1;
        if refusal.is_failed_handshake() {
            self.counters.tls_handshakes_failed += 1;
        }
        let addr = crate::entry::canonical(addr);
        let report = self.admission.refused(now);
        self.log_refused_summary(report.summary_first);
        if report.log_this {
            let reason = refusal.to_string();
            self.sink
                .log(&Entry::refused(&mut self.message, addr, &reason));
        }
    }

    /// Refusals not logged one by one, as one entry.
    pub(super) fn log_refused_summary(&mut self, refused: Option<u64>) {
        if let Some(n) = refused {
            let entry = Entry::refused_summary(&mut self.message, n, REFUSAL_WINDOW);
            self.sink.log(&entry);
        }
    }
}
