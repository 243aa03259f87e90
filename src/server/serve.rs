//! Reading: the clients that may have data, one read each per turn while the sink has room
//! (the batching rule, `server.rs`), the lines they complete logged; a client throttled over
//! its source's budget parked; and closing a client, with what it leaves logged.

use std::time::Instant;

use super::{Server, SyslogLog, READS_PER_TURN};
use crate::admission::Refusal;
use crate::config::RateLimitAction;
use crate::connection::{Connection, DropReport, Line, ReadOutcome};
use crate::entry::Entry;
use crate::sink::Sink;
use crate::source::ConnectionEvent;

impl Server {
    pub(super) fn serve_ready_clients(&mut self) {
        for _ in 0..READS_PER_TURN {
            if !self.sink.has_room() {
                return;
            }
            let Some(key) = self.conns.next_ready() else {
                return;
            };
            self.serve(key);
        }
    }

    /// Reads once from a client and logs the lines it completes. A client whose source is
    /// over its line budget (throttle mode) is parked instead, unread, until the budget is
    /// back; a stop reads every client regardless.
    pub(super) fn serve(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let now = Instant::now();
        let action = self.sources.action();
        let source = self
            .sources
            .get_mut(conn.peer.addr.ip())
            .expect("a connection's source is known");
        if action == RateLimitAction::Throttle && self.phase.accepting() {
            if let Some(until) = source.budget.ready_at(now) {
                self.conns.park(key, until);
                return;
            }
        }
        let buffer_size = self.config.buffer_size;
        match conn.read(&mut self.read_buf[..buffer_size], now) {
            ReadOutcome::Data(n) => {
                self.counters.bytes_received += n as u64;
                let log = line_logger(&mut self.sink, &mut self.message, &mut self.syslog);
                let data = &self.read_buf[..n];
                let counts = conn.frame(data, now, &mut source.budget, action, log);
                self.summary.lines += counts.logged;
                self.summary.dropped += counts.dropped;
                self.conns.requeue(key);
            }
            ReadOutcome::Closed => self.close(key, "closed by the client"),
            ReadOutcome::Established => self.established(key, now),
            ReadOutcome::Refused(why) => self.refuse_connection(key, Refusal::Tls(why), now),
            ReadOutcome::WouldBlock => {
                if self.phase.stopping() {
                    // A TLS session cannot be carried to another process: closed (an end of
                    // file, so that its client reconnects to the next one).
                    if self.supervisor.fd_store().is_some() && !conn.is_tls() {
                        // Kept open for the file descriptor store.
                        conn.set_drained();
                    } else {
                        self.close(key, "daemon stopping");
                    }
                }
            }
            ReadOutcome::Interrupted => self.conns.requeue(key),
            ReadOutcome::Failed(e) => self.close(key, &format!("error: {e}")),
        }
    }

    /// Closes a client: logs its partial last line, unreported drops, and a summary. A TLS
    /// client gets close_notify only in reply to its own (a relay must read an end of file:
    /// `tls::Session::close`); one still in its handshake is logged as refused.
    pub(super) fn close(&mut self, key: usize, reason: &str) {
        let now = Instant::now();
        if self.conns.get_mut(key).is_some_and(|c| c.handshaking()) {
            let why = format!("TLS handshake not finished: {reason}");
            return self.refuse_connection(key, Refusal::Tls(why), now);
        }
        let Some(mut conn) = self.conns.remove(key, self.poll.registry()) else {
            return;
        };
        conn.shutdown();
        self.summary.lines += conn.finish(line_logger(
            &mut self.sink,
            &mut self.message,
            &mut self.syslog,
        ));
        if let Some(report) = conn.drop_report(now, true) {
            let limit = (self.config.max_lines_per_sec, self.config.max_lines_burst);
            log_dropped(&mut self.sink, &mut self.message, &conn, limit, report);
        }
        let ip = conn.peer.addr.ip();
        self.sources.disconnected(ip);
        if !self
            .sources
            .log_event(ip, ConnectionEvent::Disconnected, now)
        {
            return;
        }
        self.sink.log(
            &Entry::disconnected(
                &mut self.message,
                &conn.label,
                conn.peer,
                reason,
                conn.totals(now),
            )
            .with_tls(conn.tls_fields()),
        );
    }
}

/// Logs each line a connection hands over.
fn line_logger<'a>(
    sink: &'a mut Sink,
    message: &'a mut String,
    syslog: &'a mut SyslogLog,
) -> impl FnMut(Line<'_>) + 'a {
    move |line| log_line(sink, message, syslog, line, false)
}

/// Logs a line of a connection: a syslog entry if it has a syslog header; `carried`: the
/// unfinished line of a connection handed to the file descriptor store ([`Entry::carried`]).
pub(super) fn log_line(
    sink: &mut Sink,
    message: &mut String,
    syslog: &mut SyslogLog,
    line: Line<'_>,
    carried: bool,
) {
    let Line {
        label,
        peer,
        number,
        frame,
        tls,
        header,
    } = line;
    let entry = match header {
        None => Entry::line(message, label, peer, number, &frame),
        Some(header) => {
            let SyslogLog { fields, remote } = syslog;
            Entry::syslog(
                message, fields, label, peer, number, &frame, &header, remote,
            )
        }
    };
    let entry = entry.with_tls(tls);
    sink.log(&if carried { entry.carried() } else { entry });
}

pub(super) fn log_dropped(
    sink: &mut Sink,
    message: &mut String,
    conn: &Connection,
    limit: (u32, u32),
    report: DropReport,
) {
    sink.log(
        &Entry::dropped(
            message,
            &conn.label,
            conn.peer,
            report.count,
            limit,
            report.total,
        )
        .with_tls(conn.tls_fields()),
    );
}
