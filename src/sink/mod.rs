//! Where entries go: journald (native protocol), syslog, or stderr.
//!
//! A sink either takes an entry at once or queues it; while anything is queued
//! ([`Sink::is_ready`] is false) the server stops reading from clients, so a slow sink slows
//! the clients down (TCP flow control) instead of making the daemon drop lines or grow.

pub mod journald;
pub mod stderr;
pub mod syslog;

use std::net::SocketAddr;
use std::time::Instant;

use crate::config::{LogConfig, LogTarget};

/// syslog priorities used by the daemon.
pub mod priority {
    pub const ERR: u8 = 3;
    pub const WARNING: u8 = 4;
    pub const NOTICE: u8 = 5;
    pub const INFO: u8 = 6;
}

/// What an entry records, as the `LISTENER_EVENT` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A line (or piece of one) a client sent.
    Line,
    Connected,
    Disconnected,
    Refused,
    /// Lines dropped by the per-client rate limit.
    Dropped,
    /// The daemon's own news: start, reload, stop, delivery problems.
    Notice,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Line => "line",
            Event::Connected => "connected",
            Event::Disconnected => "disconnected",
            Event::Refused => "refused",
            Event::Dropped => "dropped",
            Event::Notice => "notice",
        }
    }
}

/// A client: where it is and which connection of the daemon's it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub addr: SocketAddr,
    pub connection_id: u64,
}

/// One entry to log. `message` is the whole human-readable text, peer included.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    pub priority: u8,
    pub event: Event,
    pub message: &'a str,
    pub peer: Option<Peer>,
    /// Further fields, such as `LINE_PART`.
    pub fields: &'a [(&'static str, &'a str)],
}

impl<'a> Entry<'a> {
    /// An entry about the daemon itself.
    pub fn notice(priority: u8, message: &'a str) -> Entry<'a> {
        Entry {
            priority,
            event: Event::Notice,
            message,
            peer: None,
            fields: &[],
        }
    }
}

/// Counters a sink keeps about delivery, for the daemon's summary.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryStats {
    pub delivered: u64,
    /// Entries that could not go where configured and went to stderr instead.
    pub undelivered: u64,
}

/// `v` in decimal, written into `buf`: a number for a field without allocating.
pub fn decimal(buf: &mut [u8; 20], v: u64) -> &str {
    std::str::from_utf8(decimal_bytes(buf, v)).expect("ASCII digits")
}

/// [`decimal`] as bytes, for the encoders: no UTF-8 check on the way (several per entry).
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
    /// Opens the configured sink. A journald target without a journal socket falls back to
    /// stderr; the returned notice says so.
    pub fn open(config: &LogConfig, registry: &mio::Registry) -> (Sink, Option<String>) {
        match config.target {
            LogTarget::Stderr => (Sink::Stderr(stderr::StderrSink::new()), None),
            LogTarget::Syslog => {
                let (sink, notice) = syslog::SyslogSink::open(&config.syslog_server());
                (Sink::Syslog(sink), notice)
            }
            LogTarget::Journald => {
                if !config.journal_socket.exists() {
                    let notice = format!(
                        "no journal socket at {}: logging to stderr instead",
                        config.journal_socket.display()
                    );
                    return (Sink::Stderr(stderr::StderrSink::new()), Some(notice));
                }
                let sink = journald::JournaldSink::open(&config.journal_socket, registry);
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

    /// True when nothing is queued, so the server may read more from clients.
    pub fn is_ready(&self) -> bool {
        match self {
            Sink::Journald(s) => s.is_ready(),
            Sink::Syslog(_) | Sink::Stderr(_) => true,
        }
    }

    /// Tries to deliver what is queued (after a writable event or when a retry is due), and
    /// flushes buffered output.
    pub fn flush(&mut self, now: Instant, registry: &mio::Registry) {
        match self {
            Sink::Journald(s) => s.flush(now, registry),
            Sink::Syslog(_) => {}
            Sink::Stderr(s) => s.flush(),
        }
    }

    /// When the sink wants [`Sink::flush`] called again even without an event.
    pub fn retry_at(&self) -> Option<Instant> {
        match self {
            Sink::Journald(s) => s.retry_at(),
            Sink::Syslog(_) | Sink::Stderr(_) => None,
        }
    }

    /// Delivers everything queued before `deadline`; what cannot be delivered by then is
    /// written to stderr and counted as undelivered.
    pub fn drain(&mut self, deadline: Instant, registry: &mio::Registry) {
        match self {
            Sink::Journald(s) => s.drain(deadline, registry),
            Sink::Syslog(_) => {}
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

    pub fn describe(&self) -> String {
        match self {
            Sink::Journald(s) => format!("journald at {}", s.socket_path().display()),
            Sink::Syslog(s) => s.describe(),
            Sink::Stderr(_) => "stderr".to_string(),
        }
    }
}
