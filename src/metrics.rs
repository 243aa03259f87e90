//! Counters to watch: the daemon's counters in the Prometheus text exposition format
//! (version 0.0.4), named by Prometheus conventions, and the loopback HTTP endpoint that
//! serves them (`metrics_listen`, off by default) from the daemon's own event loop.
//!
//! Why an HTTP endpoint rather than a file for node_exporter's textfile collector: the
//! daemon runs as a dynamic user under `ProtectSystem=strict`, so a file in node_exporter's
//! directory needs a writable path granted by hand, and it goes stale without a word when
//! the daemon stops; a scrape of a stopped daemon fails and Prometheus' `up` says so. The
//! endpoint answers `GET /metrics` and nothing else, reads at most one request of
//! [`MAX_REQUEST`] bytes per connection, serves [`MAX_SCRAPERS`] connections at once and
//! never blocks the loop (a response is written in one go or the connection is dropped).
//! No label carries a source address (cardinality): per-source detail is in the journal.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};

/// What the daemon counts, since it started (counters) or now (gauges).
#[derive(Debug, Default, Clone)]
pub struct Counters {
    pub connections_accepted: u64,
    /// Refused connections by reason (`max_connections`, `allow`, `tls_handshake`, ...).
    pub connections_refused: BTreeMap<&'static str, u64>,
    /// Connections taken back from the previous process at a restart.
    pub connections_carried: u64,
    /// Lines (messages with syslog framing) logged; a line logged in pieces counts once.
    pub lines_received: u64,
    pub bytes_received: u64,
    /// Lines not logged, by reason (`rate_limit`, ...).
    pub lines_dropped: BTreeMap<&'static str, u64>,
    pub tls_handshakes_failed: u64,
}

/// The figures read from elsewhere at the moment of a scrape.
#[derive(Debug, Default, Clone, Copy)]
pub struct Gauges {
    pub clients: usize,
    pub entries_delivered: u64,
    pub entries_to_stderr: u64,
    pub entries_undelivered: u64,
    pub journal_outages: u64,
}

/// One metric family: name (without the `tcp_listener_` prefix), type, help.
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
}

const PREFIX: &str = "tcp_listener_";

/// The text exposition of `c` and `g`, at `start` (the daemon's start, wall clock).
pub fn render(c: &Counters, g: &Gauges, start: SystemTime) -> String {
    let mut out = String::with_capacity(4096);
    let mut one = |f: Family, samples: &[(Option<(&str, &str)>, String)]| {
        out.push_str(&format!("# HELP {PREFIX}{} {}\n", f.name, f.help));
        out.push_str(&format!("# TYPE {PREFIX}{} {}\n", f.name, f.kind));
        for (label, value) in samples {
            match label {
                Some((k, v)) => {
                    out.push_str(&format!("{PREFIX}{}{{{k}=\"{v}\"}} {value}\n", f.name))
                }
                None => out.push_str(&format!("{PREFIX}{} {value}\n", f.name)),
            }
        }
    };
    let plain = |v: u64| vec![(None, v.to_string())];
    let by = |label: &'static str,
              m: &BTreeMap<&'static str, u64>|
     -> Vec<(Option<(&str, &str)>, String)> {
        m.iter()
            .map(|(k, v)| (Some((label, *k)), v.to_string()))
            .collect()
    };
    one(
        Family {
            name: "connections_accepted_total",
            kind: "counter",
            help: "Client connections accepted (TLS: handshake finished).",
        },
        &plain(c.connections_accepted),
    );
    one(
        Family {
            name: "connections_refused_total",
            kind: "counter",
            help: "Client connections refused, by reason.",
        },
        &by("reason", &c.connections_refused),
    );
    one(
        Family {
            name: "connections_carried_total",
            kind: "counter",
            help: "Client connections taken back from the previous process at a restart.",
        },
        &plain(c.connections_carried),
    );
    one(
        Family {
            name: "clients",
            kind: "gauge",
            help: "Client connections open now.",
        },
        &[(None, g.clients.to_string())],
    );
    one(
        Family {
            name: "lines_received_total",
            kind: "counter",
            help: "Lines (syslog messages with framing = \"syslog\") logged.",
        },
        &plain(c.lines_received),
    );
    one(
        Family {
            name: "received_bytes_total",
            kind: "counter",
            help: "Bytes read from clients.",
        },
        &plain(c.bytes_received),
    );
    one(
        Family {
            name: "lines_dropped_total",
            kind: "counter",
            help: "Lines not logged, by reason.",
        },
        &by("reason", &c.lines_dropped),
    );
    one(
        Family {
            name: "entries_delivered_total",
            kind: "counter",
            help: "Entries the log target took.",
        },
        &plain(g.entries_delivered),
    );
    one(
        Family {
            name: "entries_stderr_total",
            kind: "counter",
            help: "Entries written to stderr while the journal socket could not be used.",
        },
        &plain(g.entries_to_stderr),
    );
    one(
        Family {
            name: "entries_undelivered_total",
            kind: "counter",
            help:
                "Entries the log target did not take in time (printed on stderr as a last resort).",
        },
        &plain(g.entries_undelivered),
    );
    one(
        Family {
            name: "journal_outages_total",
            kind: "counter",
            help: "Times the log target stopped taking entries.",
        },
        &plain(g.journal_outages),
    );
    one(
        Family {
            name: "tls_handshakes_failed_total",
            kind: "counter",
            help: "TLS handshakes that failed or did not finish in time.",
        },
        &plain(c.tls_handshakes_failed),
    );
    let secs = start
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    one(
        Family {
            name: "start_time_seconds",
            kind: "gauge",
            help: "When the daemon started, in seconds since the Unix epoch.",
        },
        &[(None, format!("{secs:.3}"))],
    );
    out
}

