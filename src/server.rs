//! The event loop: one thread, one mio poll, every client at once. This file drives the parts
//! that own the work, one step of the data path each:
//!
//! accept ([`listener`](crate::listener)) → admit ([`admission`](crate::admission)) → read
//! ([`connection`](crate::connection)) → frame ([`framing`](crate::framing)) → budget
//! ([`ratelimit`](crate::ratelimit), applied by the connection) → entry
//! ([`entry`](crate::entry)) → sink ([`sink`](crate::sink)).
//!
//! Here: polling and dispatching events, the turns of the loop, housekeeping, reload, stop.
//!
//! **The batching rule.** A turn of the loop reads up to [`READS_PER_TURN`] clients, one
//! buffer each, in ready-queue order, and only while the sink has room
//! ([`Sink::has_room`]); then it flushes the sink, which sends what was queued with as few
//! system calls as it can (journald: one sendmmsg(2) per 64 entries). How much the journald
//! sink queues before it says "no room" is its `QUEUE_LIMIT`, 64 (measured against 1 in
//! `sink/journald/delivery.rs`): a turn reads clients until about one sendmmsg's worth of
//! lines is queued, so one sendmmsg carries the lines of several clients.

use std::fmt;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Registry, Token};

use crate::admission::{Admission, Refusal, REFUSAL_WINDOW};
use crate::config::{Config, LogConfig, RateLimitAction, DEFAULT_CONFIG_PATH};
use crate::connection::{Connection, Connections, DropReport, Line, ReadOutcome};
use crate::control::{Command, Control};
use crate::entry::{priority, Entry, Fields, Remote, Value};
use crate::fdstore::{self, Carried, State};
use crate::listener::{self, Accepted, Acceptor, ListenSocket};
use crate::retention;
use crate::sink::Sink;
use crate::source::{ConnectionEvent, Sources, CONNECTION_EVENT_WINDOW};
use crate::syslog_message::JournalFields;
use crate::systemd::Supervisor;
use crate::tls::Tls;
use crate::udp::{self, Udp, UdpCounts};

const CONTROL: Token = Token(usize::MAX - 2);

/// Reads served before the loop polls again, so accepts and signals are never starved.
const READS_PER_TURN: usize = 256;
/// Connections accepted before the loop polls again.
const ACCEPTS_PER_TURN: usize = 128;
/// At the end of a stop: time to deliver what is left, at least.
const STOP_DRAIN_MIN: Duration = Duration::from_millis(200);

/// What the daemon did, as it reports when it stops.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub connections: u64,
    /// Lines logged (a line logged in pieces counts once).
    pub lines: u64,
    pub refused: u64,
    pub dropped: u64,
    /// Entries written to stderr as the fallback while the journal socket could not be used
    /// (delivered there, as announced: not lost).
    pub to_stderr: u64,
    /// Entries not delivered: the log target did not take them in time (printed on stderr
    /// as a last resort), or stderr could not be written.
    pub undelivered: u64,
    /// Notifications the service manager never took (its notify queue full), at the stop.
    pub unsent_notifications: u64,
    /// Bytes clients had sent before the stop that it could not read in time, and the line
    /// ends among them.
    pub unread_bytes: u64,
    pub unread_lines: u64,
    /// With `udp = true`: what the UDP input read, logged and counted.
    pub udp: Option<UdpCounts>,
}

/// The daemon's `STATUS=` line, as `systemctl status` shows it.
#[derive(Debug, Clone, Copy)]
struct Status {
    clients: usize,
    summary: Summary,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.summary;
        write!(
            f,
            "{} clients, {} lines logged, {} refused, {} dropped",
            self.clients, s.lines, s.refused, s.dropped
        )
    }
}

/// Runs the daemon until `control` asks it to stop. `config_path` is re-read on reload;
/// `carried` holds what the previous process handed to systemd's file descriptor store; `tls`
/// is the loaded `[tls]` section, if the configuration has one.
pub fn run(
    listen: ListenSocket,
    config: Config,
    tls: Option<Tls>,
    config_path: Option<PathBuf>,
    control: Control,
    carried: Carried,
) -> io::Result<Summary> {
    let mut server = Server::new(listen, config, config_path, control, |log, registry| {
        Sink::open(log, registry)
    })?;
    server.tls = tls;
    server.take_back(carried);
    server.run()
}

/// Where the daemon is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Serving,
    /// Asked to stop: no more accepting; each client is read until it has nothing more to
    /// give (then it is closed), until `deadline` at the latest.
    Stopping {
        deadline: Instant,
    },
}

impl Phase {
    fn accepting(self) -> bool {
        self == Phase::Serving
    }

    fn stopping(self) -> bool {
        !self.accepting()
    }

    /// Starts the stop, to be over by `deadline`; false if it had started already.
    fn stop(&mut self, deadline: Instant) -> bool {
        if self.stopping() {
            return false;
        }
        *self = Phase::Stopping { deadline };
        true
    }

    /// Whether the reading part of the stop is over.
    fn reading_done(self, now: Instant, open: usize) -> bool {
        match self {
            Phase::Serving => false,
            Phase::Stopping { deadline } => open == 0 || now >= deadline,
        }
    }

    fn wake_at(self) -> Option<Instant> {
        match self {
            Phase::Serving => None,
            Phase::Stopping { deadline } => Some(deadline),
        }
    }
}

struct Server {
    poll: Poll,
    control: Control,
    config: Config,
    config_path: Option<PathBuf>,
    acceptor: Acceptor,
    admission: Admission,
    sources: Sources,
    conns: Connections,
    sink: Sink,
    supervisor: Supervisor,
    phase: Phase,
    summary: Summary,
    next_id: u64,
    next_tick: Instant,
    read_buf: Vec<u8>,
    /// The text of the entry being built.
    message: String,
    /// The SYSLOG_* fields of the syslog message being logged, and what is made of the
    /// priority and program it claims.
    syslog: SyslogLog,
    /// stderr goes to the journal already (`JOURNAL_STREAM`): announcements are not repeated
    /// there.
    stderr_is_journal: bool,
    /// The listening socket, kept at a stop for the file descriptor store.
    handed_listener: Option<mio::net::TcpListener>,
    /// With `[tls]`: what new clients handshake with.
    tls: Option<Tls>,
    /// With `udp = true`: the UDP input.
    udp: Option<Udp>,
}

