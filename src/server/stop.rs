//! The stop: SIGTERM ends accepting, each client is read until it has given everything it
//! had sent ([`Phase`]), then the connections go to the file descriptor store if there is one
//! (`fdstore/handoff.rs`) or are closed, what is left is delivered, and the last entry says
//! what was served and whether anything was not logged ([`stop_report`]).

use std::time::{Duration, Instant};

use super::serve::log_line;
use super::Server;
use crate::connection::Line;
use crate::entry::priority;
use crate::fdstore::handoff::{self, HandOver};
use crate::summary::Summary;

/// At the end of a stop: time to deliver what is left, at least.
const STOP_DRAIN_MIN: Duration = Duration::from_millis(200);

/// Where the daemon is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Serving,
    /// Asked to stop: no more accepting; each client is read until it has nothing more to
    /// give (then it is closed), until `deadline` at the latest.
    Stopping {
        deadline: Instant,
    },
}

impl Phase {
    pub(super) fn accepting(self) -> bool {
        self == Phase::Serving
    }

    pub(super) fn stopping(self) -> bool {
        !self.accepting()
    }

    /// Starts the stop, to be over by `deadline`; false if it had started already.
    pub(super) fn stop(&mut self, deadline: Instant) -> bool {
        if self.stopping() {
            return false;
        }
        *self = Phase::Stopping { deadline };
        true
    }

    /// Whether the reading part of the stop is over.
    pub(super) fn reading_done(self, now: Instant, open: usize) -> bool {
        match self {
            Phase::Serving => false,
            Phase::Stopping { deadline } => open == 0 || now >= deadline,
        }
    }

    pub(super) fn wake_at(self) -> Option<Instant> {
        match self {
            Phase::Serving => None,
            Phase::Stopping { deadline } => Some(deadline),
        }
    }
}

impl Server {
    /// SIGTERM: no more accepting; each client is read until it has nothing more to give
    /// (which includes everything its kernel had received at the signal, noted as its
    /// `stop_quota`), however far over its budget its source is, and closed; all within
    /// `stop_timeout_secs`. A client still sending at the deadline is closed with its bytes
    /// unread, which resets the connection, so its sender learns of it; of those, what had
    /// arrived before the signal is counted as not logged.
    pub(super) fn begin_stop(&mut self, signal: &str) {
        let timeout = Duration::from_secs(self.config.stop_timeout_secs);
        if !self.phase.stop(Instant::now() + timeout) {
            return;
        }
        self.supervisor.stopping();
        if self.supervisor.fd_store().is_none() || self.acceptor.from_systemd() {
            // (A socket unit's listening socket stays with systemd: nothing to store.)
            self.acceptor.close(self.poll.registry());
        } else {
            // Kept (not accepting) for the file descriptor store: clients that connect now
            // wait in its queue for the next process.
            self.handed_listener = self.acceptor.take(self.poll.registry());
        }
        let mut bytes = 0;
        for (_, conn) in self.conns.iter_mut() {
            conn.begin_stop();
            bytes += conn.stop_quota().unwrap_or(0);
        }
        self.announce(
            priority::INFO,
            &format!(
                "{signal}: stopped accepting; reading the {bytes} bytes the kernel had received from {} \
                 clients",
                self.conns.len()
            ),
        );
        self.conns.unpark_all();
        self.conns.mark_all_ready();
        self.begin_stop_udp();
    }

    pub(super) fn finish(mut self) -> Summary {
        let deadline = match self.phase {
            Phase::Stopping { deadline } => deadline,
            Phase::Serving => Instant::now(),
        };
        // The manager's queue is waited on until the stop's deadline, no longer.
        let handed = self.hand_over(deadline.max(Instant::now() + STOP_DRAIN_MIN));
        // Clients not read to the end in time: what they had sent is counted, not logged, and
        // they are reset (even when the count emptied their socket, which a plain close would
        // end with an end of file: the sign that everything was read).
        for key in self.conns.keys_where(|_| true) {
            if let Some(conn) = self.conns.get_mut(key) {
                let (bytes, lines) = conn.discard_quota(&mut self.read_buf);
                self.summary.unread_bytes += bytes;
                self.summary.unread_lines += lines;
                if bytes > 0 {
                    conn.reset_on_close();
                }
            }
            self.close(key, "daemon stopping");
        }
        let refused = self.admission.take_unreported();
        self.log_refused_summary(refused);
        self.log_connection_summaries(Instant::now(), true);
        self.finish_udp(handed.as_ref().is_some_and(|h| h.udp_stored));
        let drain_until = deadline.max(Instant::now() + STOP_DRAIN_MIN);
        self.sink.drain(drain_until, self.poll.registry());
        let stats = self.sink.stats();
        self.summary.undelivered = stats.undelivered;
        self.summary.to_stderr = stats.fallback;
        self.summary.unsent_notifications = self.supervisor.unsent().0;
        let (priority, text) = stop_report(
            &self.summary,
            handed.as_ref(),
            self.config.stop_timeout_secs,
        );
        self.announce(priority, &text);
        self.sink
            .drain(Instant::now() + STOP_DRAIN_MIN, self.poll.registry());
        let stats = self.sink.stats();
        let mut summary = self.summary;
        summary.undelivered = stats.undelivered;
        summary.to_stderr = stats.fallback;
        summary
    }

