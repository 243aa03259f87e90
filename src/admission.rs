//! Who may connect: the allow list, `max_connections` and `max_connections_per_source`, the
//! TLS handshakes in progress (`tls.max_handshakes`), and how refusals are reported (at most [`REFUSALS_PER_WINDOW`] warnings per [`REFUSAL_WINDOW`],
//! then one summary).

use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::cidr::{self, Cidr};
use crate::config::Config;
use crate::throttle::Throttle;

/// Refusal warnings: at most this many per window, then one summary.
pub const REFUSALS_PER_WINDOW: u32 = 5;
pub const REFUSAL_WINDOW: Duration = Duration::from_secs(10);

/// Why a client was turned away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NotAllowed,
    Full {
        max_connections: usize,
    },
    SourceFull {
        max_connections_per_source: usize,
    },
    /// The daemon could not watch the connection (the poll set refused it).
    CannotWatch(String),
    /// `tls.max_handshakes` handshakes were in progress.
    Handshakes {
        max_handshakes: usize,
    },
    /// The TLS handshake did not finish within `tls.handshake_timeout_secs`.
    HandshakeTimeout {
        secs: u64,
    },
    /// The TLS handshake failed, or the client was not TLS: why.
    Tls(String),
    /// The client certificate's names are not in `tls.allow_names`.
    NameNotAllowed(String),
}

impl Refusal {
    /// The reason as a metric label (`tcp_listener_connections_refused_total{reason=…}`).
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::NotAllowed => "not_allowed",
            Refusal::Full { .. } => "max_connections",
            Refusal::SourceFull { .. } => "max_connections_per_source",
            Refusal::CannotWatch(_) => "cannot_watch",
            Refusal::Handshakes { .. } => "max_handshakes",
            Refusal::HandshakeTimeout { .. } => "handshake_timeout",
            Refusal::Tls(_) => "tls_handshake",
            Refusal::NameNotAllowed(_) => "name_not_allowed",
        }
    }

    /// Whether a TLS handshake failed (or did not finish in time).
    pub fn is_failed_handshake(&self) -> bool {
        matches!(self, Refusal::HandshakeTimeout { .. } | Refusal::Tls(_))
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NotAllowed => write!(f, "not in the allow list"),
            Refusal::Full { max_connections } => {
                write!(f, "max_connections ({max_connections}) reached")
            }
            Refusal::SourceFull {
                max_connections_per_source,
            } => write!(
                f,
                "max_connections_per_source ({max_connections_per_source}) reached"
            ),
            Refusal::CannotWatch(e) => write!(f, "cannot watch the connection: {e}"),
            Refusal::Handshakes { max_handshakes } => write!(
                f,
                "tls.max_handshakes ({max_handshakes}) TLS handshakes in progress"
            ),
            Refusal::HandshakeTimeout { secs } => {
                write!(f, "TLS handshake not finished within {secs} s")
            }
            Refusal::Tls(why) => f.write_str(why),
            Refusal::NameNotAllowed(names) => write!(
                f,
                "client certificate names ({names}) not in tls.allow_names"
            ),
        }
    }
}

/// What to log for one refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefusalReport {
    /// Refusals of the window that just ended, not logged one by one: log a summary first.
    pub summary_first: Option<u64>,
    /// Whether this refusal gets a warning of its own.
    pub log_this: bool,
}

pub struct Admission {
    allow: Vec<Cidr>,
    max_connections: usize,
    max_per_source: usize,
    reports: Throttle,
    refused: u64,
    /// TLS handshakes in progress, and how many may be (0: no TLS).
    handshakes: usize,
    max_handshakes: usize,
}

impl Admission {
    pub fn new(config: &Config) -> Admission {
        Admission {
            allow: config.allow.clone(),
            max_connections: config.max_connections,
            max_per_source: config.max_connections_per_source,
            reports: Throttle::new(REFUSALS_PER_WINDOW, REFUSAL_WINDOW),
            refused: 0,
            handshakes: 0,
            max_handshakes: max_handshakes(config),
        }
    }

    /// Whether another TLS handshake may start (under `tls.max_handshakes`).
    pub fn check_handshake(&self) -> Result<(), Refusal> {
        if self.handshakes >= self.max_handshakes {
            return Err(Refusal::Handshakes {
                max_handshakes: self.max_handshakes,
            });
        }
        Ok(())
    }

    /// A TLS handshake started.
    pub fn handshake_started(&mut self) {
        self.handshakes += 1;
    }

    /// A TLS handshake ended (finished, failed, or its connection closed).
    pub fn handshake_ended(&mut self) {
        self.handshakes = self.handshakes.saturating_sub(1);
    }

    pub fn handshakes(&self) -> usize {
        self.handshakes
    }

    /// Takes the allow list and the connection limit of a new configuration.
    pub fn reconfigure(&mut self, config: &Config) {
        self.allow = config.allow.clone();
        self.max_connections = config.max_connections;
        self.max_per_source = config.max_connections_per_source;
        self.max_handshakes = max_handshakes(config);
    }

    /// Whether a client from `ip` may connect while `open` clients are connected, of which
    /// `open_from_source` from `ip`.
    pub fn check(&self, ip: IpAddr, open: usize, open_from_source: usize) -> Result<(), Refusal> {
        if !self.allows(ip) {
            return Err(Refusal::NotAllowed);
        }
        if open >= self.max_connections {
            return Err(Refusal::Full {
                max_connections: self.max_connections,
            });
        }
        if open_from_source >= self.max_per_source {
            return Err(Refusal::SourceFull {
                max_connections_per_source: self.max_per_source,
            });
        }
        Ok(())
    }