impl Server {
    fn new(
        listen: ListenSocket,
        config: Config,
        config_path: Option<PathBuf>,
        mut control: Control,
        open_sink: impl FnOnce(&LogConfig, &Registry) -> (Sink, Vec<String>),
    ) -> io::Result<Server> {
        let poll = Poll::new()?;
        let acceptor = Acceptor::new(listen, poll.registry())?;
        poll.registry()
            .register(&mut control, CONTROL, Interest::READABLE)?;
        let (sink, sink_notices) = open_sink(&config.log, poll.registry());
        let (udp, udp_notice) = match config.udp {
            true => {
                let (udp, notice) = Udp::open(
                    &config,
                    acceptor.local_addr(),
                    poll.registry(),
                    Instant::now(),
                )
                .map_err(io::Error::other)?;
                (Some(udp), notice)
            }
            false => (None, None),
        };
        let supervisor = Supervisor::from_env();
        let mut server = Server {
            syslog: SyslogLog {
                fields: JournalFields::new(),
                remote: Remote::new(&config),
            },
            next_tick: Instant::now() + supervisor.tick_interval(),
            read_buf: vec![0; config.buffer_size],
            admission: Admission::new(&config),
            sources: Sources::new(&config),
            poll,
            control,
            config,
            config_path,
            acceptor,
            conns: Connections::default(),
            sink,
            supervisor,
            phase: Phase::Serving,
            summary: Summary::default(),
            next_id: 1,
            message: String::with_capacity(1024),
            stderr_is_journal: std::env::var_os("JOURNAL_STREAM").is_some(),
            handed_listener: None,
            tls: None,
            udp,
        };
        for notice in sink_notices.into_iter().chain(udp_notice) {
            server.announce(priority::WARNING, &notice);
        }
        Ok(server)
    }

