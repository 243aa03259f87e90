//! The stderr sink: one line per entry, for foreground use and the dev config.

use std::io::{BufWriter, Write};

use super::DeliveryStats;
use crate::entry::Entry;

pub struct StderrSink {
    out: BufWriter<Box<dyn Write + Send>>,
    stats: DeliveryStats,
}

impl Default for StderrSink {
    fn default() -> Self {
        Self::new()
    }
}

impl StderrSink {
    pub fn new() -> StderrSink {
        StderrSink::to(Box::new(std::io::stderr()))
    }

    /// The same lines to another writer (tests capture them).
    pub fn to(out: Box<dyn Write + Send>) -> StderrSink {
        StderrSink {
            out: BufWriter::with_capacity(64 * 1024, out),
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
