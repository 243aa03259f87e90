//! The event loop: one thread, one mio poll, every client at once.
//!
//! Clients that have data wait in a ready queue and are read one buffer at a time, in turn,
//! only while the sink can take more; so a slow journal stops the reading, TCP flow control
//! slows the clients, and memory stays bounded by the limits, not by what clients send.
//! Signals arrive through signal-hook: SIGTERM/SIGINT stop gracefully, SIGHUP reloads.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use slab::Slab;

use crate::cidr;
use crate::config::{Config, DEFAULT_CONFIG_PATH};
use crate::escape::escape_into;
use crate::framing::{Frame, Framer};
use crate::listener;
use crate::ratelimit::TokenBucket;
use crate::sink::journald::SINK_TOKEN;
use crate::sink::{priority, Entry, Event, Peer, Sink};
use crate::systemd::{self, Notifier};

const LISTENER: Token = Token(usize::MAX - 1);
const SIGNALS: Token = Token(usize::MAX - 2);

/// Reads served before the loop polls again, so accepts and signals are never starved.
const READS_PER_TURN: usize = 256;
/// Connections accepted before the loop polls again.
const ACCEPTS_PER_TURN: usize = 128;
/// How long to stop accepting after running out of file descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(200);
/// The housekeeping period: idle timeouts, rate-limit reports, status.
const TICK: Duration = Duration::from_secs(1);
/// On SIGTERM: time to read what clients already sent, then time to deliver it.
const STOP_READ_TIME: Duration = Duration::from_millis(400);
const STOP_DRAIN_TIME: Duration = Duration::from_millis(450);
/// Refusal warnings: at most this many per window, then one summary.
const REFUSALS_PER_WINDOW: u32 = 5;
const REFUSAL_WINDOW: Duration = Duration::from_secs(10);
/// Warnings about running out of file descriptors: at most one per this interval.
const ACCEPT_ERROR_INTERVAL: Duration = Duration::from_secs(10);

/// The process's signal handling: the first SIGTERM/SIGINT asks for a graceful stop (seen by
/// the event loop), a second one exits at once.
pub fn install_signal_handlers() -> io::Result<Signals> {
    let stop_requested = Arc::new(AtomicBool::new(false));
    for sig in [SIGTERM, SIGINT] {
        // Registered first, so it sees the flag as the previous signal left it.
        signal_hook::flag::register_conditional_shutdown(sig, 1, Arc::clone(&stop_requested))?;
        signal_hook::flag::register(sig, Arc::clone(&stop_requested))?;
    }
    Signals::new([SIGTERM, SIGINT, SIGHUP])
}

/// Where the listening socket came from.
pub enum ListenSocket {
    /// Bound by the daemon from the configuration; rebound on reload when it changes.
    Bound(std::net::TcpListener),
    /// Passed by systemd socket activation; the configuration's address is not used.
    FromSystemd(std::net::TcpListener),
}

/// What the daemon did, as it reports when it stops.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub connections: u64,
    pub lines: u64,
    pub refused: u64,
    pub dropped: u64,
    pub undelivered: u64,
}

/// Runs the daemon until SIGTERM or SIGINT. `config_path` is re-read on SIGHUP.
pub fn run(
    listen: ListenSocket,
    config: Config,
    config_path: Option<PathBuf>,
    signals: Signals,
) -> io::Result<Summary> {
    Server::new(listen, config, config_path, signals)?.run()
}

struct Conn {
    stream: TcpStream,
    peer: Peer,
    /// The peer as shown in messages: `192.0.2.7:51234` or `[2001:db8::1]:51234`.
    label: String,
    framer: Framer,
    opened: Instant,
    last_active: Instant,
    bytes: u64,
    lines: u64,
    /// In the ready queue: it may have data we have not read yet.
    queued: bool,
    bucket: TokenBucket,
    /// Lines dropped by the rate limit and not yet reported.
    dropped_unreported: u64,
    dropped: u64,
}

#[derive(Default)]
struct Refusals {
    window_start: Option<Instant>,
    logged: u32,
    suppressed: u64,
}