    fn run(mut self) -> io::Result<Summary> {
        let origin = if self.acceptor.from_systemd() {
            " (socket from systemd)"
        } else {
            ""
        };
        let tls = self
            .tls
            .as_ref()
            .map_or(String::new(), |t| format!("; {}", t.describe()));
        let udp = if self.udp.is_some() {
            " (TCP and UDP)"
        } else {
            ""
        };
        self.announce(
            priority::INFO,
            &format!(
                "listening on {}{udp}{origin}, logging to {}; up to {} clients{tls}",
                self.acceptor.local_addr(),
                self.sink.describe(),
                self.config.max_connections
            ),
        );
        self.announce_retention();
        self.supervisor.ready();
        self.update_status();
        self.warn_of_the_manager(Instant::now());
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
                    listener::TOKEN => self.acceptor.readable(),
                    CONTROL => self.handle_commands(),
                    udp::TOKEN => self.udp.iter_mut().for_each(Udp::readable),
                    // A client; anything else is a sink's, which the flush below serves.
                    token => {
                        if let Some(key) = self.conns.key_of(token) {
                            self.conns.mark_ready(key);
                        }
                    }
                }
            }
            let now = Instant::now();
            self.sink.flush(now, self.poll.registry());
            if self.phase.accepting() {
                self.accept_clients(now);
            }
            self.conns.unpark_due(now);
            self.serve_udp();
            self.serve_ready_clients();
            if now >= self.next_tick {
                self.tick(now);
            }
            // (Counting the clients left costs a pass over all of them: only while stopping.)
            let udp_left = self.udp.as_ref().map_or(0, Udp::undrained);
            if self.phase.stopping()
                && self
                    .phase
                    .reading_done(now, self.conns.undrained() + udp_left)
            {
                return Ok(self.finish());
            }
            self.sink.flush(now, self.poll.registry());
        }
    }

    fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        let udp_ready = self.udp.as_ref().is_some_and(Udp::has_ready);
        if (self.conns.has_ready() || udp_ready) && self.sink.has_room() {
            return Some(Duration::ZERO);
        }
        let wake = [
            self.sink.wake_at(),
            self.acceptor
                .wake_at(now)
                .filter(|_| self.phase.accepting()),
            self.phase.wake_at(),
            self.conns.next_unpark(),
        ]
        .into_iter()
        .flatten()
        .fold(self.next_tick, Instant::min);
        Some(wake.saturating_duration_since(now))
    }

    /// Logs news about the daemon itself; also on stderr when the sink does not print there
    /// and stderr does not go to the journal already.
    fn announce(&mut self, priority: u8, text: &str) {
        self.sink.log(&Entry::notice(priority, text));
        if !self.sink.is_stderr() && !self.stderr_is_journal {
            let _ = writeln!(io::stderr(), "tcp-listener: {text}");
        }
    }

    /// At start, one entry when the journal client lines go to is in RAM or holds less than
    /// a day of one source at its limit ([`retention`]): how long, and the line that gives
    /// the lines a journal of their own. Its fields say the same for a program:
    /// JOURNAL_STORAGE (`volatile`, `persistent`, `none`), JOURNAL_MAX_USE (bytes),
    /// JOURNAL_HOLDS_SEC (at one source's limit; absent without a limit).
    fn announce_retention(&mut self) {
        let Some(journal) = retention::look(&self.config) else {
            return;
        };
        let per_sec = self.config.max_lines_per_sec;
        let Some(text) = retention::notice(&journal, per_sec) else {
            return;
        };
        let mut entry = Entry::notice(priority::NOTICE, &text);
        entry.fields = Fields::new()
            .with("JOURNAL_STORAGE", Value::Text(journal.storage.as_str()))
            .with("JOURNAL_MAX_USE", Value::Number(journal.max_use));
        if let Some(holds) = journal.holds(per_sec) {
            entry
                .fields
                .push("JOURNAL_HOLDS_SEC", Value::Number(holds.as_secs()));
        }
        self.sink.log(&entry);
        if !self.sink.is_stderr() && !self.stderr_is_journal {
            let _ = writeln!(io::stderr(), "tcp-listener: {text}");
        }
    }

    fn handle_commands(&mut self) {
        for command in self.control.pending() {
            match command {
                Command::Stop { signal } => self.begin_stop(signal),
                Command::Reload => self.reload(),
            }
        }
    }

    fn status(&self) -> Status {
        Status {
            clients: self.conns.len(),
            summary: self.summary,
        }
    }

    fn update_status(&mut self) {
        let status = self.status();
        self.supervisor.update_status(status);
    }

    // ---- accepting -------------------------------------------------------------------

    fn accept_clients(&mut self, now: Instant) {
        for _ in 0..ACCEPTS_PER_TURN {
            match self.acceptor.accept(now) {
                Accepted::Client(stream, addr) => self.admit(stream, addr, now),
                Accepted::Nobody => return,
                Accepted::OutOfResources(report) => {
                    if let Some(text) = report {
                        self.announce(priority::ERR, &text);
                    }
                    return;
                }
            }
        }
    }

    fn admit(&mut self, stream: TcpStream, addr: SocketAddr, now: Instant) {
        let ip = addr.ip().to_canonical();
        let open = (self.conns.len(), self.sources.open(ip));
        let checked = self
            .admission
            .check(ip, open.0, open.1)
            .and_then(|()| match self.tls {
                Some(_) => self.admission.check_handshake(),
                None => Ok(()),
            });
        if let Err(refusal) = checked {
            return self.refuse(addr, refusal, now);
        }
        let mut conn = Connection::new(stream, addr, self.next_id, &self.config, now);
        if let Some(tls) = &self.tls {
            conn.start_tls(tls.session(now));
        }
        let (label, peer, tls) = (conn.label.clone(), conn.peer, conn.is_tls());
        if let Err(e) = self.conns.insert(conn, self.poll.registry()) {
            return self.refuse(addr, Refusal::CannotWatch(e.to_string()), now);
        }
        self.next_id += 1;
        self.sources.connected(ip, now);
        if tls {
            // Connected once its handshake is over (see `established`); refused if it fails.
            self.admission.handshake_started();
            return;
        }
        self.summary.connections += 1;
        if self.sources.log_event(ip, ConnectionEvent::Connected, now) {
            self.sink
                .log(&Entry::connected(&mut self.message, &label, peer, None));
        }
    }

    /// A TLS client's handshake is over: admitted if `tls.allow_names` has its certificate's
    /// names, and logged as connected (with who it is) only now.
    fn established(&mut self, key: usize, now: Instant) {
        self.admission.handshake_ended();
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if let Some(tls) = &self.tls {
            if !tls.admits(conn.tls_names()) {
                let names = crate::tls::list_names(conn.tls_names());
                return self.refuse_connection(key, Refusal::NameNotAllowed(names), now);
            }
        }
        self.summary.connections += 1;
        let ip = conn.peer.addr.ip();
        if self.sources.log_event(ip, ConnectionEvent::Connected, now) {
            self.sink.log(&Entry::connected(
                &mut self.message,
                &conn.label,
                conn.peer,
                conn.tls_fields(),
            ));
        }
        // Lines may have come with the last handshake message.
        self.conns.requeue(key);
    }

    /// Turns away a client already in the loop (a TLS handshake that failed, timed out, or
    /// whose certificate names are not allowed): closed, and logged as a refusal.
    fn refuse_connection(&mut self, key: usize, refusal: Refusal, now: Instant) {
        let Some(conn) = self.conns.remove(key, self.poll.registry()) else {
            return;
        };
        if conn.handshaking() {
            self.admission.handshake_ended();
        }
        self.sources.disconnected(conn.peer.addr.ip());
        self.refuse(conn.peer.addr, refusal, now);
    }

    /// Logs a refused connection as the admission's report rules say; the stream is closed by
    /// the caller dropping it.
    fn refuse(&mut self, addr: SocketAddr, refusal: Refusal, now: Instant) {
        self.summary.refused += 1;
        let addr = crate::entry::canonical(addr);
        let report = self.admission.refused(now);
        self.log_refused_summary(report.summary_first);
        if report.log_this {
            let reason = refusal.to_string();
            self.sink
                .log(&Entry::refused(&mut self.message, addr, &reason));
        }
    }

    /// Refusals not logged one by one, as one entry.
    fn log_refused_summary(&mut self, refused: Option<u64>) {
        if let Some(n) = refused {
            let entry = Entry::refused_summary(&mut self.message, n, REFUSAL_WINDOW);
            self.sink.log(&entry);
        }
    }

    // ---- reading ---------------------------------------------------------------------

    /// The UDP input's share of the turn (`udp::PER_TURN` datagrams at most, while the sink
    /// has room).
    fn serve_udp(&mut self) {
        let Some(udp) = &mut self.udp else {
            return;
        };
        if let Some(error) = udp.serve(&mut self.sink, &self.admission) {
            self.announce(priority::ERR, &error);
        }
    }

    fn serve_ready_clients(&mut self) {
        for _ in 0..READS_PER_TURN {
            if !self.sink.has_room() {
                return;
            }
            let Some(key) = self.conns.next_ready() else {
                return;
            };
            self.serve(key);
        }
    }

    /// Reads once from a client and logs the lines it completes. A client whose source is
    /// over its line budget (throttle mode) is parked instead, unread, until the budget is
    /// back; a stop reads every client regardless.
    fn serve(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let now = Instant::now();
        let action = self.sources.action();
        let source = self
            .sources
            .get_mut(conn.peer.addr.ip())
            .expect("a connection's source is known");
        if action == RateLimitAction::Throttle && self.phase.accepting() {
            if let Some(until) = source.budget.ready_at(now) {
                self.conns.park(key, until);
                return;
            }
        }
        let buffer_size = self.config.buffer_size;
        match conn.read(&mut self.read_buf[..buffer_size], now) {
            ReadOutcome::Data(n) => {
                let log = line_logger(&mut self.sink, &mut self.message, &mut self.syslog);
                let data = &self.read_buf[..n];
                let counts = conn.frame(data, now, &mut source.budget, action, log);
                self.summary.lines += counts.logged;
                self.summary.dropped += counts.dropped;
                self.conns.requeue(key);
            }
            ReadOutcome::Closed => self.close(key, "closed by the client"),
            ReadOutcome::Established => self.established(key, now),
            ReadOutcome::Refused(why) => self.refuse_connection(key, Refusal::Tls(why), now),
            ReadOutcome::WouldBlock => {
                if self.phase.stopping() {
                    // A TLS session cannot be carried to another process: closed (an end of
                    // file, so that its client reconnects to the next one).
                    if self.supervisor.fd_store().is_some() && !conn.is_tls() {
                        // Kept open for the file descriptor store.
                        conn.set_drained();
                    } else {
                        self.close(key, "daemon stopping");
                    }
                }
            }
            ReadOutcome::Interrupted => self.conns.requeue(key),
            ReadOutcome::Failed(e) => self.close(key, &format!("error: {e}")),
        }
    }

    /// Closes a client: logs its partial last line, unreported drops, and a summary. A TLS
    /// client gets close_notify only in reply to its own (a relay must read an end of file:
    /// `tls::Session::close`); one still in its handshake is logged as refused.
    fn close(&mut self, key: usize, reason: &str) {
        let now = Instant::now();
        if self.conns.get_mut(key).is_some_and(|c| c.handshaking()) {
            let why = format!("TLS handshake not finished: {reason}");
            return self.refuse_connection(key, Refusal::Tls(why), now);
        }
        let Some(mut conn) = self.conns.remove(key, self.poll.registry()) else {
            return;
        };
        conn.shutdown();
        self.summary.lines += conn.finish(line_logger(
            &mut self.sink,
            &mut self.message,
            &mut self.syslog,
        ));
        if let Some(report) = conn.drop_report(now, true) {
            let limit = (self.config.max_lines_per_sec, self.config.max_lines_burst);
            log_dropped(&mut self.sink, &mut self.message, &conn, limit, report);
        }
        let ip = conn.peer.addr.ip();
        self.sources.disconnected(ip);
        if !self
            .sources
            .log_event(ip, ConnectionEvent::Disconnected, now)
        {
            return;
        }
        self.sink.log(
            &Entry::disconnected(
                &mut self.message,
                &conn.label,
                conn.peer,
                reason,
                conn.totals(now),
            )
            .with_tls(conn.tls_fields()),
        );
    }

    // ---- housekeeping ----------------------------------------------------------------

    fn tick(&mut self, now: Instant) {
        self.next_tick = now + self.supervisor.tick_interval();
        if let Some(tls) = &self.config.tls {
            let secs = tls.handshake_timeout_secs;
            for key in self.conns.keys_where(|c| c.handshake_overdue(now)) {
                self.refuse_connection(key, Refusal::HandshakeTimeout { secs }, now);
            }
        }
        if self.config.idle_timeout_secs > 0 {
            let limit = Duration::from_secs(self.config.idle_timeout_secs);
            let reason = format!("idle for {} s", self.config.idle_timeout_secs);
            for key in self
                .conns
                .keys_where(|c| !c.handshaking() && c.idle(now, limit))
            {
                self.close(key, &reason);
            }
        }
        let limit = (self.config.max_lines_per_sec, self.config.max_lines_burst);
        let (sink, message) = (&mut self.sink, &mut self.message);
        for (_, conn) in self.conns.iter_mut() {
            if let Some(report) = conn.drop_report(now, false) {
                log_dropped(sink, message, conn, limit, report);
            }
        }
        if let Some(udp) = &mut self.udp {
            udp.report(&mut self.sink, now, false);
        }
        let refused = self.admission.summary_due(now);
        self.log_refused_summary(refused);
        if let Some(text) = self.acceptor.error_summary_due(now) {
            self.announce(priority::ERR, &text);
        }
        self.log_connection_summaries(now, false);
        let status = self.status();
        self.supervisor.tick(status);
        self.warn_of_the_manager(now);
    }

    /// A service manager that does not read its notify socket: said, at most once per 10 s.
    fn warn_of_the_manager(&mut self, now: Instant) {
        if let Some(text) = self.supervisor.take_warning(now) {
            self.announce(priority::WARNING, &text);
        }
    }

    /// Connection events of a source that were not logged one by one, as one entry each.
    fn log_connection_summaries(&mut self, now: Instant, all: bool) {
        for (ip, counts) in self.sources.housekeeping(now, all) {
            let ip = ip.to_string();
            self.sink.log(&Entry::connections_summary(
                &mut self.message,
                &ip,
                counts,
                CONNECTION_EVENT_WINDOW,
            ));
        }
    }

    // ---- reload ----------------------------------------------------------------------

    fn reload(&mut self) {
        self.supervisor.reloading();
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
        self.supervisor.ready();
        self.update_status();
    }

    /// Hands the new configuration to each part.
    fn apply(&mut self, mut new: Config, path: &Path) {
        let notices = if self.phase.accepting() {
            self.acceptor
                .reconfigure(&self.config, &mut new, self.poll.registry())
        } else {
            Vec::new()
        };
        for (priority, notice) in notices {
            self.announce(priority, &notice);
        }
        if new.log != self.config.log {
            for notice in self.sink.replace(&new.log, self.poll.registry()) {
                self.announce(priority::WARNING, &notice);
            }
        }
        self.reload_tls(&mut new);
        self.admission.reconfigure(&new);
        self.sources.reconfigure(&new, Instant::now());
        if let Some(udp) = &mut self.udp {
            udp.reconfigure(&new, Instant::now());
        }
        self.read_buf.resize(new.buffer_size, 0);
        for (_, conn) in self.conns.iter_mut() {
            conn.reconfigure(&new);
        }
        self.syslog.remote = Remote::new(&new);
        self.config = new;
        let admission = &self.admission;
        for key in self
            .conns
            .keys_where(|c| !admission.allows(c.peer.addr.ip()))
        {
            self.close(key, "no longer in the allow list");
        }
        if let Some(tls) = &self.tls {
            for key in self
                .conns
                .keys_where(|c| c.is_tls() && !c.handshaking() && !tls.admits(c.tls_names()))
            {
                self.close(key, "certificate names no longer in tls.allow_names");
            }
        }
        self.announce(
            priority::NOTICE,
            &format!(
                "configuration reloaded from {}; listening on {}, logging to {}",
                path.display(),
                self.acceptor.local_addr(),
                self.sink.describe()
            ),
        );
    }

    /// `[tls]` of a new configuration: the certificate, key and client CAs are read again
    /// (rotation) for new handshakes; connected clients keep their sessions. A file that
    /// cannot be used keeps what was in force, and `new` says so.
    fn reload_tls(&mut self, new: &mut Config) {
        let Some(settings) = &new.tls else {
            if self.tls.take().is_some() {
                self.announce(
                    priority::WARNING,
                    "reload: no [tls] any more: new clients are served in plain TCP; connected \
                     TLS clients keep their sessions",
                );
            }
            return;
        };
        match Tls::load(settings) {
            Ok(tls) => {
                self.announce(
                    priority::NOTICE,
                    &format!(
                        "reload: {} (for new handshakes; connected clients keep their sessions)",
                        tls.describe()
                    ),
                );
                self.tls = Some(tls);
            }
            Err(e) => {
                let kept = match &self.tls {
                    Some(tls) => format!(
                        "new handshakes go on with the previous [tls]: certificate {}, valid \
                         until {}",
                        tls.certificate.subject, tls.certificate.not_after
                    ),
                    None => "TLS stays off: new clients are served in plain TCP".into(),
                };
                self.announce(priority::ERR, &format!("reload: {e}; {kept}"));
                new.tls = self.tls.as_ref().map(|t| t.settings.clone());
            }
        }
    }

    // ---- stopping --------------------------------------------------------------------

    /// SIGTERM: no more accepting; each client is read until it has nothing more to give
    /// (which includes everything its kernel had received at the signal, noted as its
    /// `stop_quota`), however far over its budget its source is, and closed; all within
    /// `stop_timeout_secs`. A client still sending at the deadline is closed with its bytes
    /// unread, which resets the connection, so its sender learns of it; of those, what had
    /// arrived before the signal is counted as not logged.
    fn begin_stop(&mut self, signal: &str) {
        let timeout = Duration::from_secs(self.config.stop_timeout_secs);
        if !self.phase.stop(Instant::now() + timeout) {
            return;
        }
        self.supervisor.stopping();
        if self.supervisor.fd_store().is_none() || self.acceptor.from_systemd() {
            // (A socket unit's listening socket stays with systemd: nothing to store.)
            self.acceptor.close(self.poll.registry());
        } else {
            // Kept (not accepting) for the file descriptor store: clients that connect now
            // wait in its queue for the next process.
            self.handed_listener = self.acceptor.take(self.poll.registry());
        }
        let mut bytes = 0;
        for (_, conn) in self.conns.iter_mut() {
            conn.begin_stop();
            bytes += conn.stop_quota().unwrap_or(0);
        }
        self.announce(
            priority::INFO,
            &format!(
                "{signal}: stopped accepting; reading the {bytes} bytes the kernel had received from {} \
                 clients",
                self.conns.len()
            ),
        );
        self.conns.unpark_all();
        self.conns.mark_all_ready();
        if let Some(udp) = &mut self.udp {
            udp.begin_stop();
        }
    }

    fn finish(mut self) -> Summary {
        let deadline = match self.phase {
            Phase::Stopping { deadline } => deadline,
            Phase::Serving => Instant::now(),
        };
        // The manager's queue is waited on until the stop's deadline, no longer.
        let handed = self.hand_over(deadline.max(Instant::now() + STOP_DRAIN_MIN));
        // Clients not read to the end in time: what they had sent is counted, not logged, and
        // they are reset (even when the count emptied their socket, which a plain close would
        // end with an end of file: the sign that everything was read).
        for key in self.conns.keys_where(|_| true) {
            if let Some(conn) = self.conns.get_mut(key) {
                let (bytes, lines) = conn.discard_quota(&mut self.read_buf);
                self.summary.unread_bytes += bytes;
                self.summary.unread_lines += lines;
                if bytes > 0 {
                    conn.reset_on_close();
                }
            }
            self.close(key, "daemon stopping");
        }
        let refused = self.admission.take_unreported();
        self.log_refused_summary(refused);
        self.log_connection_summaries(Instant::now(), true);
        if let Some(mut udp) = self.udp.take() {
            udp.report(&mut self.sink, Instant::now(), true);
            self.summary.udp = Some(udp.counts());
            udp.close(self.poll.registry());
        }
        let drain_until = deadline.max(Instant::now() + STOP_DRAIN_MIN);
        self.sink.drain(drain_until, self.poll.registry());
        let stats = self.sink.stats();
        self.summary.undelivered = stats.undelivered;
        self.summary.to_stderr = stats.fallback;
        self.summary.unsent_notifications = self.supervisor.unsent().0;
        let (priority, text) = stop_report(
            &self.summary,
            handed.as_ref(),
            self.config.stop_timeout_secs,
        );
        self.announce(priority, &text);
        self.sink
            .drain(Instant::now() + STOP_DRAIN_MIN, self.poll.registry());
        let stats = self.sink.stats();
        let mut summary = self.summary;
        summary.undelivered = stats.undelivered;
        summary.to_stderr = stats.fallback;
        summary
    }
}

