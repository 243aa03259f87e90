//! One client connection: its stream, the framer that cuts what it sends into lines, and its
//! counters (the line budget it spends from is its source's, see `source.rs`); and
//! [`Connections`], every client the loop serves, with the queue of those that may have data
//! and the clients parked until their source has budget again.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::{self, Read};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use slab::Slab;

use crate::config::{Config, Framing, RateLimitAction};
use crate::entry::{peer_label, text_room, Peer, TlsFields, Totals};
use crate::fdstore::ConnectionState;
use crate::framing::{Frame, Framer};
use crate::ratelimit::TokenBucket;
use crate::syslog_message::{parse, Header, Sticky};
use crate::throttle::Throttle;
use crate::tls::{Session, TlsRead};

/// Dropped lines of one client are reported at most once per this interval.
pub const DROP_REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// What one read from a client gave.
#[derive(Debug)]
pub enum ReadOutcome {
    /// This many bytes, now in the buffer.
    Data(usize),
    /// The client closed its side.
    Closed,
    /// Nothing more for now.
    WouldBlock,
    Interrupted,
    Failed(io::Error),
    /// A TLS handshake finished just now: the client's identity is known.
    Established,
    /// A TLS handshake failed (or the client is not TLS): the refusal reason.
    Refused(String),
}

/// A line (or piece of one) of a client, ready to be logged.
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    pub label: &'a str,
    pub peer: Peer,
    /// The connection's lines counted from 1 (`LINE_NUMBER`): every piece of a line has it.
    pub number: u64,
    pub frame: Frame<'a>,
    /// The connection's TLS fields, for a TLS client.
    pub tls: Option<&'a TlsFields>,
    /// For a piece cut by syslog framing: its message's header (a piece after the first
    /// carries the first one's, see [`Sticky`]).
    pub header: Option<Header<'a>>,
}

/// Lines of one framing step (a line logged in pieces counts once, when its first piece is):
/// logged, and dropped by the rate limit.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FrameCounts {
    pub logged: u64,
    pub dropped: u64,
}

/// Lines dropped by the rate limit and not yet reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DropReport {
    pub count: u64,
    /// Dropped over the whole connection.
    pub total: u64,
}

pub struct Connection {
    stream: TcpStream,
    pub peer: Peer,
    /// The peer as shown in messages.
    pub label: String,
    framer: Framer,
    /// What the pieces after the first of a long syslog message take from the first one's
    /// header; boxed and made only when a syslog message is cut into pieces, so an idle
    /// connection does not pay for it.
    sticky: Option<Box<Sticky>>,
    /// The line in progress is being dropped (its first piece was over the limit).
    dropping_line: bool,
    opened: Instant,
    last_active: Instant,
    bytes: u64,
    lines: u64,
    dropped: u64,
    drop_reports: Throttle,
    /// In the ready queue (or parked): it may have data not read yet.
    queued: bool,
    /// Parked until its source has budget again.
    parked: bool,
    /// Set when the daemon stops: bytes the kernel had received and the daemon must still
    /// read before it closes the connection.
    stop_quota: Option<u64>,
    /// The daemon is stopping and has read all it could: it waits to be handed over.
    drained: bool,
    /// A TLS client's session (boxed: a plain connection stays small).
    tls: Option<Box<Session>>,
}

/// The zone of a link-local IPv6 peer (0 for any other).
fn scope_of(addr: SocketAddr) -> u32 {
    match addr {
        SocketAddr::V6(v6) => v6.scope_id(),
        SocketAddr::V4(_) => 0,
    }
}

impl Connection {
    pub fn new(
        stream: TcpStream,
        addr: SocketAddr,
        connection_id: u64,
        config: &Config,
        now: Instant,
    ) -> Connection {
        let addr = crate::entry::canonical(addr);
        let label = peer_label(addr);
        Connection {
            stream,
            peer: Peer {
                addr,
                connection_id,
            },
            framer: Framer::new(config.framing, text_room(config.max_line_length, &label)),
            label,
            sticky: None,
            dropping_line: false,
            opened: now,
            last_active: now,
            bytes: 0,
            lines: 0,
            dropped: 0,
            drop_reports: Throttle::new(0, DROP_REPORT_INTERVAL),
            queued: false,
            parked: false,
            stop_quota: None,
            drained: false,
            tls: None,
        }
    }

    /// Makes this a TLS connection: what it sends is read through `session`.
    pub fn start_tls(&mut self, session: Session) {
        self.tls = Some(Box::new(session));
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// A TLS client whose handshake is not over yet.
    pub fn handshaking(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.handshaking())
    }

    /// A TLS handshake still in progress at its deadline.
    pub fn handshake_overdue(&self, now: Instant) -> bool {
        self.tls
            .as_ref()
            .and_then(|t| t.deadline)
            .is_some_and(|d| now >= d)
    }

    /// The fields every entry of a TLS connection carries.
    pub fn tls_fields(&self) -> Option<&TlsFields> {
        self.tls.as_ref().and_then(|t| t.fields())
    }