/// The longest request read; a longer one is answered 400 and closed.
pub const MAX_REQUEST: usize = 4096;
/// Scrapers served at once; one more is closed at once.
pub const MAX_SCRAPERS: usize = 4;
/// A scraper that has not sent its request in this time is closed.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The listener's token; scrapers use the [`MAX_SCRAPERS`] tokens below it.
pub const TOKEN: Token = Token(usize::MAX - 64);

/// Whether `token` is the endpoint's (its listener or a scraper).
pub fn owns(token: Token) -> bool {
    (TOKEN.0 - MAX_SCRAPERS..=TOKEN.0).contains(&token.0)
}

struct Scraper {
    stream: TcpStream,
    request: Vec<u8>,
    since: Instant,
}

/// The loopback HTTP endpoint.
pub struct Endpoint {
    listener: TcpListener,
    scrapers: Vec<Option<Scraper>>,
    pub local_addr: SocketAddr,
}

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    Metrics,
    NotFound,
    Bad,
    /// Not complete yet.
    Partial,
}

/// Reads an HTTP request head: `GET /metrics` (a query string allowed) is the only one served.
pub fn parse_request(head: &[u8]) -> Request {
    let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if head.len() >= MAX_REQUEST {
            Request::Bad
        } else {
            Request::Partial
        };
    };
    let line = head[..end]
        .split(|&b| b == b'\n')
        .next()
        .unwrap_or_default();
    let line = std::str::from_utf8(line)
        .unwrap_or("")
        .trim_end_matches('\r');
    let mut words = line.split(' ');
    match (words.next(), words.next(), words.next()) {
        (Some("GET"), Some(path), Some(v)) if v.starts_with("HTTP/1.") => {
            if path == "/metrics" || path.starts_with("/metrics?") {
                Request::Metrics
            } else {
                Request::NotFound
            }
        }
        _ => Request::Bad,
    }
}