impl Server {
    /// Takes back what the previous process handed to systemd's file descriptor store: its
    /// client connections (each goes on where it was, same connection id, its unfinished
    /// line carried) and its counters. A state that cannot be used is reported, and the
    /// connections are served on as new ones.
    fn take_back(&mut self, mut carried: Carried) {
        let forget = carried.stored_names().to_vec();
        let now = Instant::now();
        let config = &self.config;
        let state = carried.state.take().map(|fd| {
            fdstore::read_memfd(fd)
                .map_err(|e| format!("cannot read it: {e}"))
                .and_then(|bytes| State::decode(&bytes))
                .and_then(|state| state.check(config).map(|()| state))
        });
        let (mut saved, state_note) = match state {
            Some(Ok(state)) => {
                self.next_id = self.next_id.max(state.next_id);
                let s = &mut self.summary;
                s.connections = state.summary.connections;
                s.lines = state.summary.lines;
                s.refused = state.summary.refused;
                s.dropped = state.summary.dropped;
                for (ip, tokens) in &state.budgets {
                    self.sources.restore_budget(*ip, *tokens, now);
                }
                (state.connections, None)
            }
            Some(Err(why)) => (Vec::new(), Some(why)),
            None => (
                Vec::new(),
                (!carried.connections.is_empty()).then(|| "there is none".into()),
            ),
        };
        let (mut restored, mut fresh, mut unfinished) = (0, 0, 0);
        for (id, fd) in std::mem::take(&mut carried.connections) {
            let stream = match crate::systemd::connected_socket(fd) {
                Ok(s) => TcpStream::from_std(s),
                Err(e) => {
                    self.announce(
                        priority::WARNING,
                        &format!("connection {id} carried over: {e}; closed"),
                    );
                    continue;
                }
            };
            let conn = match saved.iter().position(|c| c.id == id) {
                Some(i) => {
                    let state = saved.swap_remove(i);
                    Connection::restore(stream, &state, &self.config, now)
                }
                None => Err((stream, "not in the state".to_string())),
            };
            let conn = match conn {
                Ok(conn) => {
                    restored += 1;
                    unfinished += conn.unfinished();
                    conn
                }
                Err((stream, why)) => {
                    self.announce(
                        priority::WARNING,
                        &format!("connection {id} carried over: {why}; served as a new one"),
                    );
                    // Served on as a new connection: a new id, nothing carried.
                    let Ok(peer) = stream.peer_addr() else {
                        continue;
                    };
                    fresh += 1;
                    let conn = Connection::new(stream, peer, self.next_id, &self.config, now);
                    self.next_id += 1;
                    self.summary.connections += 1;
                    conn
                }
            };
            let ip = conn.peer.addr.ip();
            match self.conns.insert(conn, self.poll.registry()) {
                Ok(_) => self.sources.connected(ip, now),
                Err(e) => self.announce(
                    priority::WARNING,
                    &format!("connection {id} carried over: cannot watch it ({e}); closed"),
                ),
            }
        }
        for name in &carried.unknown {
            self.announce(
                priority::WARNING,
                &format!("systemd passed a descriptor named {name:?}, which is not ours: closed"),
            );
        }
        for name in forget {
            self.supervisor.forget_stored(&name);
        }
        if restored + fresh == 0 && state_note.is_none() {
            return;
        }
        let mut text = format!(
            "carried over {} connections from the previous process (file descriptor store)",
            restored + fresh
        );
        if restored > 0 {
            text.push_str(&format!(
                "; {restored} go on where they were, with {unfinished} bytes of unfinished lines"
            ));
        }
        let priority = match state_note {
            Some(why) => {
                text.push_str(&format!(
                    "; its state could not be used ({why}): {fresh} go on as new connections"
                ));
                priority::WARNING
            }
            None => priority::NOTICE,
        };
        self.announce(priority, &text);
    }

