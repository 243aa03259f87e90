//! The event loop: one thread, one mio poll, every client at once. This file drives the parts
//! that own the work, one step of the data path each:
//!
//! accept ([`listener`](crate::listener)) → admit ([`admission`](crate::admission)) → read
//! ([`connection`](crate::connection)) → frame ([`framing`](crate::framing)) → budget
//! ([`ratelimit`](crate::ratelimit), applied by the connection) → entry
//! ([`entry`](crate::entry)) → sink ([`sink`](crate::sink)).
//!
//! Here: the server and its start (what the file descriptor store carried over, the first
//! announcements), polling and dispatching events, the turns of the loop. In files of their
//! own: the accept and refuse path (`server/accept.rs`), reading clients and closing them
//! (`server/serve.rs`), the housekeeping tick (`server/housekeeping.rs`), reload
//! (`server/reload.rs`), the stop (`server/stop.rs`), and the UDP input's hooks
//! (`server/udp_input.rs`).
//!
//! **The batching rule.** A turn of the loop reads up to [`READS_PER_TURN`] clients, one
//! buffer each, in ready-queue order, and only while the sink has room
//! ([`Sink::has_room`]); then it flushes the sink, which sends what was queued with as few
//! system calls as it can (journald: one sendmmsg(2) per 64 entries). How much the journald
//! sink queues before it says "no room" is its `QUEUE_LIMIT`, 64 (measured against 1 in
//! `sink/journald/delivery.rs`): a turn reads clients until about one sendmmsg's worth of
//! lines is queued, so one sendmmsg carries the lines of several clients. With `udp = true`
//! the UDP socket's share ([`udp::PER_TURN`] datagrams) is as much as the queue takes, so
//! whichever input is read first may leave the other no room: of the turns that have room,
//! every other one reads the UDP socket first, the others the TCP clients
//! ([`Server::serve_inputs`]); a flood on either input does not starve the other.

use std::fmt;
use std::io::{self, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Registry, Token};

use crate::admission::Admission;
use crate::config::{Config, LogConfig};
use crate::connection::Connections;
use crate::control::{Command, Control};
use crate::entry::{priority, Entry, Fields, Remote, Value};
use crate::fdstore::handoff;
use crate::fdstore::Carried;
use crate::listener::{self, Acceptor, ListenSocket};
use crate::retention;
use crate::sink::Sink;
use crate::source::Sources;
use crate::summary::Summary;
use crate::syslog_message::JournalFields;
use crate::systemd::Supervisor;
use crate::tls::Tls;
use crate::udp::{self, Udp};

/// The parts of the server the handoff works on ([`handoff::Parts`]), each field borrowed on
/// its own so that the caller may borrow the others beside them.
macro_rules! handoff_parts {
    ($server:expr) => {
        $crate::fdstore::handoff::Parts {
            config: &$server.config,
            registry: $server.poll.registry(),
            conns: &mut $server.conns,
            sources: &mut $server.sources,
            supervisor: &mut $server.supervisor,
            summary: &mut $server.summary,
            next_id: &mut $server.next_id,
        }
    };
}

mod accept;
mod housekeeping;
mod metrics;
mod reload;
mod serve;
mod stop;
mod udp_input;

use stop::Phase;

const CONTROL: Token = Token(usize::MAX - 2);

/// Reads served before the loop polls again, so accepts and signals are never starved.
const READS_PER_TURN: usize = 256;

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
    mut carried: Carried,
) -> io::Result<Summary> {
    let mut server = Server::new(listen, config, config_path, control, |log, registry| {
        Sink::open(log, registry)
    })?;
    server.tls = tls;
    server.start_udp(&mut carried)?;
    server.take_back(carried);
    server.run()
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
    /// With `metrics_listen`: the Prometheus endpoint.
    metrics: Option<metrics::Served>,
    /// What only the server counts for the metrics (the rest is in `summary` and the sink).
    counters: crate::metrics::Counters,
    started: std::time::SystemTime,
    /// With `udp = true`: the UDP input.
    udp: Option<Udp>,
    /// A socket unit's UDP socket while `udp = false` (a reload may turn UDP on with it).
    udp_unit: Option<std::os::fd::OwnedFd>,
    /// The last turn with room read the UDP socket first ([`Server::serve_inputs`]).
    udp_first: bool,
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
            metrics: None,
            counters: crate::metrics::Counters::default(),
            started: metrics::start_time(),
            udp: None,
            udp_unit: None,
            udp_first: false,
        };
        for notice in sink_notices {
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
        self.open_metrics();
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
                    token if crate::metrics::owns(token) => self.serve_metrics(token),
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
            self.serve_inputs();
            if now >= self.next_tick {
                self.tick(now);
            }
            // (Counting the clients left costs a pass over all of them: only while stopping.)
            if self.phase.stopping()
                && self
                    .phase
                    .reading_done(now, self.conns.undrained() + self.udp_undrained())
            {
                return Ok(self.finish());
            }
            self.sink.flush(now, self.poll.registry());
        }
    }

    /// The turn's reading: the UDP socket and the TCP clients, in turns going first (of the
    /// turns that have room: the one read first may fill the sink and leave the other none).
    fn serve_inputs(&mut self) {
        if self.sink.has_room() {
            self.udp_first = !self.udp_first;
        }
        if self.udp_first {
            self.serve_udp();
            self.serve_ready_clients();
        } else {
            self.serve_ready_clients();
            self.serve_udp();
        }
    }

    fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        if (self.conns.has_ready() && self.sink.has_room()) || self.udp_has_work() {
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

    /// Takes back what the previous process handed to systemd's file descriptor store
    /// ([`handoff::take_back`]), and says what it found.
    fn take_back(&mut self, carried: Carried) {
        let parts = handoff_parts!(self);
        for (priority, text) in handoff::take_back(parts, carried) {
            self.announce(priority, &text);
        }
        self.counters.connections_carried = self.conns.len() as u64;
    }
}

/// What logging a syslog message takes besides the sink and the text buffer.
struct SyslogLog {
    /// Its SYSLOG_* fields (reused from message to message).
    fields: JournalFields,
    /// `max_remote_severity`, `remote_identifier_prefix`.
    remote: Remote,
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::net::{SocketAddr, TcpStream as StdStream};
    use std::path::Path;
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
}