fn response(status: &str, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

impl Endpoint {
    /// Listens on `addr` (a loopback address unless the owner chose otherwise).
    pub fn bind(addr: SocketAddr, registry: &Registry) -> io::Result<Endpoint> {
        let mut listener = TcpListener::bind(addr)?;
        let local_addr = listener.local_addr()?;
        registry.register(&mut listener, TOKEN, Interest::READABLE)?;
        Ok(Endpoint {
            listener,
            scrapers: (0..MAX_SCRAPERS).map(|_| None).collect(),
            local_addr,
        })
    }

    /// Handles a readiness event for one of [`owns`]'s tokens; `body` renders the metrics
    /// when a request asks for them.
    pub fn ready(&mut self, token: Token, registry: &Registry, body: impl FnOnce() -> String) {
        if token == TOKEN {
            return self.accept(registry);
        }
        let slot = TOKEN.0 - 1 - token.0;
        let Some(Some(s)) = self.scrapers.get_mut(slot) else {
            return;
        };
        let mut buf = [0u8; 1024];
        let outcome = loop {
            match s.stream.read(&mut buf) {
                Ok(0) => break None,
                Ok(n) => {
                    let room = MAX_REQUEST - s.request.len().min(MAX_REQUEST);
                    s.request.extend_from_slice(&buf[..n.min(room)]);
                    match parse_request(&s.request) {
                        Request::Partial => continue,
                        done => break Some(done),
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break None,
            }
        };
        if let Some(request) = outcome {
            let reply = match request {
                Request::Metrics => response(
                    "200 OK",
                    "text/plain; version=0.0.4; charset=utf-8",
                    &body(),
                ),
                Request::NotFound => response("404 Not Found", "text/plain", "only /metrics\n"),
                Request::Bad | Request::Partial => {
                    response("400 Bad Request", "text/plain", "GET /metrics\n")
                }
            };
            // Small enough for an empty socket buffer: written in one go or not at all.
            let _ = s.stream.write(&reply);
        }
        self.close_scraper(slot, registry);
    }

    fn accept(&mut self, registry: &Registry) {
        loop {
            match self.listener.accept() {
                Ok((mut stream, _)) => {
                    let Some(slot) = self.scrapers.iter().position(Option::is_none) else {
                        continue; // dropped: closed at once
                    };
                    let token = Token(TOKEN.0 - 1 - slot);
                    if registry
                        .register(&mut stream, token, Interest::READABLE)
                        .is_ok()
                    {
                        self.scrapers[slot] = Some(Scraper {
                            stream,
                            request: Vec::new(),
                            since: Instant::now(),
                        });
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            }
        }
    }

    /// Stops listening and closes every scraper.
    pub fn close(&mut self, registry: &Registry) {
        for slot in 0..self.scrapers.len() {
            self.close_scraper(slot, registry);
        }
        let _ = registry.deregister(&mut self.listener);
    }

    fn close_scraper(&mut self, slot: usize, registry: &Registry) {
        if let Some(mut s) = self.scrapers[slot].take() {
            let _ = registry.deregister(&mut s.stream);
        }
    }

    /// Closes scrapers that have not sent a request within [`REQUEST_TIMEOUT`].
    pub fn tick(&mut self, now: Instant, registry: &Registry) {
        for slot in 0..self.scrapers.len() {
            if self.scrapers[slot]
                .as_ref()
                .is_some_and(|s| now.duration_since(s.since) > REQUEST_TIMEOUT)
            {
                self.close_scraper(slot, registry);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_get_metrics_is_served() {
        assert_eq!(
            parse_request(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Request::Metrics
        );
        assert_eq!(
            parse_request(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"),
            Request::Metrics
        );
        assert_eq!(parse_request(b"GET / HTTP/1.1\r\n\r\n"), Request::NotFound);
        assert_eq!(
            parse_request(b"POST /metrics HTTP/1.1\r\n\r\n"),
            Request::Bad
        );
        assert_eq!(
            parse_request(b"GET /metrics HTTP/1.1\r\n"),
            Request::Partial
        );
        assert_eq!(parse_request(&[b'a'; MAX_REQUEST]), Request::Bad);
        assert_eq!(parse_request(b"\xff\xfe\r\n\r\n"), Request::Bad);
    }

    #[test]
    fn the_exposition_names_every_family_once_with_help_and_type() {
        let mut c = Counters::default();
        c.connections_refused.insert("max_connections", 2);
        c.lines_dropped.insert("rate_limit", 7);
        c.lines_received = 5;
        let text = render(&c, &Gauges::default(), UNIX_EPOCH);
        assert!(text.contains("tcp_listener_lines_received_total 5\n"));
        assert!(
            text.contains("tcp_listener_connections_refused_total{reason=\"max_connections\"} 2\n")
        );
        assert!(text.contains("tcp_listener_lines_dropped_total{reason=\"rate_limit\"} 7\n"));
        let types = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
        let helps = text.lines().filter(|l| l.starts_with("# HELP ")).count();
        assert_eq!(types, helps);
        assert_eq!(types, 13);
    }
}
