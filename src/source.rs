//! Per source address: the line budget every connection from it shares (so reconnecting does
//! not refill it), how many connections it has open, and the limit on its `connected` and
//! `disconnected` entries (at most [`CONNECTION_EVENTS_PER_WINDOW`] per
//! [`CONNECTION_EVENT_WINDOW`], the rest counted into one summary).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::config::{Config, RateLimitAction};
use crate::ratelimit::TokenBucket;
use crate::throttle::Throttle;

/// `connected` and `disconnected` entries of one source logged one by one per window.
pub const CONNECTION_EVENTS_PER_WINDOW: u32 = 60;
pub const CONNECTION_EVENT_WINDOW: Duration = Duration::from_secs(10);

/// One source address.
pub struct Source {
    pub budget: TokenBucket,
    pub connections: usize,
    events: Throttle,
    /// Connection events not logged one by one, of the current window.
    unlogged: EventCounts,
}

/// `connected` and `disconnected` events not logged one by one.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EventCounts {
    pub connected: u64,
    pub disconnected: u64,
}

impl EventCounts {
    fn is_empty(&self) -> bool {
        self.connected == 0 && self.disconnected == 0
    }
}

/// Which connection event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionEvent {
    Connected,
    Disconnected,
}

pub struct Sources {
    map: HashMap<IpAddr, Source>,
    rate: u32,
    burst: u32,
    action: RateLimitAction,
}

impl Sources {
    pub fn new(config: &Config) -> Sources {
        Sources {
            map: HashMap::new(),
            rate: config.max_lines_per_sec,
            burst: config.max_lines_burst,
            action: config.rate_limit_action,
        }
    }

    /// Takes the line limit of a new configuration; what each source spent carries over.
    pub fn reconfigure(&mut self, config: &Config, now: Instant) {
        self.rate = config.max_lines_per_sec;
        self.burst = config.max_lines_burst;
        self.action = config.rate_limit_action;
        for source in self.map.values_mut() {
            source.budget.reconfigure(self.rate, self.burst, now);
        }
    }

    pub fn action(&self) -> RateLimitAction {
        self.action
    }

    /// Connections open from `ip`.
    pub fn open(&self, ip: IpAddr) -> usize {
        self.map.get(&ip).map_or(0, |s| s.connections)
    }

    /// The source `ip`, made with a full budget if it is new.
    fn source(&mut self, ip: IpAddr, now: Instant) -> &mut Source {
        let (rate, burst) = (self.rate, self.burst);
        self.map.entry(ip).or_insert_with(|| Source {
            budget: TokenBucket::new(rate, burst, now),
            connections: 0,
            events: Throttle::new(CONNECTION_EVENTS_PER_WINDOW, CONNECTION_EVENT_WINDOW),
            unlogged: EventCounts::default(),
        })
    }

    /// A connection from `ip` was admitted.
    pub fn connected(&mut self, ip: IpAddr, now: Instant) {
        self.source(ip, now).connections += 1;
    }

    /// A connection from `ip` ended.
    pub fn disconnected(&mut self, ip: IpAddr) {
        if let Some(source) = self.map.get_mut(&ip) {
            source.connections = source.connections.saturating_sub(1);
        }
    }

    /// Each source's budget, as tokens left, to carry to another process.
    pub fn budgets(&mut self, now: Instant) -> Vec<(IpAddr, f64)> {
        self.map
            .iter_mut()
            .map(|(ip, s)| (*ip, s.budget.tokens(now)))
            .collect()
    }

    /// A budget carried over from another process (its connections come separately).
    pub fn restore_budget(&mut self, ip: IpAddr, tokens: f64, now: Instant) {
        let (rate, burst) = (self.rate, self.burst);
        self.source(ip, now).budget = TokenBucket::with_tokens(rate, burst, tokens, now);
    }

    pub fn get_mut(&mut self, ip: IpAddr) -> Option<&mut Source> {
        self.map.get_mut(&ip)
    }

    /// Whether a connection event of `ip` gets an entry of its own; if not it is counted
    /// into the source's next summary.
    pub fn log_event(&mut self, ip: IpAddr, event: ConnectionEvent, now: Instant) -> bool {
        let Some(source) = self.map.get_mut(&ip) else {
            return true;
        };
        if source.events.admit(now) {
            return true;
        }
        match event {
            ConnectionEvent::Connected => source.unlogged.connected += 1,
            ConnectionEvent::Disconnected => source.unlogged.disconnected += 1,
        }
        false
    }