    /// At the end of a stop, with a file descriptor store to hand them to: every client
    /// connection (what it had sent is read and logged; an unfinished line goes with it), the
    /// listening socket and the state, each waiting for room in the manager's queue until
    /// `until` at the latest. Returns what to say in the last entry; the connections that did
    /// not fit in the store, or that the manager did not take in time, are closed as usual by
    /// the caller.
    fn hand_over(&mut self, until: Instant) -> Option<HandOver> {
        let room = self.supervisor.fd_store()?;
        let now = Instant::now();
        let listener = self.handed_listener.take();
        // The state and the listening socket take a place each.
        let mut room = room.saturating_sub(1 + usize::from(listener.is_some()));
        let mut saved = Vec::new();
        let (mut unfinished, mut unread, mut not_taken) = (0, 0, 0);
        let mut why_not = None;
        // A TLS session cannot be carried over: those are closed by the caller (an end of
        // file, which makes a relay reconnect to the next process), after what they sent was
        // read and logged.
        let mut keys = self.conns.keys_where(|c| !c.is_tls());
        keys.sort_by_key(|&k| self.conns.get_mut(k).map(|c| c.peer.connection_id));
        for key in keys {
            if room == 0 {
                break;
            }
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            let name = fdstore::connection_name(conn.peer.connection_id);
            if let Err(e) = self.supervisor.store(&name, conn.socket(), until) {
                not_taken += 1;
                why_not.get_or_insert(e.to_string());
                continue;
            }
            room -= 1;
            saved.push(conn.save(now));
            unfinished += conn.unfinished();
            let (sink, message, fields) = (&mut self.sink, &mut self.message, &mut self.syslog);
            conn.log_carried(|line| log_line(sink, message, fields, line, true));
            unread += conn.stop_quota().unwrap_or(0);
            let ip = conn.peer.addr.ip();
            drop(self.conns.remove(key, self.poll.registry()));
            self.sources.disconnected(ip);
        }
        let listener_stored = match &listener {
            Some(listener) => {
                match self
                    .supervisor
                    .store(fdstore::LISTENER, listener.as_fd(), until)
                {
                    Ok(()) => true,
                    Err(e) => {
                        why_not.get_or_insert(e.to_string());
                        false
                    }
                }
            }
            None => false,
        };
        let state = State {
            next_id: self.next_id,
            summary: self.summary,
            budgets: self.sources.budgets(now),
            connections: saved,
        };
        let handed = state.connections.len();
        let mut not_handed = String::new();
        if not_taken > 0 {
            not_handed.push_str(&format!(
                "; {not_taken} connections could not be handed over ({}): closed now, what \
                 they sent logged",
                why_not.as_deref().unwrap_or("")
            ));
        }
        if listener.is_some() && !listener_stored {
            not_handed.push_str(&format!(
                "; the listening socket could not be handed over ({}): clients waiting in its \
                 queue are reset",
                why_not.as_deref().unwrap_or("")
            ));
        }
        let stored = fdstore::sealed_memfd(&state.encode(), c"tcp-listener-state")
            .and_then(|fd| self.supervisor.store(fdstore::STATE, fd.as_fd(), until));
        if handed == 0 && !listener_stored && !not_handed.is_empty() {
            return Some(HandOver {
                text: format!("handed nothing to systemd's file descriptor store{not_handed}"),
                whole: false,
            });
        }
        if let Err(e) = stored {
            return Some(HandOver {
                text: format!(
                    "handed {handed} connections to systemd's file descriptor store, but not \
                     their state ({e}): a restart serves them as new connections{not_handed}"
                ),
                whole: false,
            });
        }
        let text = format!(
            "handed {handed} connections{} to systemd's file descriptor store, with {unfinished} \
             bytes of unfinished lines (logged now as partial, LINE_CARRIED=1; a restart logs \
             them whole) and {unread} bytes not read yet (a restart goes on with them; a plain \
             stop closes them){not_handed}",
            if listener_stored {
                " and the listening socket"
            } else {
                ""
            }
        );
        Some(HandOver {
            text,
            whole: not_handed.is_empty(),
        })
    }
}

