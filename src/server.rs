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
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Registry, Token};

use crate::admission::{Admission, Refusal, REFUSAL_WINDOW};
use crate::config::{Config, LogConfig, RateLimitAction, DEFAULT_CONFIG_PATH};
use crate::connection::{Connection, Connections, DropReport, Line, ReadOutcome};
use crate::control::{Command, Control};
use crate::entry::{priority, Entry};
use crate::listener::{self, Accepted, Acceptor, ListenSocket};
use crate::sink::Sink;
use crate::source::{ConnectionEvent, Sources, CONNECTION_EVENT_WINDOW};
use crate::syslog_message::JournalFields;
use crate::systemd::Supervisor;

const CONTROL: Token = Token(usize::MAX - 2);

/// Reads served before the loop polls again, so accepts and signals are never starved.
const READS_PER_TURN: usize = 256;
/// Connections accepted before the loop polls again.
const ACCEPTS_PER_TURN: usize = 128;
/// At a reload that changes `[log]`: time to deliver what the old sink holds.
const RELOAD_DRAIN_TIME: Duration = Duration::from_millis(450);
/// At the end of a stop: time to deliver what is left, at least.
const STOP_DRAIN_MIN: Duration = Duration::from_millis(200);

/// What the daemon did, as it reports when it stops.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub connections: u64,
    pub lines: u64,
    pub refused: u64,
    pub dropped: u64,
    /// Entries that could not be delivered where configured (they went to stderr).
    pub undelivered: u64,
    /// Bytes clients had sent before the stop that it could not read in time, and the line
    /// ends among them.
    pub unread_bytes: u64,
    pub unread_lines: u64,
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

/// Runs the daemon until `control` asks it to stop. `config_path` is re-read on reload.
pub fn run(
    listen: ListenSocket,
    config: Config,
    config_path: Option<PathBuf>,
    control: Control,
) -> io::Result<Summary> {
    let server = Server::new(listen, config, config_path, control, |log, registry| {
        Sink::open(log, registry)
    })?;
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
    /// The SYSLOG_* fields of the syslog message being logged.
    syslog_fields: JournalFields,
    /// stderr goes to the journal already (`JOURNAL_STREAM`): announcements are not repeated
    /// there.
    stderr_is_journal: bool,
}

impl Server {
    fn new(
        listen: ListenSocket,
        config: Config,
        config_path: Option<PathBuf>,
        mut control: Control,
        open_sink: impl FnOnce(&LogConfig, &Registry) -> (Sink, Option<String>),
    ) -> io::Result<Server> {
        let poll = Poll::new()?;
        let acceptor = Acceptor::new(listen, poll.registry())?;
        poll.registry()
            .register(&mut control, CONTROL, Interest::READABLE)?;
        let (sink, sink_notice) = open_sink(&config.log, poll.registry());
        let supervisor = Supervisor::from_env();
        let mut server = Server {
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
            syslog_fields: JournalFields::new(),
            stderr_is_journal: std::env::var_os("JOURNAL_STREAM").is_some(),
        };
        if let Some(notice) = sink_notice {
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
        self.announce(
            priority::INFO,
            &format!(
                "listening on {}{origin}, logging to {}; up to {} clients",
                self.acceptor.local_addr(),
                self.sink.describe(),
                self.config.max_connections
            ),
        );
        self.supervisor.ready();
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
                    listener::TOKEN => self.acceptor.readable(),
                    CONTROL => self.handle_commands(),
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
            self.serve_ready_clients();
            if now >= self.next_tick {
                self.tick(now);
            }
            if self.phase.reading_done(now, self.conns.len()) {
                return Ok(self.finish());
            }
            self.sink.flush(now, self.poll.registry());
        }
    }

    fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        if self.conns.has_ready() && self.sink.has_room() {
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
        if let Err(refusal) = self.admission.check(ip, open.0, open.1) {
            return self.refuse(addr, refusal, now);
        }
        let conn = Connection::new(stream, addr, self.next_id, &self.config, now);
        let (label, peer) = (conn.label.clone(), conn.peer);
        if let Err(e) = self.conns.insert(conn, self.poll.registry()) {
            return self.refuse(addr, Refusal::CannotWatch(e.to_string()), now);
        }
        self.next_id += 1;
        self.summary.connections += 1;
        self.sources.connected(ip, now);
        if self.sources.log_event(ip, ConnectionEvent::Connected, now) {
            self.sink
                .log(&Entry::connected(&mut self.message, &label, peer));
        }
    }

    /// Logs a refused connection as the admission's report rules say; the stream is closed by
    /// the caller dropping it.
    fn refuse(&mut self, addr: SocketAddr, refusal: Refusal, now: Instant) {
        self.summary.refused += 1;
        let addr = SocketAddr::new(addr.ip().to_canonical(), addr.port());
        let report = self.admission.refused(now);
        if let Some(n) = report.summary_first {
            self.sink.log(&Entry::refused_summary(
                &mut self.message,
                n,
                REFUSAL_WINDOW,
            ));
        }
        if report.log_this {
            let reason = refusal.to_string();
            self.sink
                .log(&Entry::refused(&mut self.message, addr, &reason));
        }
    }

