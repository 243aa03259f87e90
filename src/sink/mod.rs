//! Where entries go: journald (native protocol), syslog, or stderr.
//!
//! With `[log] namespace` the sink is two journald sinks, one per socket: client entries
//! (lines and connections, [`crate::entry::Event::is_client`]) go to the journal namespace's,
//! everything else (the daemon's own news) to the main one; both queue, hold and redeliver
//! alike, and the loop reads clients only while both have room.
//!
//! A sink takes an entry at once or queues it. While it has no room ([`Sink::has_room`]) the
//! server reads nothing more from clients, so a slow sink slows the clients down (TCP flow
//! control) instead of making the daemon drop lines or grow. Each sink owns its poll
//! registration: the server only passes events for [`TOKEN`] on, by calling [`Sink::flush`].

pub mod delivery;
pub mod journald;
pub mod stderr;
mod syscall;
pub mod syslog;

use std::io;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mio::Token;

use crate::config::{namespace_socket, LogConfig, LogTarget};
use crate::entry::Entry;

/// The poll token a sink registers its socket with.
pub const TOKEN: Token = Token(usize::MAX - 3);
/// The poll token of the journal namespace's sink (`[log] namespace`).
pub const CLIENT_TOKEN: Token = Token(usize::MAX - 4);

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
    /// Times the target stopped taking entries (an outage began).
    pub outages: u64,
}