    /// Summaries due (their window is over, or `all`: the daemon is stopping), and forgets
    /// sources that have no connection, nothing to report and a full budget (so a source
    /// that reconnects finds its budget as it left it).
    pub fn housekeeping(&mut self, now: Instant, all: bool) -> Vec<(IpAddr, EventCounts)> {
        let mut due = Vec::new();
        self.map.retain(|ip, source| {
            let expired = if all {
                source.events.take().is_some()
            } else {
                source.events.close_expired(now).is_some()
            };
            if expired && !source.unlogged.is_empty() {
                due.push((*ip, std::mem::take(&mut source.unlogged)));
            }
            source.connections > 0
                || source.events.window_end().is_some()
                || !source.budget.is_full(now)
        });
        due
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(extra: &str) -> Sources {
        Sources::new(&Config::parse(extra, std::path::Path::new("t.toml")).unwrap())
    }

    #[test]
    fn connections_of_one_address_share_one_budget_even_across_reconnects() {
        let mut s = sources("max_lines_per_sec = 10\nmax_lines_burst = 3");
        let t0 = Instant::now();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        s.connected(ip, t0);
        s.connected(ip, t0);
        assert_eq!(s.open(ip), 2);
        assert!(s.get_mut(ip).unwrap().budget.try_take(t0));
        assert!(s.get_mut(ip).unwrap().budget.try_take(t0));
        s.disconnected(ip);
        s.disconnected(ip);
        assert!(s.housekeeping(t0, false).is_empty());
        assert_eq!(s.len(), 1, "kept while its budget is spent");
        s.connected(ip, t0);
        let budget = &mut s.get_mut(ip).unwrap().budget;
        assert!(budget.try_take(t0));
        assert!(!budget.try_take(t0), "reconnecting did not refill it");
        s.disconnected(ip);
        s.housekeeping(t0 + Duration::from_secs(1), false);
        assert!(s.is_empty(), "forgotten once full and unused");
    }

    #[test]
    fn connection_events_are_limited_per_source_and_summarised() {
        let mut s = sources("");
        let t0 = Instant::now();
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.7".parse().unwrap(), "::1".parse().unwrap());
        s.connected(a, t0);
        s.connected(b, t0);
        let limit = CONNECTION_EVENTS_PER_WINDOW;
        let logged = (0..limit + 10)
            .filter(|i| {
                let event = if i % 2 == 0 {
                    ConnectionEvent::Connected
                } else {
                    ConnectionEvent::Disconnected
                };
                s.log_event(a, event, t0)
            })
            .count();
        assert_eq!(logged, CONNECTION_EVENTS_PER_WINDOW as usize);
        assert!(
            s.log_event(b, ConnectionEvent::Connected, t0),
            "another source"
        );
        assert!(s.housekeeping(t0, false).is_empty());
        let due = s.housekeeping(t0 + CONNECTION_EVENT_WINDOW, false);
        assert_eq!(
            due,
            [(
                a,
                EventCounts {
                    connected: 5,
                    disconnected: 5
                }
            )]
        );
        for _ in 0..limit + 5 {
            s.log_event(a, ConnectionEvent::Connected, t0 + CONNECTION_EVENT_WINDOW);
        }
        let due = s.housekeeping(t0 + CONNECTION_EVENT_WINDOW, true);
        assert_eq!(due[0].1.connected, 5);
    }

    #[test]
    fn a_reload_keeps_what_each_source_spent() {
        let mut s = sources("max_lines_per_sec = 10\nmax_lines_burst = 2");
        let t0 = Instant::now();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        s.connected(ip, t0);
        let budget = &mut s.get_mut(ip).unwrap().budget;
        assert!(budget.try_take(t0) && budget.try_take(t0));
        let new = Config::parse(
            "max_lines_per_sec = 5\nmax_lines_burst = 50",
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        s.reconfigure(&new, t0);
        assert!(!s.get_mut(ip).unwrap().budget.try_take(t0));
        assert_eq!(s.action(), RateLimitAction::Throttle);
    }
}