    /// At the end of a stop, with a file descriptor store: hands the connections, the
    /// listening socket and the state to it ([`handoff::hand_over`]), each unfinished line
    /// logged as partial first.
    pub(super) fn hand_over(&mut self, until: Instant) -> Option<HandOver> {
        let parts = handoff_parts!(self);
        let (sink, message, syslog) = (&mut self.sink, &mut self.message, &mut self.syslog);
        let log = |line: Line<'_>| log_line(sink, message, syslog, line, true);
        let udp = self.udp.as_ref().map(crate::udp::Udp::to_store);
        handoff::hand_over(parts, &mut self.handed_listener, udp, until, log)
    }
}

/// The last entry of a stop: its priority and text. NOT LOGGED, at err, only for what really
/// was not: bytes not read in time, entries the target did not take. Entries written to stderr
/// as the announced fallback (no usable journal socket) were printed as intended: said, at
/// notice.
fn stop_report(s: &Summary, handed: Option<&HandOver>, stop_timeout_secs: u64) -> (u8, String) {
    let mut text = format!(
        "stopping: served {} connections, logged {} lines, refused {}, dropped {} over the \
         rate limit",
        s.connections, s.lines, s.refused, s.dropped
    );
    if let Some(handed) = handed {
        text.push_str(&format!("; {}", handed.text));
    }
    if let Some(udp) = &s.udp {
        text.push_str(&format!("; {}", udp.summary()));
    }
    let mut lost = Vec::new();
    if s.unread_bytes > 0 {
        lost.push(format!(
            "{} bytes ({} line ends) received before the stop and not read within \
             stop_timeout_secs ({stop_timeout_secs} s)",
            s.unread_bytes, s.unread_lines
        ));
    }
    if s.undelivered > 0 {
        lost.push(format!(
            "{} entries the log target did not take in time (printed on stderr instead)",
            s.undelivered
        ));
    }
    if s.to_stderr > 0 {
        text.push_str(&format!(
            "; {} entries before this one were written to stderr, as announced, while the \
             journal socket could not be used",
            s.to_stderr
        ));
    }
    if s.unsent_notifications > 0 {
        text.push_str(&format!(
            "; {} notifications to the service manager could not be sent (its notify socket \
             was full)",
            s.unsent_notifications
        ));
    }
    if !lost.is_empty() {
        text.push_str(&format!("; NOT LOGGED: {}", lost.join(", ")));
        return (priority::ERR, text);
    }
    text.push_str("; everything received before the stop was logged");
    let udp_lost = s.udp.is_some_and(|u| u.lost_any());
    let priority = if s.unsent_notifications > 0 || handed.is_some_and(|h| !h.whole) || udp_lost {
        priority::WARNING
    } else if s.to_stderr > 0 {
        priority::NOTICE
    } else {
        priority::INFO
    };
    (priority, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 17 item 10: entries printed by the stderr fallback are not "NOT LOGGED"; the stop
    /// says NOT LOGGED, at err, only for what really was not, naming only what it was.
    #[test]
    fn the_stop_report_says_not_logged_only_for_what_was_not() {
        let base = Summary {
            connections: 1,
            lines: 3,
            ..Summary::default()
        };
        let (p, text) = stop_report(&base, None, 10);
        assert_eq!(p, priority::INFO);
        assert_eq!(
            text,
            "stopping: served 1 connections, logged 3 lines, refused 0, dropped 0 over the rate \
             limit; everything received before the stop was logged"
        );
        let fallback = Summary {
            to_stderr: 6,
            ..base
        };
        let (p, text) = stop_report(&fallback, None, 10);
        assert_eq!(p, priority::NOTICE);
        assert!(!text.contains("NOT LOGGED"), "{text}");
        assert!(
            text.ends_with(
                "; 6 entries before this one were written to stderr, as announced, while the \
                 journal socket could not be used; everything received before the stop was logged"
            ),
            "{text}"
        );
        let (p, text) = stop_report(
            &Summary {
                undelivered: 2,
                ..fallback
            },
            None,
            10,
        );
        assert_eq!(p, priority::ERR);
        assert!(
            text.ends_with(
                "; NOT LOGGED: 2 entries the log target did not take in time (printed on stderr \
                 instead)"
            ),
            "{text}"
        );
        let (p, text) = stop_report(
            &Summary {
                unread_bytes: 100,
                unread_lines: 4,
                ..base
            },
            None,
            7,
        );
        assert_eq!(p, priority::ERR);
        assert!(
            text.ends_with(
                "; NOT LOGGED: 100 bytes (4 line ends) received before the stop and not read \
                 within stop_timeout_secs (7 s)"
            ),
            "{text}"
        );
    }

    #[test]
    fn the_stop_phase_reads_until_the_clients_are_done_or_the_deadline() {
        let t0 = Instant::now();
        let timeout = Duration::from_secs(10);
        let mut phase = Phase::Serving;
        assert!(phase.accepting());
        assert!(!phase.reading_done(t0, 0), "serving never ends by itself");
        assert_eq!(phase.wake_at(), None);
        assert!(phase.stop(t0 + timeout));
        assert!(!phase.accepting());
        assert!(
            !phase.stop(t0 + 2 * timeout),
            "a second stop changes nothing"
        );
        assert_eq!(phase.wake_at(), Some(t0 + timeout));
        assert!(!phase.reading_done(t0, 3));
        assert!(phase.reading_done(t0, 0), "no client left");
        assert!(phase.reading_done(t0 + timeout, 3), "deadline");
    }
}
