//! Token buckets: the line budget of a source address (see `source.rs`).

use std::time::{Duration, Instant};

/// The longest [`TokenBucket::ready_at`] waits: a day.
const MAX_WAIT: Duration = Duration::from_secs(24 * 3600);

/// Allows `rate` events per second on average and bursts of up to `burst`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A bucket that starts full. A rate of 0 means no limit.
    pub fn new(rate: u32, burst: u32, now: Instant) -> TokenBucket {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            rate: f64::from(rate),
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Applies a new rate and burst (a reload) without refilling: the tokens left, brought
    /// up to date, carry over (at most the new burst), so reloading grants no extra lines.
    pub fn reconfigure(&mut self, rate: u32, burst: u32, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        let tokens = if self.is_unlimited() {
            self.burst
        } else {
            (self.tokens + elapsed * self.rate).min(self.burst)
        };
        *self = TokenBucket::new(rate, burst, now);
        self.tokens = tokens.min(self.burst);
    }

    pub fn is_unlimited(&self) -> bool {
        self.rate == 0.0
    }

    /// Brings the tokens up to date.
    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        if self.is_unlimited() {
            return true;
        }
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Takes one token, going into debt if there is none: for lines already read, which are
    /// logged anyway; [`TokenBucket::ready_at`] then says when the debt is paid.
    pub fn take(&mut self, now: Instant) {
        if !self.is_unlimited() {
            self.refill(now);
            self.tokens -= 1.0;
        }
    }

    /// When a token will be there again, if there is none now.
    pub fn ready_at(&mut self, now: Instant) -> Option<Instant> {
        if self.is_unlimited() {
            return None;
        }
        self.refill(now);
        // (Bounded: a debt no daemon runs up must not overflow a Duration or an Instant.)
        (self.tokens < 1.0).then(|| {
            let wait = Duration::try_from_secs_f64((1.0 - self.tokens) / self.rate)
                .map_or(MAX_WAIT, |w| w.min(MAX_WAIT));
            now + wait
        })
    }

    /// The tokens left now (negative: in debt), to carry to another process.
    pub fn tokens(&mut self, now: Instant) -> f64 {
        self.refill(now);
        self.tokens
    }

    /// A bucket with `tokens` left (at most the burst), as [`TokenBucket::tokens`] gave them.
    pub fn with_tokens(rate: u32, burst: u32, tokens: f64, now: Instant) -> TokenBucket {
        let mut bucket = TokenBucket::new(rate, burst, now);
        if tokens.is_finite() {
            bucket.tokens = tokens.min(bucket.burst);
        }
        bucket
    }

    /// Whether the bucket is full again (nothing spent that a new start would refill).
    pub fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.is_unlimited() || self.tokens >= self.burst
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconfigure_keeps_what_was_spent() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10, 5, t0);
        assert_eq!((0..20).filter(|_| b.try_take(t0)).count(), 5);
        b.reconfigure(10, 5, t0);
        assert_eq!((0..20).filter(|_| b.try_take(t0)).count(), 0);
        // A smaller burst caps what is left; a larger one does not add to it.
        let t1 = t0 + Duration::from_millis(300);
        b.reconfigure(10, 2, t1);
        assert_eq!((0..20).filter(|_| b.try_take(t1)).count(), 2);
        b.reconfigure(10, 50, t1);
        assert_eq!((0..20).filter(|_| b.try_take(t1)).count(), 0);
    }

    #[test]
    fn bursts_then_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10, 5, t0);
        assert_eq!((0..20).filter(|_| b.try_take(t0)).count(), 5);
        // 0.5 s later: 5 more tokens.
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!((0..20).filter(|_| b.try_take(t1)).count(), 5);
        // Never more than the burst, however long it waited.
        let t2 = t1 + Duration::from_secs(3600);
        assert_eq!((0..20).filter(|_| b.try_take(t2)).count(), 5);
    }

    #[test]
    fn debt_is_paid_at_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10, 2, t0);
        assert_eq!(b.ready_at(t0), None);
        for _ in 0..6 {
            b.take(t0);
        }
        // 2 tokens, 6 taken: 4 in debt, and one more needed: 0.5 s at 10/s.
        assert_eq!(b.ready_at(t0), Some(t0 + Duration::from_millis(500)));
        assert!(!b.is_full(t0));
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!(b.ready_at(t1), None);
        assert!(b.try_take(t1));
        assert!(!b.try_take(t1));
        assert!(b.is_full(t1 + Duration::from_secs(1)));
    }

    /// Issue 17 item 7: however deep the debt (a budget from a state that was not checked),
    /// the wait is bounded and nothing panics.
    #[test]
    fn a_debt_no_daemon_runs_up_waits_at_most_a_day() {
        let t0 = Instant::now();
        for tokens in [-1e300, -1e9, f64::MIN] {
            let mut b = TokenBucket::with_tokens(100, 100, tokens, t0);
            assert_eq!(b.ready_at(t0), Some(t0 + MAX_WAIT), "{tokens:e}");
        }
    }

    #[test]
    fn zero_rate_is_unlimited() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(0, 0, t0);
        assert!((0..100_000).all(|_| b.try_take(t0)));
        b.take(t0);
        assert_eq!(b.ready_at(t0), None);
        assert!(b.is_full(t0));
    }
}