/// What logging a syslog message takes besides the sink and the text buffer.
struct SyslogLog {
    /// Its SYSLOG_* fields (reused from message to message).
    fields: JournalFields,
    /// `max_remote_severity`, `remote_identifier_prefix`.
    remote: Remote,
}

/// What a stop handed to the file descriptor store, as its last entry says it.
struct HandOver {
    text: String,
    /// Everything that was to be handed over was (else the entry is a warning).
    whole: bool,
}

/// The last entry of a stop: its priority and text. NOT LOGGED, at err, only for what really
/// was not: bytes not read in time, entries the target did not take. Entries written to stderr
/// as the announced fallback (no usable journal socket) were printed as intended: said, at
/// notice.
fn stop_report(s: &Summary, handed: Option<&HandOver>, stop_timeout_secs: u64) -> (u8, String) {
    let mut text = format!(
        "stopping: served {} connections, logged {} lines, refused {}, dropped {} over the \
         rate limit",
        s.connections, s.lines, s.refused, s.dropped
    );
    if let Some(handed) = handed {
        text.push_str(&format!("; {}", handed.text));
    }
    if let Some(udp) = &s.udp {
        text.push_str(&format!("; {}", udp.summary()));
    }
    let mut lost = Vec::new();
    if s.unread_bytes > 0 {
        lost.push(format!(
            "{} bytes ({} line ends) received before the stop and not read within \
             stop_timeout_secs ({stop_timeout_secs} s)",
            s.unread_bytes, s.unread_lines
        ));
    }
    if s.undelivered > 0 {
        lost.push(format!(
            "{} entries the log target did not take in time (printed on stderr instead)",
            s.undelivered
        ));
    }
    if s.to_stderr > 0 {
        text.push_str(&format!(
            "; {} entries before this one were written to stderr, as announced, while the \
             journal socket could not be used",
            s.to_stderr
        ));
    }
    if s.unsent_notifications > 0 {
        text.push_str(&format!(
            "; {} notifications to the service manager could not be sent (its notify socket \
             was full)",
            s.unsent_notifications
        ));
    }
    if !lost.is_empty() {
        text.push_str(&format!("; NOT LOGGED: {}", lost.join(", ")));
        return (priority::ERR, text);
    }
    text.push_str("; everything received before the stop was logged");
    let udp_lost = s.udp.is_some_and(|u| u.lost_any());
    let priority = if s.unsent_notifications > 0 || handed.is_some_and(|h| !h.whole) || udp_lost {
        priority::WARNING
    } else if s.to_stderr > 0 {
        priority::NOTICE
    } else {
        priority::INFO
    };
    (priority, text)
}

