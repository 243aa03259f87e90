//! One client connection: its stream, the framer that cuts what it sends into lines, and its
//! counters (the line budget it spends from is its source's, see `source.rs`). Beside it:
//! [`Connections`] (`connection/queue.rs`), every client the loop serves, with the queue of
//! those that may have data and the clients parked until their source has budget again; and
//! what a connection carries over a restart (`connection/carry.rs`, [`ConnectionState`]).

use std::io::{self, Read};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use mio::net::TcpStream;

use crate::config::{Config, Framing, RateLimitAction};
use crate::entry::{peer_label, text_room, Peer, TlsFields, Totals};
use crate::framing::{Frame, Framer};
use crate::ratelimit::TokenBucket;
use crate::syslog_message::{parse, Header, Sticky};
use crate::throttle::Throttle;
use crate::tls::{Session, TlsRead};

mod carry;
mod queue;

pub use carry::ConnectionState;
pub use queue::Connections;

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
        let sender = Sender {
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
                log(sender.line(*lines, sticky, frame));
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
        let sender = Sender {
            label,
            peer: *peer,
            tls: tls.as_deref().and_then(Session::fields),
        };
        finish_line(framer, sticky, *dropping_line, lines, sender, log)
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

/// Who sent a connection's lines: what each of its [`Line`]s carries besides the frame.
#[derive(Clone, Copy)]
struct Sender<'a> {
    label: &'a str,
    peer: Peer,
    tls: Option<&'a TlsFields>,
}

impl<'a> Sender<'a> {
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
    sender: Sender<'_>,
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
        log(sender.line(*lines, sticky, frame));
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

#[cfg(test)]
pub(crate) mod tests;