    /// A TLS client's certificate names (lowercase), for `tls.allow_names`.
    pub fn tls_names(&self) -> &[String] {
        self.tls.as_ref().map_or(&[], |t| t.names())
    }

    /// Before the socket closes: a TLS session answers the client's close_notify (and sends
    /// none when the daemon closes first: see `Session::close`).
    pub fn shutdown(&mut self) {
        if let Some(tls) = &mut self.tls {
            tls.close(&mut self.stream);
        }
    }

    /// A connection carried over from the previous process (systemd's file descriptor store),
    /// going on from its saved state under the configuration in force now. A state that
    /// cannot be used gives the stream back, with the reason.
    pub fn restore(
        stream: TcpStream,
        saved: &ConnectionState,
        config: &Config,
        now: Instant,
    ) -> Result<Connection, (TcpStream, String)> {
        // The state's peer must be the socket's: it is what every entry names.
        let actual = stream.peer_addr().map(crate::entry::canonical);
        let same = actual.as_ref().is_ok_and(|a| {
            a.ip() == saved.peer.ip()
                && a.port() == saved.peer.port()
                && scope_of(*a) == scope_of(saved.peer)
        });
        if !same {
            let actual = actual.map_or_else(|e| e.to_string(), |a| a.to_string());
            return Err((
                stream,
                format!(
                    "the state names {} as its peer, the socket {actual}",
                    saved.peer
                ),
            ));
        }
        let sticky = match saved.sticky.as_deref().map(Sticky::restore) {
            None => None,
            Some(Some(sticky)) => Some(Box::new(sticky)),
            Some(None) => return Err((stream, "a syslog header that cannot be".into())),
        };
        let mut conn = Connection::new(stream, saved.peer, saved.id, config, now);
        let room = text_room(config.max_line_length, &conn.label);
        conn.framer = match Framer::restore(saved.framer.clone(), room) {
            Ok(framer) => framer,
            Err(why) => return Err((conn.stream, why)),
        };
        conn.framer.reconfigure(config.framing, room);
        conn.sticky = sticky;
        conn.dropping_line = saved.dropping_line;
        conn.opened = now.checked_sub(saved.age).unwrap_or(now);
        conn.last_active = now.checked_sub(saved.idle).unwrap_or(now);
        conn.bytes = saved.bytes;
        conn.lines = saved.lines;
        conn.dropped = saved.dropped;
        conn.drop_reports.count(now, saved.unreported_drops);
        Ok(conn)
    }

    /// What this connection needs to go on in another process.
    pub fn save(&self, now: Instant) -> ConnectionState {
        ConnectionState {
            id: self.peer.connection_id,
            peer: self.peer.addr,
            age: now.duration_since(self.opened),
            idle: now.duration_since(self.last_active),
            bytes: self.bytes,
            lines: self.lines,
            dropped: self.dropped,
            unreported_drops: self.drop_reports.pending(),
            dropping_line: self.dropping_line,
            framer: self.framer.save(),
            sticky: self.sticky.as_ref().map(|s| s.save()),
        }
    }

    /// The socket, to hand it to the file descriptor store.
    pub fn socket(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }

    /// Bytes of an unfinished line (or frame) held.
    pub fn unfinished(&self) -> usize {
        self.framer.buffered()
    }

