//! The UDP senders' budgets, bounded: one token bucket per source address
//! (`max_lines_per_sec`, `max_lines_burst`; a datagram cannot be slowed down, so a message
//! over the budget is dropped and counted for its source), at most [`MAX_SOURCES`] of them
//! whatever the number of (spoofed) addresses. A source whose bucket is full again and has
//! no drops left to report holds nothing worth keeping: it is forgotten when room is needed.
//! When every kept source is busy, new ones share one bucket, "other sources", until the
//! next report.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use crate::ratelimit::TokenBucket;

/// Sources with a budget of their own at most.
pub const MAX_SOURCES: usize = 4096;

/// One sender's budget and the messages it had dropped.
#[derive(Debug, Clone)]
pub struct UdpSource {
    pub budget: TokenBucket,
    /// Dropped over the budget and not reported yet.
    unreported: u64,
    /// Dropped over the budget while it was kept.
    total: u64,
}

impl UdpSource {
    fn new(rate: u32, burst: u32, now: Instant) -> UdpSource {
        UdpSource {
            budget: TokenBucket::new(rate, burst, now),
            unreported: 0,
            total: 0,
        }
    }

    /// Spends a token for a message; false (counted) when there is none.
    pub fn admit(&mut self, now: Instant) -> bool {
        if self.budget.try_take(now) {
            return true;
        }
        self.unreported += 1;
        self.total += 1;
        false
    }
}

/// Drops of one source to report: how many since the last report, and in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceDrops {
    pub ip: IpAddr,
    pub count: u64,
    pub total: u64,
}

/// What [`UdpSources::reports`] hands out: per source, and the rest summed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DropReports {
    pub sources: Vec<SourceDrops>,
    /// (sources, messages) not reported one by one (the shared bucket's among them).
    pub others: Option<(u64, u64)>,
}

pub struct UdpSources {
    map: HashMap<IpAddr, UdpSource>,
    /// The bucket new sources share while the map is full of busy ones.
    others: UdpSource,
    /// Until the next report, the map is full of busy sources: new ones go to `others`
    /// without a search for room.
    crowded: bool,
    rate: u32,
    burst: u32,
}

impl UdpSources {
    pub fn new(rate: u32, burst: u32, now: Instant) -> UdpSources {
        UdpSources {
            map: HashMap::new(),
            others: UdpSource::new(rate, burst, now),
            crowded: false,
            rate,
            burst,
        }
    }

    /// A new limit: every budget carries its tokens over (a reload grants no messages).
    pub fn reconfigure(&mut self, rate: u32, burst: u32, now: Instant) {
        (self.rate, self.burst) = (rate, burst);
        for source in self.map.values_mut().chain([&mut self.others]) {
            source.budget.reconfigure(rate, burst, now);
        }
    }

    /// Sources kept (with a budget of their own).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// The budget `ip`'s messages spend from: its own, or with [`MAX_SOURCES`] busy sources
    /// kept already, the one the others share.
    pub fn get(&mut self, ip: IpAddr, now: Instant) -> &mut UdpSource {
        if !self.map.contains_key(&ip) && !self.make_room(now) {
            return &mut self.others;
        }
        let (rate, burst) = (self.rate, self.burst);
        self.map
            .entry(ip)
            .or_insert_with(|| UdpSource::new(rate, burst, now))
    }

    /// Whether there is room for one more source, forgetting the idle ones if need be.
    fn make_room(&mut self, now: Instant) -> bool {
        if self.map.len() < MAX_SOURCES {
            return true;
        }
        if self.crowded {
            return false;
        }
        self.map
            .retain(|_, s| s.unreported > 0 || !s.budget.is_full(now));
        // Few freed: do not search again for every new address until the next report.
        self.crowded = self.map.len() > MAX_SOURCES - MAX_SOURCES / 8;
        self.map.len() < MAX_SOURCES
    }

    /// The drops to report now: one by one for at most `limit` sources (the most first),
    /// the rest summed; all counted as reported.
    pub fn reports(&mut self, limit: usize) -> DropReports {
        self.crowded = false;
        let mut sources: Vec<SourceDrops> = self
            .map
            .iter_mut()
            .filter(|(_, s)| s.unreported > 0)
            .map(|(ip, s)| {
                let count = std::mem::take(&mut s.unreported);
                SourceDrops {
                    ip: *ip,
                    count,
                    total: s.total,
                }
            })
            .collect();
        sources.sort_by(|a, b| b.count.cmp(&a.count).then(a.ip.cmp(&b.ip)));
        let mut others = (0u64, std::mem::take(&mut self.others.unreported));
        if others.1 > 0 {
            others.0 = 1;
        }
        for rest in sources.drain(limit.min(sources.len())..) {
            others.0 += 1;
            others.1 += rest.count;
        }
        DropReports {
            sources,
            others: (others.1 > 0).then_some(others),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::time::Duration;

    fn ip(i: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0x7f00_0000 + i))
    }

    #[test]
    fn a_source_over_its_budget_has_its_messages_dropped_and_counted() {
        let t0 = Instant::now();
        let mut s = UdpSources::new(10, 3, t0);
        let admitted = (0..5).filter(|_| s.get(ip(1), t0).admit(t0)).count();
        assert_eq!(admitted, 3);
        assert!(s.get(ip(2), t0).admit(t0), "another source has its own");
        let r = s.reports(10);
        assert_eq!(
            r.sources,
            vec![SourceDrops {
                ip: ip(1),
                count: 2,
                total: 2
            }]
        );
        assert_eq!(r.others, None);
        assert_eq!(s.reports(10), DropReports::default(), "reported once");
        // Budget back after a second.
        assert!(s
            .get(ip(1), t0 + Duration::from_secs(1))
            .admit(t0 + Duration::from_secs(1)));
    }

    /// Issue 19 item 5: a flood from many addresses keeps at most MAX_SOURCES; sources that
    /// are busy (in debt, or with drops to report) are kept, and when every one is, new
    /// ones share a bucket whose drops are counted too.
    #[test]
    fn the_sources_kept_are_bounded_under_a_flood_of_addresses() {
        let t0 = Instant::now();
        let mut s = UdpSources::new(1000, 5, t0);
        let mut t = t0;
        for i in 0..100_000 {
            t += Duration::from_micros(50);
            s.get(ip(i), t).admit(t);
            assert!(s.len() <= MAX_SOURCES);
        }
        assert!(s.len() > 0);
        // Every kept source busy: in debt and with drops to report.
        let mut s = UdpSources::new(1, 1, t0);
        for i in 0..MAX_SOURCES as u32 {
            let src = s.get(ip(i), t0);
            src.admit(t0);
            assert!(!src.admit(t0));
        }
        assert_eq!(s.len(), MAX_SOURCES);
        assert!(s.get(ip(1_000_000), t0).admit(t0), "the shared bucket");
        assert!(!s.get(ip(1_000_001), t0).admit(t0), "shared, so spent");
        assert_eq!(s.len(), MAX_SOURCES);
        let r = s.reports(16);
        assert_eq!(r.sources.len(), 16);
        let others = r.others.unwrap();
        assert_eq!(
            others,
            (MAX_SOURCES as u64 - 16 + 1, MAX_SOURCES as u64 - 16 + 1)
        );
    }
}