    // ---- reading ---------------------------------------------------------------------

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
                let log = line_logger(&mut self.sink, &mut self.message, &mut self.syslog_fields);
                let data = &self.read_buf[..n];
                let counts = conn.frame(data, now, &mut source.budget, action, log);
                self.summary.lines += counts.logged;
                self.summary.dropped += counts.dropped;
                self.conns.requeue(key);
            }
            ReadOutcome::Closed => self.close(key, "closed by the client"),
            ReadOutcome::WouldBlock => {
                if self.phase.stopping() {
                    self.close(key, "daemon stopping");
                }
            }
            ReadOutcome::Interrupted => self.conns.requeue(key),
            ReadOutcome::Failed(e) => self.close(key, &format!("error: {e}")),
        }
    }

    /// Closes a client: logs its partial last line, unreported drops, and a summary.
    fn close(&mut self, key: usize, reason: &str) {
        let Some(mut conn) = self.conns.remove(key, self.poll.registry()) else {
            return;
        };
        let now = Instant::now();
        self.summary.lines += conn.finish(line_logger(
            &mut self.sink,
            &mut self.message,
            &mut self.syslog_fields,
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
        self.sink.log(&Entry::disconnected(
            &mut self.message,
            &conn.label,
            conn.peer,
            reason,
            conn.totals(now),
        ));
    }

    // ---- housekeeping ----------------------------------------------------------------

    fn tick(&mut self, now: Instant) {
        self.next_tick = now + self.supervisor.tick_interval();
        if self.config.idle_timeout_secs > 0 {
            let limit = Duration::from_secs(self.config.idle_timeout_secs);
            let reason = format!("idle for {} s", self.config.idle_timeout_secs);
            for key in self.conns.keys_where(|c| c.idle(now, limit)) {
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
        if let Some(n) = self.admission.summary_due(now) {
            self.sink.log(&Entry::refused_summary(
                &mut self.message,
                n,
                REFUSAL_WINDOW,
            ));
        }
        if let Some(text) = self.acceptor.error_summary_due(now) {
            self.announce(priority::ERR, &text);
        }
        self.log_connection_summaries(now, false);
        let status = self.status();
        self.supervisor.tick(status);
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
        for notice in notices {
            let priority = if notice.contains("cannot listen") {
                priority::ERR
            } else {
                priority::NOTICE
            };
            self.announce(priority, &notice);
        }
        if new.log != self.config.log {
            self.sink
                .drain(Instant::now() + RELOAD_DRAIN_TIME, self.poll.registry());
            let (sink, notice) = Sink::open(&new.log, self.poll.registry());
            self.sink = sink;
            if let Some(notice) = notice {
                self.announce(priority::WARNING, &notice);
            }
        }
        self.admission.reconfigure(&new);
        self.sources.reconfigure(&new, Instant::now());
        self.read_buf.resize(new.buffer_size, 0);
        for (_, conn) in self.conns.iter_mut() {
            conn.reconfigure(&new);
        }
        self.config = new;
        let admission = &self.admission;
        for key in self
            .conns
            .keys_where(|c| !admission.allows(c.peer.addr.ip()))
        {
            self.close(key, "no longer in the allow list");
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
        self.acceptor.close(self.poll.registry());
        let mut bytes = 0;
        for (_, conn) in self.conns.iter_mut() {
            conn.begin_stop();
            bytes += conn.stop_quota().unwrap_or(0);
        }
        self.announce(
            priority::INFO,
            &format!(
                "{signal}: stopped accepting; reading the {bytes} bytes {} clients had sent",
                self.conns.len()
            ),
        );
        self.conns.unpark_all();
        self.conns.mark_all_ready();
    }

    fn finish(mut self) -> Summary {
        let deadline = match self.phase {
            Phase::Stopping { deadline } => deadline,
            Phase::Serving => Instant::now(),
        };
        // Clients not read to the end in time: what they had sent is counted, not logged.
        for key in self.conns.keys_where(|_| true) {
            if let Some(conn) = self.conns.get_mut(key) {
                let (bytes, lines) = conn.discard_quota(&mut self.read_buf);
                self.summary.unread_bytes += bytes;
                self.summary.unread_lines += lines;
            }
            self.close(key, "daemon stopping");
        }
        if let Some(n) = self.admission.take_unreported() {
            self.sink.log(&Entry::refused_summary(
                &mut self.message,
                n,
                REFUSAL_WINDOW,
            ));
        }
        self.log_connection_summaries(Instant::now(), true);
        let drain_until = deadline.max(Instant::now() + STOP_DRAIN_MIN);
        self.sink.drain(drain_until, self.poll.registry());
        self.summary.undelivered = self.sink.stats().undelivered;
        let s = self.summary;
        let mut text = format!(
            "stopping: served {} connections, logged {} lines, refused {}, dropped {} over the \
             rate limit",
            s.connections, s.lines, s.refused, s.dropped
        );
        let lost = s.unread_bytes > 0 || s.undelivered > 0;
        if lost {
            text.push_str(&format!(
                "; NOT LOGGED: {} bytes ({} line ends) received before the stop and not read \
                 within stop_timeout_secs ({} s), {} entries not delivered (written to stderr)",
                s.unread_bytes, s.unread_lines, self.config.stop_timeout_secs, s.undelivered
            ));
        } else {
            text.push_str("; everything received before the stop was logged");
        }
        self.announce(if lost { priority::ERR } else { priority::INFO }, &text);
        self.sink
            .drain(Instant::now() + STOP_DRAIN_MIN, self.poll.registry());
        let mut summary = self.summary;
        summary.undelivered = self.sink.stats().undelivered;
        summary
    }
}

/// Logs each line (or syslog message) a connection hands over: by the framing that cut it,
/// which after a reload may not be the configured one yet.
fn line_logger<'a>(
    sink: &'a mut Sink,
    message: &'a mut String,
    syslog_fields: &'a mut JournalFields,
) -> impl FnMut(Line<'_>) + 'a {
    move |line| match line.header {
        None => sink.log(&Entry::line(
            message,
            line.label,
            line.peer,
            line.number,
            &line.frame,
        )),
        Some(header) => sink.log(&Entry::syslog(
            message,
            syslog_fields,
            line.label,
            line.peer,
            line.number,
            &line.frame,
            &header,
        )),
    }
}

fn log_dropped(
    sink: &mut Sink,
    message: &mut String,
    conn: &Connection,
    limit: (u32, u32),
    report: DropReport,
) {
    sink.log(&Entry::dropped(
        message,
        &conn.label,
        conn.peer,
        report.count,
        limit,
        report.total,
    ));
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::net::TcpStream as StdStream;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::control::ControlHandle;
    use crate::sink::stderr::StderrSink;

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
                |_, _| (Sink::Stderr(StderrSink::to(Box::new(out))), None),
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