/// Logs each line a connection hands over.
fn line_logger<'a>(
    sink: &'a mut Sink,
    message: &'a mut String,
    syslog: &'a mut SyslogLog,
) -> impl FnMut(Line<'_>) + 'a {
    move |line| log_line(sink, message, syslog, line, false)
}

/// Logs a line of a connection: a syslog entry if it has a syslog header; `carried`: the
/// unfinished line of a connection handed to the file descriptor store ([`Entry::carried`]).
fn log_line(
    sink: &mut Sink,
    message: &mut String,
    syslog: &mut SyslogLog,
    line: Line<'_>,
    carried: bool,
) {
    let Line {
        label,
        peer,
        number,
        frame,
        tls,
        header,
    } = line;
    let entry = match header {
        None => Entry::line(message, label, peer, number, &frame),
        Some(header) => {
            let SyslogLog { fields, remote } = syslog;
            Entry::syslog(
                message, fields, label, peer, number, &frame, &header, remote,
            )
        }
    };
    let entry = entry.with_tls(tls);
    sink.log(&if carried { entry.carried() } else { entry });
}

fn log_dropped(
    sink: &mut Sink,
    message: &mut String,
    conn: &Connection,
    limit: (u32, u32),
    report: DropReport,
) {
    sink.log(
        &Entry::dropped(
            message,
            &conn.label,
            conn.peer,
            report.count,
            limit,
            report.total,
        )
        .with_tls(conn.tls_fields()),
    );
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::net::TcpStream as StdStream;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::control::ControlHandle;

    /// What a server in this process logged, line by line.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn lines(&self) -> Vec<String> {
            String::from_utf8_lossy(&self.0.lock().unwrap())
                .lines()
                .map(str::to_string)
                .collect()
        }

        /// Waits (polling, with a deadline) until a line contains each of `needles`.
        fn wait_for(&self, needles: &[&str]) -> Vec<String> {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let lines = self.lines();
                if needles.iter().all(|n| lines.iter().any(|l| l.contains(n))) {
                    return lines;
                }
                assert!(Instant::now() < deadline, "no {needles:?} in {lines:?}");
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    /// A server on a loopback port, in a thread, logging (as the stderr sink) into memory.
    fn start(
        config: &str,
    ) -> (
        SocketAddr,
        ControlHandle,
        Captured,
        std::thread::JoinHandle<io::Result<Summary>>,
    ) {
        let config = Config::parse(config, Path::new("test.toml")).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (control, handle) = Control::channel().unwrap();
        let captured = Captured::default();
        let out = captured.clone();
        let thread = std::thread::spawn(move || {
            let server = Server::new(
                ListenSocket::Bound(listener),
                config,
                None,
                control,
                |_, _| (Sink::to_writer(Box::new(out)), Vec::new()),
            )?;
            server.run()
        });
        (addr, handle, captured, thread)
    }

    #[test]
    fn a_stop_reads_what_clients_sent_logs_cut_lines_and_returns_the_summary() {
        let (addr, control, log, server) = start("");
        let mut a = StdStream::connect(addr).unwrap();
        let mut b = StdStream::connect(addr).unwrap();
        let (pa, pb) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        log.wait_for(&[&format!("{pa}: connected"), &format!("{pb}: connected")]);
        a.write_all(b"whole\nhalf a l").unwrap();
        b.write_all(b"one\ntwo\n").unwrap();
        log.wait_for(&[&format!("{pa}: whole"), &format!("{pb}: two")]);
        a.write_all(b"ine").unwrap();
        control.stop();
        let summary = server.join().unwrap().unwrap();
        let lines = log.lines();
        assert_eq!(
            summary,
            Summary {
                connections: 2,
                lines: 4,
                ..Summary::default()
            },
            "{lines:?}"
        );
        // What was sent before the stop is all there, the cut line marked.
        assert!(
            lines.contains(&format!("{pa}: half a line [partial]")),
            "{lines:?}"
        );
        for peer in [pa, pb] {
            assert!(
                lines
                    .iter()
                    .any(|l| l.starts_with(&format!("{peer}: disconnected (daemon stopping)"))),
                "{lines:?}"
            );
        }
        assert!(lines
            .last()
            .unwrap()
            .starts_with("stopping: served 2 connections, logged 4 lines, refused 0, dropped 0"));
        // The clients see the end of the connection; the listening socket is closed.
        let mut buf = [0; 8];
        assert_eq!(a.read(&mut buf).unwrap(), 0);
        assert!(StdStream::connect(addr).is_err());
    }

    #[test]
    fn refusals_are_reported_and_counted_and_a_stop_reports_the_rest() {
        let (addr, control, log, server) = start("max_connections = 1");
        let first = StdStream::connect(addr).unwrap();
        log.wait_for(&[": connected"]);
        let refused: Vec<StdStream> = (0..7).map(|_| StdStream::connect(addr).unwrap()).collect();
        for mut r in refused {
            let mut buf = [0; 1];
            // Closed at once by the daemon: end of file (or a reset).
            assert!(matches!(r.read(&mut buf), Ok(0) | Err(_)));
        }
        log.wait_for(&["refused: max_connections (1) reached"]);
        control.stop();
        let summary = server.join().unwrap().unwrap();
        drop(first);
        let lines = log.lines();
        assert_eq!(summary.refused, 7);
        let warnings = lines.iter().filter(|l| l.contains(": refused: ")).count();
        assert_eq!(warnings, 5, "{lines:?}");
        assert!(
            lines.contains(
                &"refused 2 more connections in the last 10 s (not logged one by one)".to_string()
            ),
            "{lines:?}"
        );
    }

    /// Issue 17 item 10: entries printed by the stderr fallback are not "NOT LOGGED"; the stop
    /// says NOT LOGGED, at err, only for what really was not, naming only what it was.
    #[test]
    fn the_stop_report_says_not_logged_only_for_what_was_not() {
        let base = Summary {
            connections: 1,
            lines: 3,
            ..Summary::default()
        };
        let (p, text) = stop_report(&base, None, 10);
        assert_eq!(p, priority::INFO);
        assert_eq!(
            text,
            "stopping: served 1 connections, logged 3 lines, refused 0, dropped 0 over the rate \
             limit; everything received before the stop was logged"
        );
        let fallback = Summary {
            to_stderr: 6,
            ..base
        };
        let (p, text) = stop_report(&fallback, None, 10);
        assert_eq!(p, priority::NOTICE);
        assert!(!text.contains("NOT LOGGED"), "{text}");
        assert!(
            text.ends_with(
                "; 6 entries before this one were written to stderr, as announced, while the \
                 journal socket could not be used; everything received before the stop was logged"
            ),
            "{text}"
        );
        let (p, text) = stop_report(
            &Summary {
                undelivered: 2,
                ..fallback
            },
            None,
            10,
        );
        assert_eq!(p, priority::ERR);
        assert!(
            text.ends_with(
                "; NOT LOGGED: 2 entries the log target did not take in time (printed on stderr \
                 instead)"
            ),
            "{text}"
        );
        let (p, text) = stop_report(
            &Summary {
                unread_bytes: 100,
                unread_lines: 4,
                ..base
            },
            None,
            7,
        );
        assert_eq!(p, priority::ERR);
        assert!(
            text.ends_with(
                "; NOT LOGGED: 100 bytes (4 line ends) received before the stop and not read \
                 within stop_timeout_secs (7 s)"
            ),
            "{text}"
        );
    }

    #[test]
    fn the_stop_phase_reads_until_the_clients_are_done_or_the_deadline() {
        let t0 = Instant::now();
        let timeout = Duration::from_secs(10);
        let mut phase = Phase::Serving;
        assert!(phase.accepting());
        assert!(!phase.reading_done(t0, 0), "serving never ends by itself");
        assert_eq!(phase.wake_at(), None);
        assert!(phase.stop(t0 + timeout));
        assert!(!phase.accepting());
        assert!(
            !phase.stop(t0 + 2 * timeout),
            "a second stop changes nothing"
        );
        assert_eq!(phase.wake_at(), Some(t0 + timeout));
        assert!(!phase.reading_done(t0, 3));
        assert!(phase.reading_done(t0, 0), "no client left");
        assert!(phase.reading_done(t0 + timeout, 3), "deadline");
    }
}
