//! "At most N reports per window; the rest counted and summarised when the window ends": the
//! one rule behind every warning that could otherwise flood the journal (refused clients,
//! accept errors, lines dropped by the rate limit). Nothing is lost: what is not reported on
//! its own is counted into a summary.

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Throttle {
    limit: u32,
    window: Duration,
    /// When the current window began; `None` between windows.
    started: Option<Instant>,
    reported: u32,
    suppressed: u64,
}

impl Throttle {
    /// At most `limit` reports of their own per `window` (0: every occurrence is only counted).
    pub const fn new(limit: u32, window: Duration) -> Throttle {
        Throttle {
            limit,
            window,
            started: None,
            reported: 0,
            suppressed: 0,
        }
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    /// Ends a window that is over: returns the count to summarise, if any. Call it before
    /// [`Throttle::admit`] (so the summary comes before the next report) and periodically.
    pub fn close_expired(&mut self, now: Instant) -> Option<u64> {
        let start = self.started?;
        if now.duration_since(start) < self.window {
            return None;
        }
        self.started = None;
        self.reported = 0;
        self.take()
    }

    /// Counts one occurrence; true if it may be reported on its own.
    pub fn admit(&mut self, now: Instant) -> bool {
        if self.started.is_none() {
            self.started = Some(now);
        }
        if self.reported < self.limit {
            self.reported += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }

    /// Counts `n` occurrences that are never reported on their own.
    pub fn count(&mut self, now: Instant, n: u64) {
        if n > 0 {
            self.started.get_or_insert(now);
            self.suppressed += n;
        }
    }

    /// What is counted and not yet summarised, left as it is.
    pub fn pending(&self) -> u64 {
        self.suppressed
    }

    /// Everything counted and not yet summarised, whatever the window (a connection's end, the
    /// daemon's stop).
    pub fn take(&mut self) -> Option<u64> {
        let n = std::mem::take(&mut self.suppressed);
        (n > 0).then_some(n)
    }

    /// When the current window ends, if one is open.
    pub fn window_end(&self) -> Option<Instant> {
        self.started.map(|s| s + self.window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_up_to_the_limit_then_summarises_the_rest_once_the_window_is_over() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut t = Throttle::new(2, 10 * s);
        assert_eq!(t.close_expired(t0), None);
        let admitted: Vec<bool> = (0..5).map(|i| t.admit(t0 + i * s)).collect();
        assert_eq!(admitted, [true, true, false, false, false]);
        assert_eq!(t.close_expired(t0 + 9 * s), None, "window still open");
        assert_eq!(t.window_end(), Some(t0 + 10 * s));
        assert_eq!(t.close_expired(t0 + 10 * s), Some(3));
        assert_eq!(t.close_expired(t0 + 30 * s), None, "nothing left");
        // A new window: the limit applies afresh.
        assert!(t.admit(t0 + 31 * s));
        assert!(t.admit(t0 + 31 * s));
        assert!(!t.admit(t0 + 31 * s));
        assert_eq!(t.close_expired(t0 + 40 * s), None);
        assert_eq!(t.close_expired(t0 + 41 * s), Some(1));
    }

    #[test]
    fn a_window_without_suppressed_occurrences_ends_without_a_summary() {
        let t0 = Instant::now();
        let mut t = Throttle::new(5, Duration::from_secs(10));
        assert!(t.admit(t0));
        assert_eq!(t.close_expired(t0 + Duration::from_secs(10)), None);
        assert_eq!(t.window_end(), None);
    }

    #[test]
    fn counted_only_and_taken_whatever_the_window() {
        let t0 = Instant::now();
        let mut t = Throttle::new(0, Duration::from_secs(1));
        assert!(!t.admit(t0));
        t.count(t0, 4);
        t.count(t0, 0);
        assert_eq!(t.take(), Some(5));
        assert_eq!(t.take(), None);
        assert_eq!(t.close_expired(t0 + Duration::from_secs(2)), None);
    }
}