struct Server {
    poll: Poll,
    config: Config,
    config_path: Option<PathBuf>,
    listener: Option<TcpListener>,
    local_addr: SocketAddr,
    from_systemd: bool,
    signals: Signals,
    conns: Slab<Conn>,
    ready: VecDeque<usize>,
    sink: Sink,
    read_buf: Vec<u8>,
    message: String,
    next_id: u64,
    summary: Summary,
    refusals: Refusals,
    accept_pending: bool,
    accept_paused_until: Option<Instant>,
    accept_error_logged: Option<Instant>,
    accept_errors_unlogged: u64,
    notifier: Notifier,
    watchdog: Option<Duration>,
    next_tick: Instant,
    /// Set once a stop is requested: until then, read what clients sent.
    stop_reading_by: Option<Instant>,
    status: String,
}

fn peer_label(addr: SocketAddr) -> String {
    SocketAddr::new(addr.ip().to_canonical(), addr.port()).to_string()
}

impl Server {
    fn new(
        listen: ListenSocket,
        config: Config,
        config_path: Option<PathBuf>,
        mut signals: Signals,
    ) -> io::Result<Server> {
        let poll = Poll::new()?;
        let (std_listener, from_systemd) = match listen {
            ListenSocket::Bound(l) => (l, false),
            ListenSocket::FromSystemd(l) => (l, true),
        };
        std_listener.set_nonblocking(true)?;
        let local_addr = std_listener.local_addr()?;
        let mut listener = TcpListener::from_std(std_listener);
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
        let (sink, sink_notice) = Sink::open(&config.log, poll.registry());
        let now = Instant::now();
        let watchdog = systemd::watchdog_interval();
        let mut server = Server {
            read_buf: vec![0; config.buffer_size],
            poll,
            config,
            config_path,
            listener: Some(listener),
            local_addr,
            from_systemd,
            signals,
            conns: Slab::new(),
            ready: VecDeque::new(),
            sink,
            message: String::with_capacity(1024),
            next_id: 1,
            summary: Summary::default(),
            refusals: Refusals::default(),
            accept_pending: true,
            accept_paused_until: None,
            accept_error_logged: None,
            accept_errors_unlogged: 0,
            notifier: Notifier::from_env(),
            watchdog,
            next_tick: now + tick_interval(watchdog),
            stop_reading_by: None,
            status: String::new(),
        };
        if let Some(notice) = sink_notice {
            server.announce(priority::WARNING, &notice);
        }
        Ok(server)
    }