impl DeliveryStats {
    fn add(&mut self, other: DeliveryStats) {
        self.delivered += other.delivered;
        self.fallback += other.fallback;
        self.undelivered += other.undelivered;
        self.outages += other.outages;
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
        outages: 0,
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

/// The sink the loop writes to: one of the targets (and with `[log] namespace` the journal
/// namespace's sink for client entries), and what the sinks it replaced counted.
pub struct Sink {
    out: Out,
    /// With `[log] namespace`: where client entries go.
    clients: Option<Clients>,
    /// The `[log]` it was opened with (none for a test's writer): a reload replaces only the
    /// part that changed, the other keeps its queue and its state.
    config: Option<LogConfig>,
    /// Delivery counters of the sinks this one took over from (a reload, a fallback ended).
    earlier: DeliveryStats,
}

/// The journal namespace client entries go to (`[log] namespace`). While its socket cannot
/// be used they go to the main sink (they are kept, in the main journal, as without a
/// namespace), and the socket is looked at again every [`FALLBACK_RETRY`].
struct Clients {
    namespace: String,
    path: PathBuf,
    /// None while the socket cannot be used.
    journald: Option<journald::JournaldSink>,
    /// Since when client entries go to the main sink.
    since: Instant,
    next_look: Instant,
    /// Client entries that went to the main sink meanwhile.
    diverted: u64,
}

impl Clients {
    /// Opens the namespace's sink; if its socket cannot be used, the notice says so.
    fn open(namespace: &str, registry: &mio::Registry, now: Instant) -> (Clients, Option<String>) {
        let path = namespace_socket(namespace);
        let mut clients = Clients {
            namespace: namespace.to_string(),
            path,
            journald: None,
            since: now,
            next_look: now + FALLBACK_RETRY,
            diverted: 0,
        };
        match check_journal_socket(&clients.path) {
            Ok(()) => {
                clients.connect(registry);
                (clients, None)
            }
            Err(why) => {
                let notice = format!(
                    "the socket of the journal namespace {}, {}, {why}: client entries go to \
                     the main journal meanwhile, looking again every {} s (is \
                     systemd-journald@{}.socket started?)",
                    clients.namespace,
                    clients.path.display(),
                    FALLBACK_RETRY.as_secs(),
                    clients.namespace
                );
                (clients, Some(notice))
            }
        }
    }

    fn connect(&mut self, registry: &mio::Registry) {
        let mut journald = journald::open(&self.path, CLIENT_TOKEN, registry);
        // Its outages are the daemon's news: said in the main journal.
        journald.collect_notices();
        self.journald = Some(journald);
    }

    fn describe(&self) -> String {
        match self.journald {
            Some(_) => format!(
                "client entries to the journal namespace {} ({})",
                self.namespace,
                self.path.display()
            ),
            None => format!(
                "client entries to the main journal until the socket of the journal \
                 namespace {} ({}) can be used",
                self.namespace,
                self.path.display()
            ),
        }
    }
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

impl Queued {
    /// An entry the journald sink had encoded.
    fn encoded(encoded: Vec<u8>) -> Queued {
        Queued {
            priority: journald::encode::priority_of(&encoded).unwrap_or(6),
            message: journald::encode::message_of(&encoded).into_owned(),
            encoded: Some(encoded),
        }
    }
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
    /// With `namespace`, client entries go to its journal (or to the main one meanwhile, if
    /// its socket cannot be used; the notices say so).
    pub fn open(config: &LogConfig, registry: &mio::Registry) -> (Sink, Vec<String>) {
        let now = Instant::now();
        let (out, notice) = Out::open(config, registry, now);
        let mut notices: Vec<String> = notice.into_iter().collect();
        let clients = config.namespace.as_deref().map(|namespace| {
            let (clients, notice) = Clients::open(namespace, registry, now);
            notices.extend(notice);
            clients
        });
        let sink = Sink {
            out,
            clients,
            config: Some(config.clone()),
            earlier: DeliveryStats::default(),
        };
        (sink, notices)
    }

    /// A sink writing lines to `out` as the stderr sink does (tests capture them).
    pub fn to_writer(out: Box<dyn std::io::Write + Send>) -> Sink {
        Sink {
            out: Out::Stderr(stderr::StderrSink::to(out)),
            clients: None,
            config: None,
            earlier: DeliveryStats::default(),
        }
    }

    /// A reload changed `[log]`: the part that changed (the main sink: `target`,
    /// `journal_socket`, `syslog_server`; the namespace's: `namespace`) is opened anew and
    /// takes over what the old one had queued and not sent (nothing waits and nothing goes
    /// to stderr for it): the queue of a namespace given up goes to the main sink, that of a
    /// namespace renamed to the new one. The part that did not change keeps its queue and
    /// its state (an outage in progress, what is in flight). Returns the notices of what was
    /// opened.
    pub fn replace(&mut self, config: &LogConfig, registry: &mio::Registry) -> Vec<String> {
        let now = Instant::now();
        let old = self.config.replace(config.clone());
        let main_changed = old.as_ref().is_none_or(|old| {
            (&old.target, &old.journal_socket, &old.syslog_server)
                != (
                    &config.target,
                    &config.journal_socket,
                    &config.syslog_server,
                )
        });
        let clients_changed = old
            .as_ref()
            .is_none_or(|old| old.namespace != config.namespace);
        let mut notices = Vec::new();
        if main_changed {
            let queued = self.out.take_queued();
            let (out, notice) = Out::open(config, registry, now);
            notices.extend(notice);
            let old = std::mem::replace(&mut self.out, out);
            self.earlier.add(old.stats());
            drop(old);
            self.out.adopt(queued);
        }
        if clients_changed {
            let mut queued = Vec::new();
            if let Some(mut journald) = self.clients.take().and_then(|c| c.journald) {
                queued = journald.take_pending();
                for (priority, text) in journald.take_notices() {
                    self.out.log(&Entry::notice(priority, &text));
                }
                self.earlier.add(journald.stats());
            }
            if let Some(namespace) = config.namespace.as_deref() {
                let (clients, notice) = Clients::open(namespace, registry, now);
                notices.extend(notice);
                self.clients = Some(clients);
            }
            match self.clients.as_mut().and_then(|c| c.journald.as_mut()) {
                Some(journald) => queued.into_iter().for_each(|e| journald.adopt(e)),
                None => self
                    .out
                    .adopt(queued.into_iter().map(Queued::encoded).collect()),
            }
        }
        notices
    }

    /// Logs an entry: a client entry to the journal namespace's sink if there is one (and
    /// its socket can be used), anything else to the main sink.
    pub fn log(&mut self, entry: &Entry<'_>) {
        if entry.event.is_client() {
            if let Some(clients) = &mut self.clients {
                if let Some(journald) = &mut clients.journald {
                    return journald.log(entry);
                }
                clients.diverted += 1;
            }
        }
        self.out.log(entry);
    }

    /// True while the server may read more from clients: while both sinks have room.
    pub fn has_room(&self) -> bool {
        let clients = self
            .clients
            .as_ref()
            .and_then(|c| c.journald.as_ref())
            .is_none_or(|j| j.has_room());
        clients
            && match &self.out {
                Out::Journald(s) => s.has_room(),
                Out::Syslog(s) => s.has_room(),
                Out::Stderr(_) | Out::Fallback(_) => true,
            }
    }

    /// Tries to deliver what is queued (after a writable event or when a retry is due), and
    /// flushes buffered output. A fallback whose journal socket has become usable switches
    /// back to journald, with a notice; so does a journal namespace whose socket could not
    /// be used.
    pub fn flush(&mut self, now: Instant, registry: &mio::Registry) {
        self.flush_clients(now, registry);
        self.flush_main(now, registry);
    }

    /// The journal namespace's part of [`Sink::flush`]; its notices go to the main sink.
    fn flush_clients(&mut self, now: Instant, registry: &mio::Registry) {
        let Some(clients) = &mut self.clients else {
            return;
        };
        if let Some(journald) = &mut clients.journald {
            journald.flush(now, registry);
            for (priority, text) in journald.take_notices() {
                self.out.log(&Entry::notice(priority, &text));
            }
            return;
        }
        if now < clients.next_look {
            return;
        }
        clients.next_look = now + FALLBACK_RETRY;
        if check_journal_socket(&clients.path).is_err() {
            return;
        }
        clients.connect(registry);
        let notice = format!(
            "the socket of the journal namespace {}, {}, can be used again: client entries \
             go there again after {:.0} s in the main journal ({} went there meanwhile)",
            clients.namespace,
            clients.path.display(),
            now.duration_since(clients.since).as_secs_f64(),
            clients.diverted
        );
        clients.diverted = 0;
        self.out
            .log(&Entry::notice(crate::entry::priority::NOTICE, &notice));
    }

    fn flush_main(&mut self, now: Instant, registry: &mio::Registry) {
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
                self.flush_main(now, registry);
            }
        }
    }

    /// When the sink wants [`Sink::flush`] called again even without an event.
    pub fn wake_at(&self) -> Option<Instant> {
        let main = match &self.out {
            Out::Journald(s) => s.wake_at(),
            Out::Syslog(s) => s.wake_at(),
            Out::Stderr(_) => None,
            Out::Fallback(f) => Some(f.next_look),
        };
        let clients = self.clients.as_ref().and_then(|c| match &c.journald {
            Some(journald) => journald.wake_at(),
            None => Some(c.next_look),
        });
        match (main, clients) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Delivers everything queued before `deadline`; what cannot be delivered by then is
    /// written to stderr and counted as undelivered.
    pub fn drain(&mut self, deadline: Instant, registry: &mio::Registry) {
        if let Some(journald) = self.clients.as_mut().and_then(|c| c.journald.as_mut()) {
            journald.drain(deadline, registry);
            for (priority, text) in journald.take_notices() {
                self.out.log(&Entry::notice(priority, &text));
            }
        }
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
        if let Some(journald) = self.clients.as_ref().and_then(|c| c.journald.as_ref()) {
            stats.add(journald.stats());
        }
        stats
    }

    /// Whether entries already appear on stderr (so the daemon need not print them there).
    pub fn is_stderr(&self) -> bool {
        matches!(self.out, Out::Stderr(_) | Out::Fallback(_))
    }

    pub fn describe(&self) -> String {
        let main = self.describe_main();
        match &self.clients {
            Some(clients) => format!("{main}; {}", clients.describe()),
            None => main,
        }
    }

    fn describe_main(&self) -> String {
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
            Out::Journald(s) => s.take_pending().into_iter().map(Queued::encoded).collect(),
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
                        origin: crate::entry::Author::DAEMON,
                    };
                    out.log(&entry);
                }
            }
        }
    }
}
