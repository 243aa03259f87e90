//! What the UDP input counts, and how it says so: the totals of the stop summary
//! ([`UdpCounts`]), and the `dropped` entries (priority 4, `TRANSPORT=udp`) that report,
//! at most once per [`REPORT_INTERVAL`], the datagrams the kernel dropped (SO_RXQ_OVFL), the
//! messages over a source's budget (per source, the busiest [`SOURCES_PER_REPORT`] one by
//! one, the rest summed), datagrams from sources not in the allow list, and datagrams cut at
//! `udp_max_datagram`. Nothing is lost without a count: sent = logged + these.

use std::fmt::Write;
use std::net::IpAddr;
use std::time::Duration;

use crate::entry::{priority, Author, Entry, Event, Fields, Value};

/// The UDP `dropped` entries come at most this often.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(1);
/// Sources whose drops are reported one by one in a report; the rest are summed.
pub const SOURCES_PER_REPORT: usize = 8;

/// The field every UDP entry carries (TCP entries have none).
pub const TRANSPORT: (&str, &str) = ("TRANSPORT", "udp");

/// Totals since the start, for the stop summary.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UdpCounts {
    /// Datagrams read.
    pub datagrams: u64,
    /// Messages logged (a line of a `line` datagram is one; one logged in pieces counts once).
    pub messages: u64,
    /// Datagrams the kernel dropped for want of receive buffer (as far as the datagrams
    /// read since have told).
    pub kernel_dropped: u64,
    /// Messages dropped over their source's budget.
    pub over_limit: u64,
    /// Datagrams from sources not in the allow list.
    pub not_allowed: u64,
    /// Datagrams longer than `udp_max_datagram`: logged cut (and counted here).
    pub truncated: u64,
    /// Datagrams that held no message (empty, or only LF, CR and NUL bytes).
    pub empty: u64,
}

impl UdpCounts {
    /// The stop summary's part about UDP.
    pub fn summary(&self) -> String {
        let mut text = format!(
            "UDP: read {} datagrams, logged {} messages",
            self.datagrams, self.messages
        );
        let mut counted = Vec::new();
        if self.kernel_dropped > 0 {
            counted.push(format!(
                "{} datagrams dropped by the kernel (receive buffer full)",
                self.kernel_dropped
            ));
        }
        if self.over_limit > 0 {
            counted.push(format!("{} messages over the rate limit", self.over_limit));
        }
        if self.not_allowed > 0 {
            counted.push(format!(
                "{} datagrams from sources not in the allow list",
                self.not_allowed
            ));
        }
        if !counted.is_empty() {
            let _ = write!(text, "; dropped and counted: {}", counted.join(", "));
        }
        if self.truncated > 0 {
            let _ = write!(
                text,
                "; {} datagrams longer than udp_max_datagram logged cut",
                self.truncated
            );
        }
        if self.empty > 0 {
            let _ = write!(text, "; {} empty datagrams", self.empty);
        }
        text
    }

    /// Whether anything that arrived was not logged whole.
    pub fn lost_any(&self) -> bool {
        self.kernel_dropped + self.over_limit + self.not_allowed + self.truncated > 0
    }
}

/// Counts not reported in an entry yet (the per-source drops are kept with the sources).
#[derive(Debug, Default, Clone)]
pub struct Unreported {
    pub kernel_dropped: u64,
    pub not_allowed: u64,
    /// The last source not allowed, for the report.
    pub not_allowed_from: Option<IpAddr>,
    pub truncated: u64,
}

/// The kernel's drop count as the datagrams tell it: a running count per socket (a u32
/// that wraps), seen on each datagram queued after a drop.
#[derive(Debug, Default, Clone, Copy)]
pub struct KernelDrops {
    last: u32,
}

impl KernelDrops {
    /// A socket carried over: the count as of the last datagram the previous process read.
    pub fn starting_at(last: u32) -> KernelDrops {
        KernelDrops { last }
    }

    /// The count as of the last datagram read (what the store carries to the next process).
    pub fn last(&self) -> u32 {
        self.last
    }

    /// The drops since the last datagram that told, given this one's count.
    pub fn seen(&mut self, count: u32) -> u64 {
        let new = count.wrapping_sub(self.last);
        // A count that went back (it never does) is taken as it is.
        if new > u32::MAX / 2 {
            return 0;
        }
        self.last = count;
        u64::from(new)
    }
}

/// A `dropped` entry about UDP: `count` under `field`, `TRANSPORT=udp`, and the source's
/// REMOTE_ADDR when it is about one.
pub fn dropped_entry<'a>(
    buf: &'a mut String,
    text: std::fmt::Arguments<'_>,
    field: &'static str,
    count: u64,
    ip: Option<&'a str>,
) -> Entry<'a> {
    buf.clear();
    let _ = buf.write_fmt(text);
    let mut fields = Fields::new()
        .with(field, Value::Number(count))
        .with(TRANSPORT.0, Value::Text(TRANSPORT.1));
    if let Some(ip) = ip {
        fields.push("REMOTE_ADDR", Value::Text(ip));
    }
    Entry {
        priority: priority::WARNING,
        event: Event::Dropped,
        message: buf,
        peer: None,
        fields,
        tls: None,
        origin: Author::DAEMON,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernels_running_count_gives_the_drops_since_the_last_one() {
        let mut k = KernelDrops::default();
        assert_eq!(k.seen(5), 5);
        assert_eq!(k.seen(5), 0);
        assert_eq!(k.seen(12), 7);
        let mut k = KernelDrops { last: u32::MAX - 1 };
        assert_eq!(k.seen(3), 5, "wraps");
    }

    #[test]
    fn the_summary_names_what_was_counted() {
        let c = UdpCounts {
            datagrams: 10,
            messages: 7,
            kernel_dropped: 4,
            over_limit: 2,
            not_allowed: 1,
            truncated: 1,
            empty: 0,
        };
        assert_eq!(
            c.summary(),
            "UDP: read 10 datagrams, logged 7 messages; dropped and counted: 4 datagrams dropped \
             by the kernel (receive buffer full), 2 messages over the rate limit, 1 datagrams \
             from sources not in the allow list; 1 datagrams longer than udp_max_datagram \
             logged cut"
        );
        assert!(c.lost_any());
        assert!(!UdpCounts::default().lost_any());
    }
}