    fn run(mut self) -> io::Result<Summary> {
        let origin = if self.from_systemd {
            " (socket from systemd)"
        } else {
            ""
        };
        self.announce(
            priority::INFO,
            &format!(
                "listening on {}{origin}, logging to {}; up to {} clients",
                self.local_addr,
                self.sink.describe(),
                self.config.max_connections
            ),
        );
        self.notifier.notify("READY=1");
        self.update_status();
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self.poll_timeout(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_pending = true,
                    SIGNALS => self.handle_signals(),
                    SINK_TOKEN => {}
                    Token(key) => {
                        if let Some(conn) = self.conns.get_mut(key) {
                            if !conn.queued {
                                conn.queued = true;
                                self.ready.push_back(key);
                            }
                        }
                    }
                }
            }
            let now = Instant::now();
            self.sink.flush(now, self.poll.registry());
            if self.accept_pending && self.accept_paused_until.is_none_or(|t| t <= now) {
                self.accept_paused_until = None;
                self.accept_clients(now);
            }
            self.serve_ready_clients();
            if now >= self.next_tick {
                self.tick(now);
            }
            if let Some(by) = self.stop_reading_by {
                if self.conns.is_empty() || now >= by {
                    return Ok(self.finish());
                }
            }
            self.sink.flush(now, self.poll.registry());
        }
    }

    fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        if !self.ready.is_empty() && self.sink.is_ready() {
            return Some(Duration::ZERO);
        }
        let mut wake = self.next_tick;
        for t in [
            self.sink.retry_at(),
            self.accept_paused_until.filter(|_| self.accept_pending),
            self.stop_reading_by,
        ]
        .into_iter()
        .flatten()
        {
            wake = wake.min(t);
        }
        Some(wake.saturating_duration_since(now))
    }

    /// Logs news about the daemon itself; also on stderr when the sink is not a terminal
    /// and nobody else will show it (stderr not already going to the journal).
    fn announce(&mut self, priority: u8, text: &str) {
        self.sink.log(&Entry::notice(priority, text));
        let stderr_is_journal = std::env::var_os("JOURNAL_STREAM").is_some();
        if !matches!(self.sink, Sink::Stderr(_)) && !stderr_is_journal {
            let _ = writeln!(io::stderr(), "tcp-listener: {text}");
        }
    }

    fn handle_signals(&mut self) {
        let signals: Vec<i32> = self.signals.pending().collect();
        for signal in signals {
            match signal {
                SIGTERM | SIGINT => self.begin_stop(signal),
                SIGHUP => self.reload(),
                _ => {}
            }
        }
    }

    // ---- accepting -------------------------------------------------------------------

    fn accept_clients(&mut self, now: Instant) {
        for _ in 0..ACCEPTS_PER_TURN {
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.accept() {
                Ok((stream, addr)) => self.admit(stream, addr, now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.accept_pending = false;
                    return;
                }
                Err(e) if out_of_resources(&e) => {
                    // Leave the connection in the backlog and come back later, instead of
                    // spinning on an error that will not go away by itself.
                    self.accept_paused_until = Some(now + ACCEPT_BACKOFF);
                    self.accept_errors_unlogged += 1;
                    if self
                        .accept_error_logged
                        .is_none_or(|t| now.duration_since(t) >= ACCEPT_ERROR_INTERVAL)
                    {
                        let text = format!(
                            "cannot accept connections: {e} ({} times since the last report); \
                             serving current clients, retrying every {} ms",
                            self.accept_errors_unlogged,
                            ACCEPT_BACKOFF.as_millis()
                        );
                        self.accept_errors_unlogged = 0;
                        self.accept_error_logged = Some(now);
                        self.announce(priority::ERR, &text);
                    }
                    return;
                }
                // ECONNABORTED and the like concern one connection only.
                Err(_) => continue,
            }
        }
    }

    fn admit(&mut self, mut stream: TcpStream, addr: SocketAddr, now: Instant) {
        let addr = SocketAddr::new(addr.ip().to_canonical(), addr.port());
        if !cidr::allowed(&self.config.allow, addr.ip()) {
            return self.refuse(addr, "not in the allow list", now);
        }
        if self.conns.len() >= self.config.max_connections {
            let reason = format!("max_connections ({}) reached", self.config.max_connections);
            return self.refuse(addr, &reason, now);
        }
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut stream, Token(key), Interest::READABLE)
        {
            let reason = format!("cannot watch the connection: {e}");
            return self.refuse(addr, &reason, now);
        }
        let peer = Peer {
            addr,
            connection_id: self.next_id,
        };
        self.next_id += 1;
        self.summary.connections += 1;
        let label = peer_label(addr);
        self.message.clear();
        self.message.push_str(&label);
        self.message.push_str(": connected");
        self.sink.log(&Entry {
            priority: priority::INFO,
            event: Event::Connected,
            message: &self.message,
            peer: Some(peer),
            fields: &[],
        });
        entry.insert(Conn {
            stream,
            peer,
            label,
            framer: Framer::new(self.config.framing, self.config.max_line_length),
            opened: now,
            last_active: now,
            bytes: 0,
            lines: 0,
            queued: true,
            bucket: TokenBucket::new(
                self.config.max_lines_per_sec,
                self.config.max_lines_burst,
                now,
            ),
            dropped_unreported: 0,
            dropped: 0,
        });
        // It may have sent everything and closed already (like the classroom client).
        self.ready.push_back(key);
    }

    /// Logs a refused connection, at most [`REFUSALS_PER_WINDOW`] per window; the stream is
    /// closed by the caller dropping it.
    fn refuse(&mut self, addr: SocketAddr, reason: &str, now: Instant) {
        self.summary.refused += 1;
        let r = &mut self.refusals;
        if r.window_start
            .is_none_or(|t| now.duration_since(t) >= REFUSAL_WINDOW)
        {
            self.report_suppressed_refusals();
            self.refusals.window_start = Some(now);
            self.refusals.logged = 0;
        }
        if self.refusals.logged >= REFUSALS_PER_WINDOW {
            self.refusals.suppressed += 1;
            return;
        }
        self.refusals.logged += 1;
        let message = format!("{}: refused: {reason}", peer_label(addr));
        self.sink.log(&Entry {
            priority: priority::WARNING,
            event: Event::Refused,
            message: &message,
            peer: Some(Peer {
                addr,
                connection_id: 0,
            }),
            fields: &[("REFUSED_REASON", reason)],
        });
    }

    fn report_suppressed_refusals(&mut self) {
        let n = std::mem::take(&mut self.refusals.suppressed);
        if n > 0 {
            let message = format!(
                "refused {n} more connections in the last {} s (not logged one by one)",
                REFUSAL_WINDOW.as_secs()
            );
            let count = n.to_string();
            self.sink.log(&Entry {
                priority: priority::WARNING,
                event: Event::Refused,
                message: &message,
                peer: None,
                fields: &[("REFUSED_COUNT", &count)],
            });
        }
    }

    // ---- reading ---------------------------------------------------------------------

    fn serve_ready_clients(&mut self) {
        for _ in 0..READS_PER_TURN {
            if !self.sink.is_ready() {
                return;
            }
            let Some(key) = self.ready.pop_front() else {
                return;
            };
            self.serve(key);
        }
    }

    /// Reads once from a client and logs what it completes.
    fn serve(&mut self, key: usize) {
        let buffer_size = self.config.buffer_size;
        let stopping = self.stop_reading_by.is_some();
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.queued = false;
        match conn.stream.read(&mut self.read_buf[..buffer_size]) {
            Ok(0) => self.close(key, "closed by the client"),
            Ok(n) => {
                let now = Instant::now();
                conn.bytes += n as u64;
                conn.last_active = now;
                let Server {
                    sink,
                    message,
                    summary,
                    read_buf,
                    ..
                } = self;
                let Conn {
                    framer,
                    bucket,
                    label,
                    peer,
                    lines,
                    dropped_unreported,
                    dropped,
                    ..
                } = conn;
                framer.push(&read_buf[..n], |frame| {
                    if bucket.try_take(now) {
                        *lines += 1;
                        summary.lines += 1;
                        log_frame(sink, message, label, *peer, *lines, &frame);
                    } else {
                        *dropped_unreported += 1;
                        *dropped += 1;
                        summary.dropped += 1;
                    }
                });
                conn.queued = true;
                self.ready.push_back(key);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if stopping {
                    self.close(key, "daemon stopping");
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                conn.queued = true;
                self.ready.push_back(key);
            }
            Err(e) => self.close(key, &format!("error: {e}")),
        }
    }

    /// Closes a client: logs its partial last line, unreported drops, and a summary.
    fn close(&mut self, key: usize, reason: &str) {
        let Some(mut conn) = self.conns.try_remove(key) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut conn.stream);
        let Server {
            sink,
            message,
            summary,
            ..
        } = self;
        conn.framer.finish(|frame| {
            conn.lines += 1;
            summary.lines += 1;
            log_frame(sink, message, &conn.label, conn.peer, conn.lines, &frame);
        });
        self.report_dropped(&mut conn);
        let duration = conn.opened.elapsed();
        let message = format!(
            "{}: disconnected ({reason}) after {:.1} s: {} bytes, {} lines",
            conn.label,
            duration.as_secs_f64(),
            conn.bytes,
            conn.lines
        );
        let (bytes, lines, ms) = (
            conn.bytes.to_string(),
            conn.lines.to_string(),
            duration.as_millis().to_string(),
        );
        self.sink.log(&Entry {
            priority: priority::INFO,
            event: Event::Disconnected,
            message: &message,
            peer: Some(conn.peer),
            fields: &[
                ("BYTES_RECEIVED", &bytes),
                ("LINES_LOGGED", &lines),
                ("DURATION_MS", &ms),
                ("DISCONNECT_REASON", reason),
            ],
        });
    }

    fn report_dropped(&mut self, conn: &mut Conn) {
        let n = std::mem::take(&mut conn.dropped_unreported);
        if n == 0 {
            return;
        }
        let message = format!(
            "{}: dropped {n} lines over the limit of {} lines/s (burst {}); {} dropped in all",
            conn.label, self.config.max_lines_per_sec, self.config.max_lines_burst, conn.dropped
        );
        let count = n.to_string();
        self.sink.log(&Entry {
            priority: priority::WARNING,
            event: Event::Dropped,
            message: &message,
            peer: Some(conn.peer),
            fields: &[("DROPPED_LINES", &count)],
        });
    }

    // ---- housekeeping ----------------------------------------------------------------

    fn tick(&mut self, now: Instant) {
        self.next_tick = now + tick_interval(self.watchdog);
        if self.config.idle_timeout_secs > 0 {
            let limit = Duration::from_secs(self.config.idle_timeout_secs);
            let idle: Vec<usize> = self
                .conns
                .iter()
                .filter(|(_, c)| !c.queued && now.duration_since(c.last_active) >= limit)
                .map(|(k, _)| k)
                .collect();
            let reason = format!("idle for {} s", self.config.idle_timeout_secs);
            for key in idle {
                self.close(key, &reason);
            }
        }
        let with_drops: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.dropped_unreported > 0)
            .map(|(k, _)| k)
            .collect();
        for key in with_drops {
            let mut conn = self.conns.remove(key);
            self.report_dropped(&mut conn);
            let back = self.conns.insert(conn);
            debug_assert_eq!(back, key);
        }
        if self
            .refusals
            .window_start
            .is_some_and(|t| now.duration_since(t) >= REFUSAL_WINDOW)
        {
            self.report_suppressed_refusals();
            self.refusals.window_start = None;
        }
        if self.watchdog.is_some() {
            self.notifier.notify("WATCHDOG=1");
        }
        self.update_status();
    }

    fn update_status(&mut self) {
        if !self.notifier.is_active() {
            return;
        }
        let status = format!(
            "STATUS={} clients, {} lines logged, {} refused, {} dropped",
            self.conns.len(),
            self.summary.lines,
            self.summary.refused,
            self.summary.dropped
        );
        if status != self.status {
            self.notifier.notify(&status);
            self.status = status;
        }
    }

    // ---- reload ----------------------------------------------------------------------

    fn reload(&mut self) {
        self.notifier.reloading();
        let path = self
            .config_path
            .clone()
            .or_else(|| Some(PathBuf::from(DEFAULT_CONFIG_PATH)).filter(|p| p.exists()));
        match path {
            None => self.announce(
                priority::NOTICE,
                "SIGHUP: no configuration file to reload; still on built-in defaults",
            ),
            Some(path) => match Config::load(&path) {
                Ok(new) => self.apply(new, &path),
                Err(e) => self.announce(
                    priority::ERR,
                    &format!("reload failed, the running configuration stays in force: {e}"),
                ),
            },
        }
        self.notifier.notify("READY=1");
        self.update_status();
    }

    fn apply(&mut self, mut new: Config, path: &Path) {
        let old_address = (self.config.bind, self.config.port, self.config.backlog);
        let address_changed = (new.bind, new.port, new.backlog) != old_address;
        if address_changed && self.from_systemd {
            self.announce(
                priority::NOTICE,
                "reload: bind, port and backlog come from the systemd socket unit and stay as they are",
            );
            (new.bind, new.port, new.backlog) = old_address;
        } else if address_changed && self.stop_reading_by.is_none() {
            match self.rebind(&new) {
                Ok(()) => {}
                Err(e) => {
                    self.announce(
                        priority::ERR,
                        &format!("reload: {e}; still listening on {}", self.local_addr),
                    );
                    (new.bind, new.port, new.backlog) = old_address;
                }
            }
        }
        if new.log != self.config.log {
            self.sink
                .drain(Instant::now() + STOP_DRAIN_TIME, self.poll.registry());
            let (sink, notice) = Sink::open(&new.log, self.poll.registry());
            self.sink = sink;
            if let Some(notice) = notice {
                self.announce(priority::WARNING, &notice);
            }
        }
        let now = Instant::now();
        self.read_buf.resize(new.buffer_size, 0);
        let mut not_allowed = Vec::new();
        for (key, conn) in self.conns.iter_mut() {
            conn.framer.reconfigure(new.framing, new.max_line_length);
            conn.bucket
                .reconfigure(new.max_lines_per_sec, new.max_lines_burst, now);
            if !cidr::allowed(&new.allow, conn.peer.addr.ip()) {
                not_allowed.push(key);
            }
        }
        self.config = new;
        for key in not_allowed {
            self.close(key, "no longer in the allow list");
        }
        self.announce(
            priority::NOTICE,
            &format!(
                "configuration reloaded from {}; listening on {}, logging to {}",
                path.display(),
                self.local_addr,
                self.sink.describe()
            ),
        );
    }

    fn rebind(&mut self, new: &Config) -> Result<(), listener::BindError> {
        let (std_listener, notice) = listener::bind(new)?;
        let local_addr = std_listener
            .local_addr()
            .map_err(|error| listener::BindError {
                addr: SocketAddr::new(new.bind, new.port),
                error,
            })?;
        let mut listener = TcpListener::from_std(std_listener);
        self.poll
            .registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(|error| listener::BindError {
                addr: local_addr,
                error,
            })?;
        if let Some(mut old) = self.listener.replace(listener) {
            let _ = self.poll.registry().deregister(&mut old);
        }
        self.local_addr = local_addr;
        self.accept_pending = true;
        if let Some(notice) = notice {
            self.announce(priority::WARNING, &notice);
        }
        Ok(())
    }

    // ---- stopping --------------------------------------------------------------------

    fn begin_stop(&mut self, signal: i32) {
        if self.stop_reading_by.is_some() {
            return;
        }
        self.notifier.notify("STOPPING=1");
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        let name = if signal == SIGINT {
            "SIGINT"
        } else {
            "SIGTERM"
        };
        self.announce(
            priority::INFO,
            &format!(
                "{name}: stopped accepting; reading what {} clients sent",
                self.conns.len()
            ),
        );
        self.stop_reading_by = Some(Instant::now() + STOP_READ_TIME);
        // Read every client until it has nothing more to give, then close it.
        for (key, conn) in self.conns.iter_mut() {
            if !conn.queued {
                conn.queued = true;
                self.ready.push_back(key);
            }
        }
    }

    fn finish(mut self) -> Summary {
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.close(key, "daemon stopping");
        }
        let s = self.summary;
        let text = format!(
            "stopping: served {} connections, logged {} lines, refused {}, dropped {} over the rate limit",
            s.connections, s.lines, s.refused, s.dropped
        );
        self.announce(priority::INFO, &text);
        self.sink
            .drain(Instant::now() + STOP_DRAIN_TIME, self.poll.registry());
        let mut summary = self.summary;
        summary.undelivered = self.sink.stats().undelivered;
        summary
    }
}

