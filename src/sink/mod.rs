//! Where entries go: journald (native protocol), syslog, or stderr.
//!
//! A sink takes an entry at once or queues it. While it has no room ([`Sink::has_room`]) the
//! server reads nothing more from clients, so a slow sink slows the clients down (TCP flow
//! control) instead of making the daemon drop lines or grow. Each sink owns its poll
//! registration: the server only passes events for [`TOKEN`] on, by calling [`Sink::flush`].

pub mod journald;
pub mod stderr;
pub mod syslog;

use std::io;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mio::Token;

use crate::config::{LogConfig, LogTarget};
use crate::entry::Entry;

/// The poll token a sink registers its socket with.
pub const TOKEN: Token = Token(usize::MAX - 3);

/// Counters a sink keeps about delivery, for the daemon's summary.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryStats {
    pub delivered: u64,
    /// Entries written to stderr as the announced fallback, while the configured journal
    /// socket could not be used: delivered there, as intended, not lost.
    pub fallback: u64,
    /// Entries that were not delivered: the target did not take them in time (they were
    /// printed on stderr as a last resort), or stderr itself could not be written.
    pub undelivered: u64,
}

impl DeliveryStats {
    fn add(&mut self, other: DeliveryStats) {
        self.delivered += other.delivered;
        self.fallback += other.fallback;
        self.undelivered += other.undelivered;
    }
}

/// What the stderr fallback printed counts as such (not as delivered where configured);
/// what it could not print is lost.
fn fallback_stats(f: &Fallback) -> DeliveryStats {
    let printed = f.stderr.stats();
    DeliveryStats {
        delivered: 0,
        fallback: printed.delivered,
        undelivered: printed.undelivered,
    }
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

/// The sink the loop writes to: one of the targets, and what the sinks it replaced counted.
pub struct Sink {
    out: Out,
    /// Delivery counters of the sinks this one took over from (a reload, a fallback ended).
    earlier: DeliveryStats,
}

enum Out {
    Journald(journald::JournaldSink),
    Syslog(syslog::SyslogSink),
    Stderr(stderr::StderrSink),
    /// The journal socket cannot be used (missing, not a datagram socket): entries go to
    /// stderr meanwhile (counted as [`DeliveryStats::fallback`], said at start and in the
    /// stop summary), and the socket is looked at again every [`FALLBACK_RETRY`].
    Fallback(Fallback),
}

/// How often a journal socket that could not be used is looked at again.
pub const FALLBACK_RETRY: Duration = Duration::from_secs(5);

struct Fallback {
    stderr: stderr::StderrSink,
    path: PathBuf,
    since: Instant,
    next_look: Instant,
}

/// An entry a sink had queued and not sent, handed to the sink that replaces it.
struct Queued {
    priority: u8,
    message: String,
    /// Its journald encoding, when it comes from the journald sink.
    encoded: Option<Vec<u8>>,
}

/// Whether the journal socket at `path` can take entries: `Err` says why not. A socket that
/// refuses connections is taken as usable: journald is restarting (its socket unit keeps the
/// path), and the sink holds entries for it.
pub fn check_journal_socket(path: &Path) -> Result<(), String> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err("does not exist".into()),
        Err(e) => return Err(e.to_string()),
        Ok(m) if !m.file_type().is_socket() => return Err("is not a socket".into()),
        Ok(_) => {}
    }
    let socket = UnixDatagram::unbound().map_err(|e| e.to_string())?;
    match socket.connect(path) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EPROTOTYPE) => Err(
            "is not a datagram socket (journald's native socket, /run/systemd/journal/socket, is)"
                .into(),
        ),
        Err(e) => Err(e.to_string()),
    }
}

impl Sink {
    /// Opens the configured sink. A journald target whose socket cannot be used, or a syslog
    /// target on `/dev/log` where there is none, falls back to stderr; the returned notice
    /// says so.
    pub fn open(config: &LogConfig, registry: &mio::Registry) -> (Sink, Option<String>) {
        let (out, notice) = Out::open(config, registry, Instant::now());
        (
            Sink {
                out,
                earlier: DeliveryStats::default(),
            },
            notice,
        )
    }

    /// A sink writing lines to `out` as the stderr sink does (tests capture them).
    pub fn to_writer(out: Box<dyn std::io::Write + Send>) -> Sink {
        Sink {
            out: Out::Stderr(stderr::StderrSink::to(out)),
            earlier: DeliveryStats::default(),
        }
    }

    /// A reload changed `[log]`: the new sink takes over what this one had queued and not
    /// sent (nothing waits and nothing goes to stderr for it). Returns the new sink's notice.
    pub fn replace(&mut self, config: &LogConfig, registry: &mio::Registry) -> Option<String> {
        let queued = self.out.take_queued();
        let (out, notice) = Out::open(config, registry, Instant::now());
        let old = std::mem::replace(&mut self.out, out);
        self.earlier.add(old.stats());
        drop(old);
        self.out.adopt(queued);
        notice
    }

    pub fn log(&mut self, entry: &Entry<'_>) {
        self.out.log(entry);
    }

    /// True while the server may read more from clients.
    pub fn has_room(&self) -> bool {
        match &self.out {
            Out::Journald(s) => s.has_room(),
            Out::Syslog(s) => s.has_room(),
            Out::Stderr(_) | Out::Fallback(_) => true,
        }
    }