    /// The daemon is handing this connection to the next process: its unfinished line, if
    /// any (and not the rest of a line being dropped), goes to `log` as a partial line now
    /// (so that a plain stop loses nothing), as [`Connection::finish`] would log it, and is
    /// kept: if the next process takes the connection back, it logs the whole line under the
    /// same line number. Returns how many lines it began (0 or 1: 0 if pieces of the line
    /// were logged already).
    pub fn log_carried(&self, log: impl FnMut(Line<'_>)) -> u64 {
        let origin = Origin {
            label: &self.label,
            peer: self.peer,
            tls: self.tls_fields(),
        };
        let (mut framer, mut sticky, mut lines) =
            (self.framer.clone(), self.sticky.clone(), self.lines);
        finish_line(
            &mut framer,
            &mut sticky,
            self.dropping_line,
            &mut lines,
            origin,
            log,
        )
    }

    /// The daemon is stopping and this client has nothing more to read: it waits to be
    /// handed over.
    pub fn set_drained(&mut self) {
        self.drained = true;
    }

    pub fn is_drained(&self) -> bool {
        self.drained
    }

    /// Reads once into `buf` (a TLS client: its plaintext, moving the handshake on first).
    pub fn read(&mut self, buf: &mut [u8], now: Instant) -> ReadOutcome {
        if let Some(tls) = &mut self.tls {
            let mut raw = 0;
            let outcome = tls.read(&mut self.stream, buf, &mut raw);
            if raw > 0 {
                self.last_active = now;
            }
            if let Some(quota) = &mut self.stop_quota {
                *quota = quota.saturating_sub(raw);
            }
            return match outcome {
                TlsRead::Data(n) => {
                    self.bytes += n as u64;
                    ReadOutcome::Data(n)
                }
                TlsRead::Established => ReadOutcome::Established,
                TlsRead::Closed => ReadOutcome::Closed,
                TlsRead::WouldBlock => ReadOutcome::WouldBlock,
                TlsRead::Refused(why) => ReadOutcome::Refused(why),
                TlsRead::Failed(e) => ReadOutcome::Failed(e),
            };
        }
        match self.stream.read(buf) {
            Ok(0) => ReadOutcome::Closed,
            Ok(n) => {
                self.bytes += n as u64;
                self.last_active = now;
                if let Some(quota) = &mut self.stop_quota {
                    *quota = quota.saturating_sub(n as u64);
                }
                ReadOutcome::Data(n)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => ReadOutcome::WouldBlock,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => ReadOutcome::Interrupted,
            Err(e) => ReadOutcome::Failed(e),
        }
    }

    /// The daemon is stopping: notes what the kernel has received for this client so far
    /// (FIONREAD), which the stop must read at least.
    pub fn begin_stop(&mut self) {
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD writes one c_int.
        let rc = unsafe { libc::ioctl(self.stream.as_raw_fd(), libc::FIONREAD, &mut n) };
        self.stop_quota = Some(if rc == 0 { n.max(0) as u64 } else { 0 });
    }

    /// Makes the close a reset (SO_LINGER 0): for a connection closed with bytes it sent not
    /// logged, so that its sender learns of it rather than reading a plain end of file.
    pub fn reset_on_close(&self) {
        let _ = socket2::SockRef::from(&self.stream).set_linger(Some(Duration::ZERO));
    }

    /// Bytes of those not read yet, once the daemon is stopping.
    pub fn stop_quota(&self) -> Option<u64> {
        self.stop_quota
    }

    /// Reads the rest of the stop quota without logging it (the stop ran out of time): the
    /// bytes, and how many line ends they held.
    pub fn discard_quota(&mut self, buf: &mut [u8]) -> (u64, u64) {
        let (mut bytes, mut line_ends) = (0, 0);
        while let Some(quota) = self.stop_quota.filter(|&q| q > 0) {
            let len = buf.len().min(quota.try_into().unwrap_or(usize::MAX));
            match self.stream.read(&mut buf[..len]) {
                Ok(n) if n > 0 => {
                    bytes += n as u64;
                    // A TLS client's bytes are encrypted: its line ends cannot be counted.
                    if self.tls.is_none() {
                        line_ends += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
                    }
                    self.stop_quota = Some(quota - n as u64);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                _ => {
                    // What the kernel no longer has (a reset) cannot be counted as read.
                    bytes += quota;
                    break;
                }
            }
        }
        (bytes, line_ends)
    }

    /// Cuts bytes just read into lines and hands them to `log`, spending a token of the
    /// source's `budget` per line and numbering the lines (the pieces of a long line count as
    /// one and share its number; `LINE_PART` tells them apart). Over the budget,
    /// `Throttle` logs the line anyway and leaves the budget in debt (the loop then parks the
    /// source's clients until it is paid); `Drop` drops and counts the line.
    pub fn frame(
        &mut self,
        data: &[u8],
        now: Instant,
        budget: &mut TokenBucket,
        action: RateLimitAction,
        mut log: impl FnMut(Line<'_>),
    ) -> FrameCounts {
        let Connection {
            framer,
            sticky,
            dropping_line,
            label,
            peer,
            lines,
            dropped,
            drop_reports,
            tls,
            ..
        } = self;
        let origin = Origin {
            label,
            peer: *peer,
            tls: tls.as_deref().and_then(Session::fields),
        };
        let mut counts = FrameCounts::default();
        framer.push(data, |frame| {
            if frame.part <= 1 {
                *dropping_line = match action {
                    RateLimitAction::Throttle => {
                        budget.take(now);
                        false
                    }
                    RateLimitAction::Drop => !budget.try_take(now),
                };
                counts.dropped += u64::from(*dropping_line);
            }
            if !*dropping_line {
                // A line's number is taken by its first piece; the others share it.
                if frame.part <= 1 {
                    *lines += 1;
                    counts.logged += 1;
                }
                log(origin.line(*lines, sticky, frame));
            }
        });
        *dropped += counts.dropped;
        drop_reports.count(now, counts.dropped);
        counts
    }

    /// The line in progress, if any, as a partial line: the connection is ending. Returns how
    /// many lines it began, as [`Connection::log_carried`].
    pub fn finish(&mut self, log: impl FnMut(Line<'_>)) -> u64 {
        let Connection {
            framer,
            sticky,
            dropping_line,
            label,
            peer,
            lines,
            tls,
            ..
        } = self;
        let origin = Origin {
            label,
            peer: *peer,
            tls: tls.as_deref().and_then(Session::fields),
        };
        finish_line(framer, sticky, *dropping_line, lines, origin, log)
    }

    /// Dropped lines to report now: once per [`DROP_REPORT_INTERVAL`], or all of them when
    /// the connection ends (`ending`).
    pub fn drop_report(&mut self, now: Instant, ending: bool) -> Option<DropReport> {
        let count = if ending {
            self.drop_reports.take()
        } else {
            self.drop_reports.close_expired(now)
        }?;
        Some(DropReport {
            count,
            total: self.dropped,
        })
    }

    /// Takes the framing and line limit of a new configuration; the line in progress
    /// carries over.
    pub fn reconfigure(&mut self, config: &Config) {
        let room = text_room(config.max_line_length, &self.label);
        self.framer.reconfigure(config.framing, room);
    }

    /// Silent for at least `limit`, with nothing waiting to be read.
    pub fn idle(&self, now: Instant, limit: Duration) -> bool {
        !self.queued && now.duration_since(self.last_active) >= limit
    }

    pub fn totals(&self, now: Instant) -> Totals {
        Totals {
            bytes: self.bytes,
            lines: self.lines,
            duration: now.duration_since(self.opened),
        }
    }
}

/// Who a connection's lines come from: what each of its [`Line`]s carries besides the frame.
#[derive(Clone, Copy)]
struct Origin<'a> {
    label: &'a str,
    peer: Peer,
    tls: Option<&'a TlsFields>,
}

impl<'a> Origin<'a> {
    /// Line `number`, with its syslog header if the framing has one.
    fn line(self, number: u64, sticky: &'a mut Option<Box<Sticky>>, frame: Frame<'a>) -> Line<'a> {
        Line {
            label: self.label,
            peer: self.peer,
            number,
            header: syslog_header(sticky, &frame),
            frame,
            tls: self.tls,
        }
    }
}

/// Hands the line in progress, if any, to `log` as a partial line: numbered after `lines` if
/// none of it was logged yet, else under its own number; what is left of a line being dropped
/// (`dropping_line`, a piece after the first) stays dropped. Returns how many lines it began
/// (0 or 1).
fn finish_line(
    framer: &mut Framer,
    sticky: &mut Option<Box<Sticky>>,
    dropping_line: bool,
    lines: &mut u64,
    origin: Origin<'_>,
    mut log: impl FnMut(Line<'_>),
) -> u64 {
    let mut logged = 0;
    framer.finish(|frame| {
        if dropping_line && frame.part > 1 {
            return;
        }
        // The last pieces of a line begun already keep its number and count nothing.
        if frame.part <= 1 {
            *lines += 1;
            logged += 1;
        }
        log(origin.line(*lines, sticky, frame));
    });
    logged
}

/// The header of a piece cut by syslog framing (`None` for other framings): parsed from a
/// whole message or a first piece, which is remembered for the pieces after it; those take
/// the first one's.
fn syslog_header<'a>(sticky: &'a mut Option<Box<Sticky>>, frame: &Frame<'a>) -> Option<Header<'a>> {
    if frame.framing != Framing::Syslog {
        return None;
    }
    if frame.part <= 1 {
        let header = parse(frame.bytes);
        if frame.part == 1 {
            sticky.get_or_insert_with(Box::default).remember(&header);
        }
        return Some(header);
    }
    Some(
        sticky
            .get_or_insert_with(Box::default)
            .continuation(frame.bytes),
    )
}

/// Every client, by key (its poll token), the queue of those that may have data, and those
/// parked until a time (their source is over its line budget).
#[derive(Default)]
pub struct Connections {
    slab: Slab<Connection>,
    ready: VecDeque<usize>,
    parked: BinaryHeap<Reverse<(Instant, usize)>>,
}

impl Connections {
    pub fn len(&self) -> usize {
        self.slab.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    /// Adds a client, watched for readable events and queued at once: it may have sent
    /// everything and closed already (like the classroom client). A TLS client is watched for
    /// writability too: a handshake message that did not fit in the socket buffer goes out
    /// when there is room.
    pub fn insert(&mut self, mut conn: Connection, registry: &Registry) -> io::Result<usize> {
        let entry = self.slab.vacant_entry();
        let key = entry.key();
        let interest = if conn.is_tls() {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        registry.register(&mut conn.stream, Token(key), interest)?;
        conn.queued = true;
        entry.insert(conn);
        self.ready.push_back(key);
        Ok(key)
    }

    /// The connection of a poll token, if it is one of ours.
    pub fn key_of(&self, token: Token) -> Option<usize> {
        self.slab.contains(token.0).then_some(token.0)
    }

    /// A readable event: queue the client unless it is queued already.
    pub fn mark_ready(&mut self, key: usize) {
        if let Some(conn) = self.slab.get_mut(key) {
            if !conn.queued {
                conn.queued = true;
                self.ready.push_back(key);
            }
        }
    }

    /// Queues every client (to read each until it has nothing more).
    pub fn mark_all_ready(&mut self) {
        let keys: Vec<usize> = self.slab.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.mark_ready(key);
        }
    }

    /// Clients not yet read to the end at a stop.
    pub fn undrained(&self) -> usize {
        self.slab.iter().filter(|(_, c)| !c.drained).count()
    }

    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// The next client to read, out of the queue; [`Connections::requeue`] puts it back.
    pub fn next_ready(&mut self) -> Option<usize> {
        while let Some(key) = self.ready.pop_front() {
            if let Some(conn) = self.slab.get_mut(key) {
                conn.queued = false;
                return Some(key);
            }
        }
        None
    }

    /// Back to the end of the queue: it may have more.
    pub fn requeue(&mut self, key: usize) {
        self.mark_ready(key);
    }

    /// Not read again before `until` (readable events meanwhile change nothing).
    pub fn park(&mut self, key: usize, until: Instant) {
        if let Some(conn) = self.slab.get_mut(key) {
            conn.queued = true;
            conn.parked = true;
            self.parked.push(Reverse((until, key)));
        }
    }

    /// Queues the parked clients whose time has come.
    pub fn unpark_due(&mut self, now: Instant) {
        while let Some(&Reverse((until, key))) = self.parked.peek() {
            if until > now {
                return;
            }
            self.parked.pop();
            if let Some(conn) = self.slab.get_mut(key).filter(|c| c.parked) {
                conn.parked = false;
                self.ready.push_back(key);
            }
        }
    }

    /// Queues every parked client at once (the daemon is stopping).
    pub fn unpark_all(&mut self) {
        while let Some(Reverse((_, key))) = self.parked.pop() {
            if let Some(conn) = self.slab.get_mut(key).filter(|c| c.parked) {
                conn.parked = false;
                self.ready.push_back(key);
            }
        }
    }

    /// When the next parked client may be read.
    pub fn next_unpark(&self) -> Option<Instant> {
        self.parked.peek().map(|Reverse((until, _))| *until)
    }

    pub fn get_mut(&mut self, key: usize) -> Option<&mut Connection> {
        self.slab.get_mut(key)
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (usize, &mut Connection)> {
        self.slab.iter_mut()
    }

    /// The keys of the clients `select` picks.
    pub fn keys_where(&self, select: impl Fn(&Connection) -> bool) -> Vec<usize> {
        self.slab
            .iter()
            .filter(|(_, c)| select(c))
            .map(|(k, _)| k)
            .collect()
    }

    /// Removes a client from the loop; dropping the result closes the connection.
    pub fn remove(&mut self, key: usize, registry: &Registry) -> Option<Connection> {
        let mut conn = self.slab.try_remove(key)?;
        let _ = registry.deregister(&mut conn.stream);
        Some(conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn pair() -> (std::net::TcpStream, TcpStream, SocketAddr) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (server, addr) = l.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        (client, TcpStream::from_std(server), addr)
    }

    fn config(extra: &str) -> Config {
        Config::parse(extra, std::path::Path::new("t.toml")).unwrap()
    }

    /// Reads until the client's bytes have all arrived.
    fn read_all(conn: &mut Connection, want: usize, now: Instant) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = [0; 64];
        let deadline = Instant::now() + Duration::from_secs(5);
        while got.len() < want {
            assert!(Instant::now() < deadline, "only {got:?}");
            match conn.read(&mut buf, now) {
                ReadOutcome::Data(n) => got.extend_from_slice(&buf[..n]),
                ReadOutcome::WouldBlock | ReadOutcome::Interrupted => std::thread::yield_now(),
                other => panic!("{other:?}"),
            }
        }
        got
    }

    #[test]
    fn reads_frames_and_numbers_lines_and_sees_the_close() {
        let (mut client, stream, addr) = pair();
        let now = Instant::now();
        let mut conn = Connection::new(stream, addr, 7, &config(""), now);
        assert_eq!(conn.label, addr.to_string());
        client.write_all(b"one\ntwo\nthr").unwrap();
        let data = read_all(&mut conn, 11, now);
        let mut lines = Vec::new();
        let mut budget = TokenBucket::new(0, 0, now);
        let counts = conn.frame(&data, now, &mut budget, RateLimitAction::Drop, |l| {
            lines.push((l.number, l.peer.connection_id, l.frame.bytes.to_vec()))
        });
        assert_eq!(
            counts,
            FrameCounts {
                logged: 2,
                dropped: 0
            }
        );
        assert_eq!(lines, [(1, 7, b"one".to_vec()), (2, 7, b"two".to_vec())]);
        drop(client);
        let mut buf = [0; 16];
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match conn.read(&mut buf, now) {
                ReadOutcome::Closed => break,
                ReadOutcome::WouldBlock => assert!(Instant::now() < deadline),
                other => panic!("{other:?}"),
            }
        }
        let mut partial = Vec::new();
        assert_eq!(
            conn.finish(|l| partial.push((l.number, l.frame.partial))),
            1
        );
        assert_eq!(partial, [(3, true)]);
        let totals = conn.totals(now);
        assert_eq!((totals.bytes, totals.lines), (11, 3));
    }

    #[test]
    fn lines_over_the_budget_are_dropped_counted_and_reported_once_a_second() {
        let (_client, stream, addr) = pair();
        let t0 = Instant::now();
        let mut conn = Connection::new(stream, addr, 1, &config(""), t0);
        let mut budget = TokenBucket::new(1, 2, t0);
        let drop = RateLimitAction::Drop;
        let counts = conn.frame(b"a\nb\nc\nd\ne\n", t0, &mut budget, drop, |_| {});
        assert_eq!(
            counts,
            FrameCounts {
                logged: 2,
                dropped: 3
            }
        );
        assert_eq!(conn.drop_report(t0, false), None, "not a second yet");
        let t1 = t0 + DROP_REPORT_INTERVAL;
        assert_eq!(
            conn.drop_report(t1, false),
            Some(DropReport { count: 3, total: 3 })
        );
        assert_eq!(conn.drop_report(t1, false), None);
        // One token came back in that second; the next two lines: one logged, one dropped,
        // reported at the end whatever the time.
        conn.frame(b"f\ng\n", t1, &mut budget, drop, |_| {});
        assert_eq!(
            conn.drop_report(t1, true),
            Some(DropReport { count: 1, total: 4 })
        );
    }

    #[test]
    fn the_pieces_of_a_long_line_count_as_one_line() {
        let (_client, stream, addr) = pair();
        let t0 = Instant::now();
        let mut conn = Connection::new(stream, addr, 1, &config("max_line_length = 4"), t0);
        let mut budget = TokenBucket::new(1, 1, t0);
        let mut logged = Vec::new();
        let drop = RateLimitAction::Drop;
        // The first line (3 pieces) takes the only token; the second is dropped whole.
        let counts = conn.frame(b"aaaabbbbcc\ndddd", t0, &mut budget, drop, |l| {
            logged.push(l.frame.bytes.to_vec())
        });
        let later = conn.frame(b"eeeeff", t0, &mut budget, drop, |l| {
            logged.push(l.frame.bytes.to_vec())
        });
        conn.finish(|l| logged.push(l.frame.bytes.to_vec()));
        assert_eq!(logged, [b"aaaa".to_vec(), b"bbbb".to_vec(), b"cc".to_vec()]);
        assert_eq!(counts.dropped + later.dropped, 1);
        assert_eq!(conn.drop_report(t0, true).unwrap().count, 1);
    }

    #[test]
    fn the_pieces_of_a_line_share_its_line_number_and_lines_are_counted_once() {
        // Issue 17: a line in 4 pieces was LINE_NUMBER 1 to 4 and the next one 5.
        // (In syslog framing the third starts with `<` too: the LF before it is then sure to
        // end a message, as the sender's terminator is not known yet.)
        for (framing, long, next, third) in [
            (
                "line",
                &b"aaaabbbbccccdd\n"[..],
                &b"next\n"[..],
                &b"eeeeffffg"[..],
            ),
            ("syslog", b"14 aaaabbbbccccdd", b"<13>next\n", b"<1>eeeeff"),
        ] {
            let (_client, stream, addr) = pair();
            let t0 = Instant::now();
            let cfg = config(&format!("framing = \"{framing}\"\nmax_line_length = 4"));
            let mut conn = Connection::new(stream, addr, 1, &cfg, t0);
            let mut budget = TokenBucket::new(0, 0, t0);
            let mut got = Vec::new();
            let stream = [long, next, third].concat();
            let counts = conn.frame(&stream, t0, &mut budget, RateLimitAction::Drop, |l| {
                got.push((l.number, l.frame.part))
            });
            // Three lines begun: the third's first two pieces are logged, its last one at the end.
            assert_eq!(counts.logged, 3, "{framing}: {counts:?}");
            assert_eq!(conn.finish(|l| got.push((l.number, l.frame.part))), 0);
            let mut want = vec![(1, 1), (1, 2), (1, 3), (1, 4)];
            if framing == "line" {
                want.push((2, 0));
            } else {
                want.extend([(2, 1), (2, 2)]); // `<13>`, `next`
            }
            want.extend([(3, 1), (3, 2), (3, 3)]);
            assert_eq!(got, want, "{framing}");
            assert_eq!(
                conn.totals(t0).lines,
                3,
                "{framing}: LINES_LOGGED counts lines"
            );
        }
    }

    #[test]
    fn a_line_carried_over_keeps_its_line_number_in_the_next_process() {
        let (_client, stream, addr) = pair();
        let t0 = Instant::now();
        let cfg = config("max_line_length = 4");
        let mut conn = Connection::new(stream, addr, 1, &cfg, t0);
        let mut budget = TokenBucket::new(0, 0, t0);
        let mut got = Vec::new();
        let throttle = RateLimitAction::Throttle;
        conn.frame(b"one\naaaabbbbcc", t0, &mut budget, throttle, |l| {
            got.push((l.number, l.frame.part, l.frame.partial))
        });
        // At the stop: what is held of line 2 is logged as its last piece, partial.
        assert_eq!(
            conn.log_carried(|l| got.push((l.number, l.frame.part, l.frame.partial))),
            0
        );
        assert_eq!(
            got,
            [(1, 0, false), (2, 1, false), (2, 2, false), (2, 3, true)]
        );
        // The next process goes on with the same line: its pieces keep its number.
        let state = crate::fdstore::State {
            connections: vec![conn.save(t0)],
            ..Default::default()
        };
        let state = crate::fdstore::State::decode(&state.encode()).unwrap();
        // (Another socket pair stands for the same connection: the state names its peer.)
        let (_client2, stream2, addr2) = pair();
        let mut saved = state.connections[0].clone();
        saved.peer = addr2;
        let mut next = Connection::restore(stream2, &saved, &cfg, t0)
            .map_err(|(_, why)| why)
            .unwrap();
        got.clear();
        let counts = next.frame(b"ccdd\nthree\n", t0, &mut budget, throttle, |l| {
            got.push((l.number, l.frame.part, l.frame.partial))
        });
        assert_eq!(
            got,
            [(2, 3, false), (2, 4, false), (3, 1, false), (3, 2, false)]
        );
        assert_eq!(counts.logged, 1, "line 2 was counted when it began");
        assert_eq!(next.totals(t0).lines, 3);
    }

    /// Issue 17 item 7: the peer a state names must be the socket's (it is what every entry
    /// of the connection names); another is refused and the connection served as new.
    #[test]
    fn a_carried_connection_whose_state_names_another_peer_is_refused() {
        let t0 = Instant::now();
        let (_client, stream, addr) = pair();
        let mut saved = Connection::new(stream, addr, 1, &config(""), t0).save(t0);
        saved.peer = "192.0.2.7:4000".parse().unwrap();
        let (_client2, stream2, addr2) = pair();
        let why = Connection::restore(stream2, &saved, &config(""), t0)
            .map(|_| ())
            .map_err(|(_, why)| why)
            .unwrap_err();
        assert_eq!(
            why,
            format!("the state names 192.0.2.7:4000 as its peer, the socket {addr2}")
        );
    }

    #[test]
    fn a_line_begun_after_a_dropped_one_is_carried_over_and_finished_like_any_other() {
        let (_client, stream, addr) = pair();
        let t0 = Instant::now();
        let mut conn = Connection::new(stream, addr, 1, &config(""), t0);
        let mut budget = TokenBucket::new(1, 1, t0);
        let drop = RateLimitAction::Drop;
        // `a` takes the only token, `b` is dropped, `c` is unfinished: not dropped (it has
        // not asked the budget yet), so it is logged as partial like any unfinished line.
        let counts = conn.frame(b"a\nb\nc", t0, &mut budget, drop, |_| {});
        assert_eq!((counts.logged, counts.dropped), (1, 1));
        let mut carried = Vec::new();
        let n = conn.log_carried(|l| carried.push((l.number, l.frame.bytes.to_vec())));
        assert_eq!((n, carried), (1, vec![(2, b"c".to_vec())]));
        let mut finished = Vec::new();
        let n = conn.finish(|l| finished.push((l.number, l.frame.bytes.to_vec())));
        assert_eq!((n, finished), (1, vec![(2, b"c".to_vec())]));
    }

    #[test]
    fn the_rest_of_a_dropped_long_line_is_neither_carried_over_nor_finished() {
        let (_client, stream, addr) = pair();
        let t0 = Instant::now();
        let mut conn = Connection::new(stream, addr, 1, &config("max_line_length = 4"), t0);
        let mut budget = TokenBucket::new(1, 1, t0);
        let drop = RateLimitAction::Drop;
        // `aaaa` takes the only token; `bbbb` (a first piece) is dropped, and so is its rest.
        conn.frame(b"aaaa\nbbbbcc", t0, &mut budget, drop, |_| {});
        assert_eq!(conn.log_carried(|l| panic!("carried {l:?}")), 0);
        assert_eq!(conn.finish(|l| panic!("finished {l:?}")), 0);
    }

    #[test]
    fn a_long_syslog_message_is_one_line_of_the_budget_and_its_pieces_carry_its_header() {
        let (_client, stream, addr) = pair();
        let t0 = Instant::now();
        // 127.0.0.1:PORT: leaves 59 - 17 = 42 bytes: 30 for the text of a piece followed by
        // more, 42 for the last; 3 less (` vm`) for the pieces after the first.
        let config = config("framing = \"syslog\"\nmax_line_length = 59");
        let mut conn = Connection::new(stream, addr, 1, &config, t0);
        assert_eq!(conn.label.len(), 15, "an ephemeral port has 5 digits");
        let mut budget = TokenBucket::new(1, 1, t0);
        let mut logged = Vec::new();
        let first = b"<131>1 - vm nas 42 - - disk failing badly, and more text follows";
        let second = b"<14>1 - vm app - - - dropped";
        let stream = [
            format!("{} ", first.len()).as_bytes(),
            first,
            format!("{} ", second.len()).as_bytes(),
            second,
        ]
        .concat();
        let counts = conn.frame(&stream, t0, &mut budget, RateLimitAction::Drop, |l| {
            let h = l.header.expect("a syslog piece has a header");
            let app = String::from_utf8_lossy(h.app_name.unwrap_or(b"-")).into_owned();
            let host = String::from_utf8_lossy(h.hostname.unwrap_or(b"-")).into_owned();
            logged.push((
                l.frame.bytes.to_vec(),
                l.frame.part,
                app,
                host,
                h.priority(6),
            ));
        });
        assert_eq!(
            counts.dropped, 1,
            "the second message: the only token went to the first"
        );
        let sizes: Vec<usize> = logged.iter().map(|p| p.0.len()).collect();
        assert_eq!(sizes, [30, 34], "the last piece holds 42 - 3 at most");
        assert_eq!(
            logged.iter().flat_map(|p| p.0.clone()).collect::<Vec<u8>>(),
            first
        );
        for (i, (_, part, app, host, priority)) in logged.iter().enumerate() {
            assert_eq!(*part, i as u32 + 1);
            assert_eq!(
                (&app[..], &host[..], *priority),
                ("nas", "vm", 3),
                "piece {part}"
            );
        }
    }

    #[test]
    fn throttled_lines_are_logged_and_put_the_budget_in_debt() {
        let (_client, stream, addr) = pair();
        let t0 = Instant::now();
        let mut conn = Connection::new(stream, addr, 1, &config(""), t0);
        let mut budget = TokenBucket::new(10, 2, t0);
        let counts = conn.frame(
            b"1\n2\n3\n4\n5\n",
            t0,
            &mut budget,
            RateLimitAction::Throttle,
            |_| {},
        );
        assert_eq!(
            counts,
            FrameCounts {
                logged: 5,
                dropped: 0
            }
        );
        // 3 in debt and one more needed: 0.4 s at 10 lines/s.
        assert_eq!(budget.ready_at(t0), Some(t0 + Duration::from_millis(400)));
    }

    #[test]
    fn parked_clients_wait_their_time_and_ignore_events_meanwhile() {
        let poll = mio::Poll::new().unwrap();
        let mut conns = Connections::default();
        let t0 = Instant::now();
        let mut keep = Vec::new();
        for id in 0..2 {
            let (client, stream, addr) = pair();
            keep.push(client);
            conns
                .insert(
                    Connection::new(stream, addr, id, &config(""), t0),
                    poll.registry(),
                )
                .unwrap();
        }
        assert_eq!(conns.next_ready(), Some(0));
        assert_eq!(conns.next_ready(), Some(1));
        conns.park(0, t0 + Duration::from_millis(300));
        conns.park(1, t0 + Duration::from_millis(100));
        conns.mark_ready(0);
        assert_eq!(
            conns.next_ready(),
            None,
            "parked: an event does not queue it"
        );
        assert_eq!(conns.next_unpark(), Some(t0 + Duration::from_millis(100)));
        conns.unpark_due(t0 + Duration::from_millis(100));
        assert_eq!(conns.next_ready(), Some(1));
        assert_eq!(conns.next_ready(), None);
        conns.unpark_all();
        assert_eq!(conns.next_ready(), Some(0));
        assert_eq!(conns.next_unpark(), None);
    }

    #[test]
    fn a_stop_counts_what_the_kernel_had_received() {
        let (mut client, stream, addr) = pair();
        let t0 = Instant::now();
        let mut conn = Connection::new(stream, addr, 1, &config(""), t0);
        client.write_all(b"before\nthe stop\n").unwrap();
        // Wait until the kernel has it all for the connection.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            conn.begin_stop();
            if conn.stop_quota() == Some(16) {
                break;
            }
            assert!(Instant::now() < deadline, "{:?}", conn.stop_quota());
            std::thread::yield_now();
        }
        let mut buf = [0; 64];
        assert!(matches!(conn.read(&mut buf, t0), ReadOutcome::Data(16)));
        assert_eq!(&buf[..16], b"before\nthe stop\n");
        assert_eq!(conn.stop_quota(), Some(0));
        // What did not fit in the time is counted by reading it without logging.
        let (mut client2, stream2, addr2) = pair();
        let mut late = Connection::new(stream2, addr2, 2, &config(""), t0);
        client2.write_all(b"a\nb\nc").unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while {
            late.begin_stop();
            late.stop_quota() != Some(5)
        } {
            assert!(Instant::now() < deadline);
            std::thread::yield_now();
        }
        assert_eq!(late.discard_quota(&mut buf), (5, 2));
    }

    #[test]
    fn the_ready_queue_holds_each_client_once() {
        let poll = mio::Poll::new().unwrap();
        let mut conns = Connections::default();
        let now = Instant::now();
        let mut keep = Vec::new();
        for id in 0..3 {
            let (client, stream, addr) = pair();
            keep.push(client);
            conns
                .insert(
                    Connection::new(stream, addr, id, &config(""), now),
                    poll.registry(),
                )
                .unwrap();
        }
        conns.mark_ready(1);
        conns.mark_all_ready();
        let order: Vec<usize> = std::iter::from_fn(|| conns.next_ready()).collect();
        assert_eq!(order, [0, 1, 2]);
        conns.requeue(2);
        conns.requeue(2);
        let removed = conns.remove(2, poll.registry()).unwrap();
        assert_eq!(removed.peer.connection_id, 2);
        assert_eq!(
            conns.next_ready(),
            None,
            "a removed client leaves the queue"
        );
        assert_eq!(conns.len(), 2);
        assert_eq!(conns.key_of(Token(1)), Some(1));
        assert_eq!(conns.key_of(Token(2)), None);
    }
}