fn tick_interval(watchdog: Option<Duration>) -> Duration {
    watchdog.map_or(TICK, |w| w.min(TICK))
}

fn out_of_resources(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS) | Some(libc::ENOMEM)
    )
}

/// Logs one frame as `peer: text`, marking pieces of split lines and partial lines.
/// `number` counts the connection's entries from 1 (`LINE_NUMBER`), so a reader can tell a
/// line sent again after a journald crash from a line sent twice.
fn log_frame(
    sink: &mut Sink,
    message: &mut String,
    label: &str,
    peer: Peer,
    number: u64,
    frame: &Frame<'_>,
) {
    message.clear();
    message.push_str(label);
    message.push_str(": ");
    escape_into(message, frame.bytes);
    let part = if frame.part > 0 {
        frame.part.to_string()
    } else {
        String::new()
    };
    let mut digits = [0; 20];
    let number = crate::sink::decimal(&mut digits, number);
    let mut fields: [(&'static str, &str); 4] = [("", ""); 4];
    fields[0] = ("LINE_NUMBER", number);
    let mut n = 1;
    if frame.part > 0 {
        fields[n] = ("LINE_PART", &part);
        n += 1;
    }
    if frame.continued {
        message.push_str(" [continued]");
        fields[n] = ("LINE_CONTINUED", "1");
        n += 1;
    }
    if frame.partial {
        message.push_str(" [partial]");
        fields[n] = ("LINE_PARTIAL", "1");
        n += 1;
    }
    sink.log(&Entry {
        priority: priority::INFO,
        event: Event::Line,
        message,
        peer: Some(peer),
        fields: &fields[..n],
    });
}
