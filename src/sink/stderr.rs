//! The stderr sink: one line per entry, for foreground use and the dev config.

use std::io::{BufWriter, Stderr, Write};

use super::{DeliveryStats, Entry};

pub struct StderrSink {
    out: BufWriter<Stderr>,
    stats: DeliveryStats,
}

impl Default for StderrSink {
    fn default() -> Self {
        Self::new()
    }
}

impl StderrSink {
    pub fn new() -> StderrSink {
        StderrSink {
            out: BufWriter::with_capacity(64 * 1024, std::io::stderr()),
            stats: DeliveryStats::default(),
        }
    }

    pub fn log(&mut self, entry: &Entry<'_>) {
        // A blocking write: a slow terminal slows the daemon down rather than losing lines.
        if writeln!(self.out, "{}", entry.message).is_ok() {
            self.stats.delivered += 1;
        } else {
            self.stats.undelivered += 1;
        }
    }

    pub fn flush(&mut self) {
        let _ = self.out.flush();
    }

    pub fn stats(&self) -> DeliveryStats {
        self.stats
    }
}

impl Drop for StderrSink {
    fn drop(&mut self) {
        self.flush();
    }
}