    /// Whether the allow list admits `ip` (for clients connected before a reload).
    pub fn allows(&self, ip: IpAddr) -> bool {
        cidr::allowed(&self.allow, ip)
    }

    /// Counts a refusal and says what to log for it.
    pub fn refused(&mut self, now: Instant) -> RefusalReport {
        self.refused += 1;
        let summary_first = self.reports.close_expired(now);
        RefusalReport {
            summary_first,
            log_this: self.reports.admit(now),
        }
    }

    /// Refusals to summarise now that their window is over (housekeeping).
    pub fn summary_due(&mut self, now: Instant) -> Option<u64> {
        self.reports.close_expired(now)
    }

    /// Every refusal not yet logged, whatever the window (the daemon is stopping).
    pub fn take_unreported(&mut self) -> Option<u64> {
        self.reports.take()
    }

    pub fn refused_total(&self) -> u64 {
        self.refused
    }
}

fn max_handshakes(config: &Config) -> usize {
    config.tls.as_ref().map_or(0, |t| t.max_handshakes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(extra: &str) -> Admission {
        let config = Config::parse(extra, std::path::Path::new("t.toml")).unwrap();
        Admission::new(&config)
    }

    #[test]
    fn the_allow_list_and_the_limit_decide() {
        let a = admission(
            "max_connections = 3\nmax_connections_per_source = 2\nallow = [\"10.0.0.0/8\", \"::1\"]",
        );
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(a.check(ip("10.1.2.3"), 0, 0), Ok(()));
        assert_eq!(a.check(ip("::ffff:10.1.2.3"), 1, 1), Ok(()));
        assert_eq!(a.check(ip("::1"), 2, 0), Ok(()));
        assert_eq!(a.check(ip("192.168.1.1"), 0, 0), Err(Refusal::NotAllowed));
        assert_eq!(
            a.check(ip("10.1.2.3"), 3, 0),
            Err(Refusal::Full { max_connections: 3 })
        );
        assert_eq!(
            a.check(ip("10.1.2.3"), 2, 2),
            Err(Refusal::SourceFull {
                max_connections_per_source: 2
            })
        );
        assert_eq!(
            a.check(ip("10.1.2.3"), 2, 2).unwrap_err().to_string(),
            "max_connections_per_source (2) reached"
        );
        assert_eq!(
            Refusal::Full { max_connections: 2 }.to_string(),
            "max_connections (2) reached"
        );
        // Everyone, when the list is empty.
        assert_eq!(admission("").check(ip("192.168.1.1"), 0, 0), Ok(()));
    }

    #[test]
    fn a_reload_changes_the_rules() {
        let mut a = admission("max_connections = 1");
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(a.check(ip, 1, 0).is_err());
        let wider = Config::parse(
            "max_connections = 5\nallow = [\"198.51.100.0/24\"]",
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        a.reconfigure(&wider);
        assert_eq!(a.check(ip, 1, 0), Err(Refusal::NotAllowed));
        assert!(!a.allows(ip));
        assert!(a.allows("198.51.100.9".parse().unwrap()));
    }

    #[test]
    fn tls_handshakes_in_progress_are_bounded() {
        let mut a = admission(
            "[tls]\ncertificate = \"/c.pem\"\nprivate_key = \"/k.pem\"\nmax_handshakes = 2",
        );
        assert_eq!(a.check_handshake(), Ok(()));
        a.handshake_started();
        a.handshake_started();
        let refusal = a.check_handshake().unwrap_err();
        assert_eq!(refusal, Refusal::Handshakes { max_handshakes: 2 });
        assert_eq!(
            refusal.to_string(),
            "tls.max_handshakes (2) TLS handshakes in progress"
        );
        a.handshake_ended();
        assert_eq!(a.check_handshake(), Ok(()));
        assert_eq!(a.handshakes(), 1);
    }

    #[test]
    fn refusals_are_logged_five_per_window_then_summarised() {
        let mut a = admission("");
        let t0 = Instant::now();
        let reports: Vec<RefusalReport> = (0..8).map(|_| a.refused(t0)).collect();
        assert!(reports[..5].iter().all(|r| r.log_this));
        assert!(reports[5..].iter().all(|r| !r.log_this));
        assert!(reports.iter().all(|r| r.summary_first.is_none()));
        assert_eq!(a.summary_due(t0 + REFUSAL_WINDOW / 2), None);
        // The next refusal after the window: the summary comes first, then its own warning.
        let next = a.refused(t0 + REFUSAL_WINDOW);
        assert_eq!(
            next,
            RefusalReport {
                summary_first: Some(3),
                log_this: true
            }
        );
        for _ in 0..6 {
            a.refused(t0 + REFUSAL_WINDOW);
        }
        assert_eq!(a.summary_due(t0 + 2 * REFUSAL_WINDOW), Some(2));
        assert_eq!(a.summary_due(t0 + 3 * REFUSAL_WINDOW), None);
        assert_eq!(a.refused_total(), 15);
        for _ in 0..7 {
            a.refused(t0 + 4 * REFUSAL_WINDOW);
        }
        assert_eq!(a.take_unreported(), Some(2));
    }
}
