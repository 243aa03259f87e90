//! Where entries go: journald (native protocol), syslog, or stderr.
//!
//! A sink takes an entry at once or queues it. While it has no room ([`Sink::has_room`]) the
//! server reads nothing more from clients, so a slow sink slows the clients down (TCP flow
//! control) instead of making the daemon drop lines or grow. Each sink owns its poll
//! registration: the server only passes events for [`TOKEN`] on, by calling [`Sink::flush`].

pub mod journald;
pub mod stderr;
pub mod syslog;

use std::time::Instant;

use mio::Token;

use crate::config::{LogConfig, LogTarget};
use crate::entry::Entry;

/// The poll token a sink registers its socket with.
pub const TOKEN: Token = Token(usize::MAX - 3);

/// Counters a sink keeps about delivery, for the daemon's summary.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryStats {
    pub delivered: u64,
    /// Entries that could not go where configured and went to stderr instead.
    pub undelivered: u64,
}

/// `v` in decimal, written into `buf`: a number for a field without allocating.
pub fn decimal_bytes(buf: &mut [u8; 20], mut v: u64) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return &buf[i..];
        }
    }
}

pub enum Sink {
    Journald(journald::JournaldSink),
    Syslog(syslog::SyslogSink),
    Stderr(stderr::StderrSink),
}

impl Sink {
    /// Opens the configured sink. A journald target without a journal socket, or a syslog
    /// target on `/dev/log` where there is none, falls back to stderr; the returned notice
    /// says so.
    pub fn open(config: &LogConfig, registry: &mio::Registry) -> (Sink, Option<String>) {
        match config.target {
            LogTarget::Stderr => (Sink::Stderr(stderr::StderrSink::new()), None),
            LogTarget::Syslog => {
                let server = config.syslog_server();
                if let Some(notice) = syslog::without_local_socket(&server, syslog::DEV_LOG) {
                    return (Sink::Stderr(stderr::StderrSink::new()), Some(notice));
                }
                (Sink::Syslog(syslog::open(&server, TOKEN, registry)), None)
            }
            LogTarget::Journald => {
                if !config.journal_socket.exists() {
                    let notice = format!(
                        "no journal socket at {}: logging to stderr instead",
                        config.journal_socket.display()
                    );
                    return (Sink::Stderr(stderr::StderrSink::new()), Some(notice));
                }
                let sink = journald::open(&config.journal_socket, TOKEN, registry);
                (Sink::Journald(sink), None)
            }
        }
    }

    pub fn log(&mut self, entry: &Entry<'_>) {
        match self {
            Sink::Journald(s) => s.log(entry),
            Sink::Syslog(s) => s.log(entry),
            Sink::Stderr(s) => s.log(entry),
        }
    }

    /// True while the server may read more from clients.
    pub fn has_room(&self) -> bool {
        match self {
            Sink::Journald(s) => s.has_room(),
            Sink::Syslog(s) => s.has_room(),
            Sink::Stderr(_) => true,
        }
    }

    /// Tries to deliver what is queued (after a writable event or when a retry is due), and
    /// flushes buffered output.
    pub fn flush(&mut self, now: Instant, registry: &mio::Registry) {
        match self {
            Sink::Journald(s) => s.flush(now, registry),
            Sink::Syslog(s) => s.flush(now, registry),
            Sink::Stderr(s) => s.flush(),
        }
    }

    /// When the sink wants [`Sink::flush`] called again even without an event.
    pub fn wake_at(&self) -> Option<Instant> {
        match self {
            Sink::Journald(s) => s.wake_at(),
            Sink::Syslog(s) => s.wake_at(),
            Sink::Stderr(_) => None,
        }
    }

    /// Delivers everything queued before `deadline`; what cannot be delivered by then is
    /// written to stderr and counted as undelivered.
    pub fn drain(&mut self, deadline: Instant, registry: &mio::Registry) {
        match self {
            Sink::Journald(s) => s.drain(deadline, registry),
            Sink::Syslog(s) => s.drain(deadline, registry),
            Sink::Stderr(s) => s.flush(),
        }
    }

    pub fn stats(&self) -> DeliveryStats {
        match self {
            Sink::Journald(s) => s.stats(),
            Sink::Syslog(s) => s.stats(),
            Sink::Stderr(s) => s.stats(),
        }
    }

    /// Whether entries already appear on stderr (so the daemon need not print them there).
    pub fn is_stderr(&self) -> bool {
        matches!(self, Sink::Stderr(_))
    }

    pub fn describe(&self) -> String {
        match self {
            Sink::Journald(s) => format!("journald at {}", s.socket_path().display()),
            Sink::Syslog(s) => s.describe(),
            Sink::Stderr(_) => "stderr".to_string(),
        }
    }
}
