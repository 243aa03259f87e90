//! The housekeeping tick: handshakes and idle clients past their time, the reports that wait
//! for a window's end (dropped lines, refusals, connection events), the status and the
//! watchdog, and the warning about a service manager that does not read its socket.

use std::time::{Duration, Instant};

use super::serve::log_dropped;
use super::Server;
use crate::admission::Refusal;
use crate::entry::{priority, Entry};
use crate::source::CONNECTION_EVENT_WINDOW;

impl Server {
    pub(super) fn tick(&mut self, now: Instant) {
        self.next_tick = now + self.supervisor.tick_interval();
        self.tick_metrics(now);
        if let Some(tls) = &self.config.tls {
            let secs = tls.handshake_timeout_secs;
            for key in self.conns.keys_where(|c| c.handshake_overdue(now)) {
                self.refuse_connection(key, Refusal::HandshakeTimeout { secs }, now);
            }
        }
        if self.config.idle_timeout_secs > 0 {
            let limit = Duration::from_secs(self.config.idle_timeout_secs);
            let reason = format!("idle for {} s", self.config.idle_timeout_secs);
            for key in self
                .conns
                .keys_where(|c| !c.handshaking() && c.idle(now, limit))
            {
                self.close(key, &reason);
            }
        }
        let limit = (self.config.max_lines_per_sec, self.config.max_lines_burst);
        let (sink, message) = (&mut self.sink, &mut self.message);
        for (_, conn) in self.conns.iter_mut() {
            if let Some(report) = conn.drop_report(now, false) {
                log_dropped(sink, message, conn, limit, report);
            }
        }
        self.report_udp(now);
        let refused = self.admission.summary_due(now);
        self.log_refused_summary(refused);
        if let Some(text) = self.acceptor.error_summary_due(now) {
            self.announce(priority::ERR, &text);
        }
        self.log_connection_summaries(now, false);
        let status = self.status();
        self.supervisor.tick(status);
        self.warn_of_the_manager(now);
    }

    /// A service manager that does not read its notify socket: said, at most once per 10 s.
    pub(super) fn warn_of_the_manager(&mut self, now: Instant) {
        if let Some(text) = self.supervisor.take_warning(now) {
            self.announce(priority::WARNING, &text);
        }
    }

    /// Connection events of a source that were not logged one by one, as one entry each.
    pub(super) fn log_connection_summaries(&mut self, now: Instant, all: bool) {
        for (ip, counts) in self.sources.housekeeping(now, all) {
            let ip = ip.to_string();
            self.sink.log(&Entry::connections_summary(
                &mut self.message,
                &ip,
                counts,
                CONNECTION_EVENT_WINDOW,
            ));
        }
    }
}
