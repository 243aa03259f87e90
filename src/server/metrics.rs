//! The server's side of the Prometheus counters ([`crate::metrics`]): the endpoint opened
//! where `metrics_listen` says (at start, and again when a reload changes it), a scrape
//! answered from the summary, the sink's delivery figures and what only this side counts.

use std::time::{Instant, SystemTime};

use crate::entry::priority;
use crate::metrics::{self, Endpoint, Gauges};

use super::Server;

impl Server {
    /// Opens, moves or closes the endpoint as `metrics_listen` now says; a failure is told
    /// and the daemon goes on without it.
    pub(super) fn open_metrics(&mut self) {
        let want = self.config.metrics_listen;
        if self.metrics.as_ref().map(|m| m.requested) == Some(want) {
            return;
        }
        if let Some(mut old) = self.metrics.take() {
            old.endpoint.close(self.poll.registry());
        }
        let Some(addr) = want else {
            return;
        };
        match Endpoint::bind(addr, self.poll.registry()) {
            Ok(endpoint) => {
                let text = format!(
                    "metrics for Prometheus at http://{}/metrics",
                    endpoint.local_addr
                );
                self.metrics = Some(Served {
                    endpoint,
                    requested: want,
                });
                self.announce(priority::INFO, &text);
            }
            Err(e) => self.announce(
                priority::ERR,
                &format!("metrics_listen = \"{addr}\": cannot listen there ({e}); no metrics"),
            ),
        }
    }

    /// A readiness event of the endpoint's.
    pub(super) fn serve_metrics(&mut self, token: mio::Token) {
        let Some(served) = self.metrics.as_mut() else {
            return;
        };
        let (counters, started) = (&self.counters, self.started);
        let summary = self.summary;
        let delivery = self.sink.stats();
        let gauges = Gauges {
            clients: self.conns.len(),
            entries_delivered: delivery.delivered,
            entries_to_stderr: delivery.fallback,
            entries_undelivered: delivery.undelivered,
            journal_outages: delivery.outages,
        };
        served.endpoint.ready(token, self.poll.registry(), || {
            let mut c = counters.clone();
            c.connections_accepted = summary.connections;
            c.lines_received = summary.lines;
            if summary.dropped > 0 {
                c.lines_dropped.insert("rate_limit", summary.dropped);
            }
            metrics::render(&c, &gauges, started)
        });
    }

    /// Closes scrapers that never asked.
    pub(super) fn tick_metrics(&mut self, now: Instant) {
        if let Some(served) = self.metrics.as_mut() {
            served.endpoint.tick(now, self.poll.registry());
        }
    }
}

/// The endpoint and the address it was asked for (`:0` binds a port of the kernel's choice).
pub(super) struct Served {
    endpoint: Endpoint,
    requested: Option<std::net::SocketAddr>,
}

/// When the daemon started, for `tcp_listener_start_time_seconds`.
pub(super) fn start_time() -> SystemTime {
    SystemTime::now()
}