    /// Tries to deliver what is queued (after a writable event or when a retry is due), and
    /// flushes buffered output. A fallback whose journal socket has become usable switches
    /// back to journald, with a notice.
    pub fn flush(&mut self, now: Instant, registry: &mio::Registry) {
        match &mut self.out {
            Out::Journald(s) => s.flush(now, registry),
            Out::Syslog(s) => s.flush(now, registry),
            Out::Stderr(s) => s.flush(),
            Out::Fallback(f) => {
                f.stderr.flush();
                if now < f.next_look {
                    return;
                }
                f.next_look = now + FALLBACK_RETRY;
                if check_journal_socket(&f.path).is_err() {
                    return;
                }
                let (path, since) = (f.path.clone(), f.since);
                let printed = f.stderr.stats().delivered;
                let journald = journald::open(&path, TOKEN, registry);
                self.earlier.add(fallback_stats(f));
                self.out = Out::Journald(journald);
                let notice = format!(
                    "the journal socket at {} can be used again: logging to journald again \
                     after {:.0} s on stderr ({printed} entries went to stderr meanwhile)",
                    path.display(),
                    now.duration_since(since).as_secs_f64()
                );
                self.log(&Entry::notice(crate::entry::priority::NOTICE, &notice));
                self.flush(now, registry);
            }
        }
    }

    /// When the sink wants [`Sink::flush`] called again even without an event.
    pub fn wake_at(&self) -> Option<Instant> {
        match &self.out {
            Out::Journald(s) => s.wake_at(),
            Out::Syslog(s) => s.wake_at(),
            Out::Stderr(_) => None,
            Out::Fallback(f) => Some(f.next_look),
        }
    }

    /// Delivers everything queued before `deadline`; what cannot be delivered by then is
    /// written to stderr and counted as undelivered.
    pub fn drain(&mut self, deadline: Instant, registry: &mio::Registry) {
        match &mut self.out {
            Out::Journald(s) => s.drain(deadline, registry),
            Out::Syslog(s) => s.drain(deadline, registry),
            Out::Stderr(s) => s.flush(),
            Out::Fallback(f) => f.stderr.flush(),
        }
    }

    pub fn stats(&self) -> DeliveryStats {
        let mut stats = self.earlier;
        stats.add(self.out.stats());
        stats
    }

    /// Whether entries already appear on stderr (so the daemon need not print them there).
    pub fn is_stderr(&self) -> bool {
        matches!(self.out, Out::Stderr(_) | Out::Fallback(_))
    }

    pub fn describe(&self) -> String {
        match &self.out {
            Out::Journald(s) => format!("journald at {}", s.socket_path().display()),
            Out::Syslog(s) => s.describe(),
            Out::Stderr(_) => "stderr".to_string(),
            Out::Fallback(f) => format!(
                "stderr until the journal socket at {} can be used",
                f.path.display()
            ),
        }
    }
}

impl Out {
    fn open(config: &LogConfig, registry: &mio::Registry, now: Instant) -> (Out, Option<String>) {
        match config.target {
            LogTarget::Stderr => (Out::Stderr(stderr::StderrSink::new()), None),
            LogTarget::Syslog => {
                let server = config.syslog_server();
                if let Some(notice) = syslog::without_local_socket(&server, syslog::DEV_LOG) {
                    return (Out::Stderr(stderr::StderrSink::new()), Some(notice));
                }
                (Out::Syslog(syslog::open(&server, TOKEN, registry)), None)
            }
            LogTarget::Journald => match check_journal_socket(&config.journal_socket) {
                Ok(()) => (
                    Out::Journald(journald::open(&config.journal_socket, TOKEN, registry)),
                    None,
                ),
                Err(why) => {
                    let notice = format!(
                        "the journal socket {} {why}: logging to stderr meanwhile, looking \
                         again every {} s",
                        config.journal_socket.display(),
                        FALLBACK_RETRY.as_secs()
                    );
                    let fallback = Fallback {
                        stderr: stderr::StderrSink::new(),
                        path: config.journal_socket.clone(),
                        since: now,
                        next_look: now + FALLBACK_RETRY,
                    };
                    (Out::Fallback(fallback), Some(notice))
                }
            },
        }
    }

    fn log(&mut self, entry: &Entry<'_>) {
        match self {
            Out::Journald(s) => s.log(entry),
            Out::Syslog(s) => s.log(entry),
            Out::Stderr(s) => s.log(entry),
            Out::Fallback(f) => f.stderr.log(entry),
        }
    }

    fn stats(&self) -> DeliveryStats {
        match self {
            Out::Journald(s) => s.stats(),
            Out::Syslog(s) => s.stats(),
            Out::Stderr(s) => s.stats(),
            Out::Fallback(f) => fallback_stats(f),
        }
    }

    /// What is queued and not sent, taken out.
    fn take_queued(&mut self) -> Vec<Queued> {
        match self {
            Out::Journald(s) => s
                .take_pending()
                .into_iter()
                .map(|encoded| Queued {
                    priority: journald::encode::priority_of(&encoded).unwrap_or(6),
                    message: journald::encode::message_of(&encoded).into_owned(),
                    encoded: Some(encoded),
                })
                .collect(),
            Out::Syslog(s) => s
                .take_pending()
                .into_iter()
                .map(|formatted| {
                    let (priority, message) = syslog::unformat(&formatted);
                    Queued {
                        priority,
                        message,
                        encoded: None,
                    }
                })
                .collect(),
            Out::Stderr(_) | Out::Fallback(_) => Vec::new(),
        }
    }

    /// Entries another sink had queued.
    fn adopt(&mut self, queued: Vec<Queued>) {
        for q in queued {
            match (&mut *self, q.encoded) {
                (Out::Journald(s), Some(encoded)) => s.adopt(encoded),
                (out, _) => {
                    let entry = Entry {
                        priority: q.priority,
                        event: crate::entry::Event::Line,
                        message: &q.message,
                        peer: None,
                        fields: crate::entry::Fields::new(),
                        tls: None,
                        origin: crate::entry::Origin::DAEMON,
                    };
                    out.log(&entry);
                }
            }
        }
    }
}
