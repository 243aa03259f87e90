//! The syslog sink: RFC 3164 messages (formatted by the `syslog` crate's `Formatter3164`) to
//! the local `/dev/log`, or to a server over UDP or TCP. It never blocks the loop, and
//! follows the journald sink's design (`journald/delivery.rs`):
//!
//! - [`Delivery::log`] formats and queues; [`Delivery::flush`], called by the server at the
//!   end of every turn, sends what the socket takes without waiting: datagrams with
//!   sendmmsg(2), [`BATCH`] at a time; a stream with one sendmsg(2) of up to [`BATCH`] frames,
//!   a partly written frame resumed where it stopped. A full socket (EAGAIN) registers for a
//!   writable event and is retried; meanwhile [`Delivery::has_room`] says no once
//!   [`QUEUE_LIMIT`] entries wait, so the loop stops reading clients and TCP flow control slows
//!   them down: memory stays bounded.
//! - TCP frames are RFC 6587 *octet-counted* (`LEN SP MSG`): a receiver can split them
//!   whatever a message holds. rsyslog's imtcp detects this framing by itself (a frame that
//!   starts with a digit); so does syslog-ng's `syslog()` source. A stream `/dev/log` gets
//!   the message and a NUL byte, as glibc's syslog(3) writes it.
//! - A sent entry stays *in flight* until the server has certainly taken it (SIOCOUTQ: for
//!   TCP the bytes it has not acknowledged, for `/dev/log` those it has not read). When the
//!   connection fails, the in-flight entries are queued again, first, marked
//!   ` [redelivered]`. UDP says nothing of what arrives: a datagram is done once sent.
//! - A server that cannot be reached (connect refused or timed out, connection reset or
//!   closed) starts an outage: entries are held (the loop stops reading once
//!   [`QUEUE_LIMIT`] are queued), reconnects are tried after [`RETRY_INTERVAL`], doubling up to
//!   [`RETRY_MAX`], and once all is delivered again one notice says how long it lasted. A
//!   TCP connect is non-blocking and given up after [`CONNECT_TIMEOUT`].
//! - UDP errors other than a full buffer concern one datagram: it goes to stderr and is
//!   counted as undelivered. So does a datagram too large for `/dev/log`.
//! - [`Delivery::drain`] returns by its deadline: what is still queued, and for TCP what the
//!   server has not acknowledged, goes to stderr and is counted as undelivered; the TCP
//!   connection is then reset, so that none of it can arrive after all.
//!
//! The `syslog` crate's own senders (`syslog::tcp` and friends) are not used: they block, and
//! its TCP sender writes messages back to back without any framing.

pub mod socket;

use std::borrow::Cow;
use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use ::syslog::{Facility, Formatter3164, LogFormat, Severity};
use mio::{Registry, Token};

use super::{decimal_bytes, DeliveryStats};
use crate::config::SyslogServer;
use crate::entry::{priority, Entry};
pub use socket::{SyslogSocket, BATCH, DEV_LOG};

/// Where the local syslog socket should be, when `/dev/log` is meant and it does not exist,
/// the notice for falling back to stderr: no syslog daemon is there to come back (on a
/// systemd system the socket unit keeps `/dev/log` even while the daemon restarts), and
/// holding entries for it would stop every client for good. A remote server that cannot be
/// reached is held for and retried instead.
pub fn without_local_socket(server: &SyslogServer, dev_log: impl AsRef<Path>) -> Option<String> {
    let dev_log = dev_log.as_ref();
    (*server == SyslogServer::Local && !dev_log.exists()).then(|| {
        format!(
            "no syslog socket at {}: logging to stderr instead",
            dev_log.display()
        )
    })
}

/// The priority and the text of a message this sink formatted (`<PRI>… tcp-listener[PID]:
/// text`).
pub fn unformat(formatted: &[u8]) -> (u8, String) {
    let text = String::from_utf8_lossy(formatted);
    let priority = text
        .strip_prefix('<')
        .and_then(|rest| rest.split_once('>'))
        .and_then(|(pri, _)| pri.parse::<u8>().ok())
        .map_or(priority::INFO, |pri| pri & 7);
    let message = text
        .split_once("]: ")
        .map_or(text.as_ref(), |(_, message)| message)
        .to_string();
    (priority, message)
}

/// The syslog sink as the daemon uses it.
pub type SyslogSink = Delivery<SyslogSocket>;

/// Opens the syslog sink (connecting, or starting to), registering for writable events under
/// `token`.
pub fn open(server: &SyslogServer, token: Token, registry: &Registry) -> SyslogSink {
    Delivery::new(SyslogSocket::new(server, token), registry, Instant::now())
}

/// First wait before reconnecting to a server that cannot be reached; it doubles with each
/// failed attempt up to [`RETRY_MAX`].
pub const RETRY_INTERVAL: Duration = Duration::from_millis(250);
pub const RETRY_MAX: Duration = Duration::from_secs(4);
/// A TCP connect not done by then has failed.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How soon to retry a full socket even if no writable event arrives.
const FULL_QUEUE_RETRY: Duration = Duration::from_millis(50);
/// Entries queued at most before [`Delivery::has_room`] says no, as for journald: a
/// sendmmsg's (or a sendmsg's) worth.
pub const QUEUE_LIMIT: usize = BATCH;
/// In-flight entries kept at most; past this the sink waits for the server to take them.
const IN_FLIGHT_MAX: usize = 2048;
/// Sends between two looks at what the server has taken.
const TRIM_EVERY: u32 = 64;
/// How soon to look again while the server has not taken everything; doubled while it takes
/// nothing, up to [`TRIM_RETRY_MAX`] (a stalled server wakes the loop 5 times a second).
const TRIM_RETRY: Duration = Duration::from_millis(10);
const TRIM_RETRY_MAX: Duration = Duration::from_millis(200);
/// Buffers of forgotten entries kept for reuse.
const SPARE_MAX: usize = 128;
/// Appended to an entry sent again after a connection failed: the server may have it twice.
pub const REDELIVERED_MARK: &str = " [redelivered]";

/// How entries are delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One datagram per entry (`/dev/log`, UDP).
    Datagram,
    /// RFC 6587 octet counting, `LEN SP MSG` (TCP).
    OctetCounting,
    /// The message and a NUL byte (a stream `/dev/log`, as glibc's syslog(3)).
    NulTerminated,
}

/// The connection to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Down,
    /// A TCP connect in progress.
    Connecting,
    Up,
}

/// What the delivery state machine needs from the socket.
pub trait Transport {
    /// `syslog at tcp://host:port` and the like, for messages.
    fn describe(&self) -> &str;
    fn state(&self) -> State;
    /// Opens a new connection (the next address, if a name has several) and registers it for
    /// writable events. A TCP connect returns [`State::Connecting`].
    fn connect(&mut self, registry: &Registry, now: Instant) -> io::Result<State>;
    /// Whether a connect in progress is done: [`State::Up`], still connecting, or why not.
    fn finish_connect(&mut self) -> io::Result<State>;
    /// Addresses not tried yet since the last connection was made.
    fn untried(&self) -> usize;
    /// Closes the connection; `discard`: what the kernel has not sent yet is dropped (TCP).
    fn disconnect(&mut self, discard: bool);
    /// How entries are framed on the current connection.
    fn framing(&self) -> Framing;
    /// Sends the first entries of `msgs`, one datagram each, in one call; returns how many
    /// went, and the bytes of each in `wire_len`.
    fn send_datagrams(&mut self, msgs: &[&[u8]], wire_len: &mut [usize]) -> io::Result<usize>;
    /// Writes what the socket takes of `bufs` to the stream; returns how many bytes.
    fn write_stream(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;
    /// Whether a send error concerns only the entry sent (UDP errors, a datagram too large),
    /// not the connection.
    fn rejects(&self, error: &io::Error) -> bool;
    /// Whether [`Transport::unsettled_bytes`] says anything (not for UDP).
    fn tracks_unsettled(&self) -> bool;
    /// Bytes sent that the server has not taken yet: not acknowledged (TCP), not read (Unix).
    fn unsettled_bytes(&self) -> io::Result<usize>;
    /// Whether a server that died shows only at the next send (a Unix datagram socket): its
    /// freed queue then reads as taken, so what a look finds taken is forgotten only once a
    /// later send has succeeded, which proves the server was alive at the look.
    fn confirms_by_send(&self) -> bool;
    /// For a stream: an error if the server closed the connection or it failed.
    fn check_open(&mut self) -> io::Result<()>;
    /// Whether unsettled bytes sit in our own send queue (TCP), where they are lost when the
    /// connection closes: the drain waits for them.
    fn holds_unsent(&self) -> bool;
    /// Waits at most `timeout`; `for_room`: returns early once the socket takes more (or a
    /// connect is done).
    fn wait(&self, timeout: Duration, for_room: bool);
}

/// An entry sent that the server may not have taken yet.
struct InFlight {
    msg: Vec<u8>,
    /// Bytes it occupies on the wire.
    wire_len: usize,
    /// Already marked as sent again.
    marked: bool,
}

/// Why (and until when) the next flush need not try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    Nothing,
    /// A TCP connect in progress, given up then.
    Connect(Instant),
    /// The server cannot be reached: connect again then.
    Reconnect(Instant),
    /// The socket was full: try again then (or at a writable event).
    Room(Instant),
    /// Out of descriptors or memory: try again then.
    Resources(Instant),
}

/// The server unreachable since `since`.
struct Outage {
    since: Instant,
    /// [`Delivery::sends`] when it began: every send after it is an entry held meanwhile.
    sends_before: u64,
    redelivered: u64,
}

pub struct Delivery<T: Transport> {
    transport: T,
    formatter: Formatter3164,
    /// Formatted messages (without framing) waiting to be sent, oldest first.
    pending: VecDeque<Vec<u8>>,
    /// How many entries at the front of `pending` are marked as sent again already.
    pending_marked: usize,
    /// Bytes of the front entry's frame already written to the stream.
    written: usize,
    /// Entries sent but perhaps not yet taken by the server, oldest first.
    in_flight: VecDeque<InFlight>,
    /// How many of the oldest in-flight entries the last look found taken, to be forgotten
    /// at the next successful send ([`Transport::confirms_by_send`]).
    taken_unconfirmed: usize,
    spare: Vec<Vec<u8>>,
    sends_since_trim: u32,
    wait: Wait,
    /// When to look again at what the server has taken, and how long the next look waits.
    trim_at: Option<Instant>,
    trim_retry: Duration,
    /// The wait before the next reconnect after a failure.
    backoff: Duration,
    outage: Option<Outage>,
    /// Entries sent, sends again included.
    sends: u64,
    stats: DeliveryStats,
}

impl<T: Transport> Delivery<T> {
    /// Connects (or starts to) at once; if the server cannot be reached, an outage starts.
    pub fn new(transport: T, registry: &Registry, now: Instant) -> Delivery<T> {
        let mut delivery = Delivery {
            transport,
            formatter: Formatter3164 {
                facility: Facility::LOG_DAEMON,
                hostname: None,
                process: "tcp-listener".into(),
                pid: std::process::id(),
            },
            pending: VecDeque::new(),
            pending_marked: 0,
            written: 0,
            in_flight: VecDeque::new(),
            taken_unconfirmed: 0,
            spare: Vec::new(),
            sends_since_trim: 0,
            wait: Wait::Nothing,
            trim_at: None,
            trim_retry: TRIM_RETRY,
            backoff: RETRY_INTERVAL,
            outage: None,
            sends: 0,
            stats: DeliveryStats::default(),
        };
        delivery.connected(now, registry);
        delivery
    }

    pub fn transport(&self) -> &T {
        &self.transport
    }

    pub fn describe(&self) -> String {
        self.transport.describe().to_string()
    }

    pub fn stats(&self) -> DeliveryStats {
        self.stats
    }

    /// Whether the loop may read more from clients: little is queued and the server is
    /// keeping up with what is in flight.
    pub fn has_room(&self) -> bool {
        self.pending.len() < QUEUE_LIMIT && self.untaken() < IN_FLIGHT_MAX
    }

    /// In-flight entries the server may not have taken.
    fn untaken(&self) -> usize {
        self.in_flight.len() - self.taken_unconfirmed
    }

    /// When [`Delivery::flush`] wants to be called again even without an event.
    pub fn wake_at(&self) -> Option<Instant> {
        let wait = match self.wait {
            Wait::Nothing => None,
            Wait::Connect(t) | Wait::Reconnect(t) => Some(t),
            Wait::Room(t) | Wait::Resources(t) => Some(t).filter(|_| !self.pending.is_empty()),
        };
        let trim = self.trim_at.filter(|_| !self.in_flight.is_empty());
        match (wait, trim) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Takes out what is queued and not sent (a reload hands it to the next sink): formatted
    /// messages, see [`unformat`].
    pub fn take_pending(&mut self) -> Vec<Vec<u8>> {
        self.pending_marked = 0;
        self.pending.drain(..).collect()
    }

    /// Formats and queues an entry; [`Delivery::flush`] sends it.
    pub fn log(&mut self, entry: &Entry<'_>) {
        let mut msg = self.spare.pop().unwrap_or_default();
        msg.clear();
        let severity = match entry.priority {
            p if p <= priority::ERR => Severity::LOG_ERR,
            priority::WARNING => Severity::LOG_WARNING,
            priority::NOTICE => Severity::LOG_NOTICE,
            _ => Severity::LOG_INFO,
        };
        // Writing to a Vec cannot fail.
        let _ = self.formatter.format(&mut msg, severity, entry.message);
        self.pending.push_back(msg);
    }

    /// Sends what is queued without waiting, connecting first if the server was gone and a
    /// retry is due.
    pub fn flush(&mut self, now: Instant, registry: &Registry) {
        if !self.connected(now, registry) {
            return;
        }
        self.wait = Wait::Nothing;
        if !self.pending.is_empty() {
            if let Err(e) = self.send_pending(now) {
                self.after_error(now, &e);
                return;
            }
        }
        if !self.in_flight.is_empty() && self.trim_at.is_none_or(|t| t <= now) {
            if let Err(e) = self.trim_in_flight(now) {
                self.went_down(now, &e);
                return;
            }
        }
        if self.pending.is_empty() {
            if let Some(outage) = self.outage.take() {
                let message = format!(
                    "{} was unreachable for {:.1} s; {} entries were held meanwhile and are \
                     delivered now, {} of them sent again because the server may have lost \
                     them (marked{REDELIVERED_MARK})",
                    self.transport.describe(),
                    now.duration_since(outage.since).as_secs_f64(),
                    self.sends - outage.sends_before,
                    outage.redelivered,
                );
                self.log(&Entry::notice(priority::WARNING, &message));
            }
        }
    }

    /// Delivers everything queued before `deadline`; what cannot be delivered by then (for
    /// TCP: what the server has not acknowledged either) is written to stderr and counted as
    /// undelivered.
    pub fn drain(&mut self, deadline: Instant, registry: &Registry) {
        loop {
            let now = Instant::now();
            self.flush(now, registry);
            if self.undelivered() == 0 || now >= deadline {
                break;
            }
            let until = self.wake_at().unwrap_or(deadline).min(deadline);
            let for_room = !self.pending.is_empty() || self.transport.state() == State::Connecting;
            self.transport
                .wait(until.saturating_duration_since(now), for_room);
        }
        if self.transport.state() == State::Up && !self.in_flight.is_empty() {
            // A last exact look: only what the server has not taken is counted.
            if let Err(e) = self.trim_in_flight(Instant::now()) {
                self.went_down(Instant::now(), &e);
            }
        }
        let n = self.undelivered();
        if n == 0 {
            return;
        }
        let holds_unsent = self.transport.holds_unsent();
        if holds_unsent && (!self.in_flight.is_empty() || self.written > 0) {
            self.transport.disconnect(true);
        }
        self.written = 0;
        let mut err = io::stderr().lock();
        let _ = writeln!(
            err,
            "tcp-listener: {n} entries could not be delivered to {}; they follow",
            self.transport.describe()
        );
        if holds_unsent {
            for sent in self.in_flight.drain(..) {
                let _ = writeln!(err, "{}", text_of(&sent.msg));
            }
        }
        for msg in self.pending.drain(..) {
            let _ = writeln!(err, "{}", text_of(&msg));
        }
        self.pending_marked = 0;
        self.stats.undelivered += n as u64;
    }

    /// Entries not delivered yet: those queued and, where a close would lose them, those the
    /// server has not acknowledged.
    fn undelivered(&self) -> usize {
        let unacknowledged = if self.transport.holds_unsent() {
            self.in_flight.len()
        } else {
            0
        };
        self.pending.len() + unacknowledged
    }

    /// Makes sure there is a connection: starts one when a retry is due, finishes one in
    /// progress. False while there is none.
    fn connected(&mut self, now: Instant, registry: &Registry) -> bool {
        let result = match self.transport.state() {
            State::Up => return true,
            State::Connecting => self.transport.finish_connect(),
            State::Down => {
                if matches!(self.wait, Wait::Reconnect(t) if t > now) {
                    return false;
                }
                match self.transport.connect(registry, now) {
                    Ok(State::Connecting) => {
                        self.wait = Wait::Connect(now + CONNECT_TIMEOUT);
                        self.transport.finish_connect()
                    }
                    other => other,
                }
            }
        };
        match result {
            Ok(State::Up) => {
                self.backoff = RETRY_INTERVAL;
                self.wait = Wait::Nothing;
                true
            }
            Ok(_) => {
                if matches!(self.wait, Wait::Connect(deadline) if now >= deadline) {
                    let timeout = io::Error::new(io::ErrorKind::TimedOut, "connect timed out");
                    self.connect_failed(now, &timeout);
                }
                false
            }
            Err(e) => {
                self.connect_failed(now, &e);
                false
            }
        }
    }

    fn connect_failed(&mut self, now: Instant, error: &io::Error) {
        self.transport.disconnect(false);
        self.begin_outage(now, error);
        self.wait = if self.transport.untried() > 0 {
            // Another address of the name: at once.
            Wait::Reconnect(now)
        } else {
            self.retry_later(now)
        };
    }

    fn retry_later(&mut self, now: Instant) -> Wait {
        let at = now + self.backoff;
        self.backoff = (self.backoff * 2).min(RETRY_MAX);
        Wait::Reconnect(at)
    }

    fn begin_outage(&mut self, now: Instant, error: &io::Error) {
        if self.outage.is_none() {
            let _ = writeln!(
                io::stderr(),
                "tcp-listener: {} unreachable ({error}); holding entries and retrying",
                self.transport.describe()
            );
            self.outage = Some(Outage {
                since: now,
                sends_before: self.sends,
                redelivered: 0,
            });
        }
    }

    /// Sends queued entries; stops at the first error that is not about one entry (a full
    /// socket, the server gone), leaving the rest queued.
    fn send_pending(&mut self, now: Instant) -> io::Result<()> {
        match self.transport.framing() {
            Framing::Datagram => self.send_datagrams(now),
            framing => {
                // A server that closed the connection is noticed before writing into it.
                self.transport.check_open()?;
                self.send_stream(framing, now)
            }
        }
    }

    fn send_datagrams(&mut self, now: Instant) -> io::Result<()> {
        let mut wire_len = [0; BATCH];
        while !self.pending.is_empty() {
            let mut batch: [&[u8]; BATCH] = [&[]; BATCH];
            let n = self.pending.len().min(BATCH);
            for (slot, msg) in batch.iter_mut().zip(&self.pending) {
                *slot = msg;
            }
            match self.transport.send_datagrams(&batch[..n], &mut wire_len) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(sent) => {
                    for &len in &wire_len[..sent] {
                        self.sent(len, now);
                    }
                }
                Err(e) if self.transport.rejects(&e) => self.reject_front(&e),
                Err(e) => return Err(e),
            }
            self.maybe_trim(now)?;
        }
        Ok(())
    }

    fn send_stream(&mut self, framing: Framing, now: Instant) -> io::Result<()> {
        while !self.pending.is_empty() {
            let n = self.pending.len().min(BATCH);
            let mut prefixes = [[0u8; PREFIX_MAX]; BATCH];
            let mut prefix_len = [0; BATCH];
            if framing == Framing::OctetCounting {
                for (i, msg) in self.pending.iter().take(n).enumerate() {
                    prefix_len[i] = octet_count_prefix(&mut prefixes[i], msg.len());
                }
            }
            let mut slices = [IoSlice::new(&[]); 2 * BATCH];
            for (i, msg) in self.pending.iter().take(n).enumerate() {
                let start = PREFIX_MAX - prefix_len[i];
                (slices[2 * i], slices[2 * i + 1]) = match framing {
                    Framing::NulTerminated => (IoSlice::new(msg), IoSlice::new(b"\0")),
                    _ => (IoSlice::new(&prefixes[i][start..]), IoSlice::new(msg)),
                };
            }
            let mut bufs = &mut slices[..2 * n];
            IoSlice::advance_slices(&mut bufs, self.written);
            let wanted: usize = bufs.iter().map(|b| b.len()).sum();
            let written = self.transport.write_stream(bufs)?;
            if written == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            // Whole frames move to the in-flight entries; a part of one is remembered.
            let mut left = self.written + written;
            while let Some(front) = self.pending.front() {
                let len = frame_len(framing, front.len());
                if left < len {
                    break;
                }
                left -= len;
                self.sent(len, now);
            }
            self.written = left;
            self.maybe_trim(now)?;
            if written < wanted {
                // The socket is full: the next write would say EAGAIN.
                return Err(io::Error::from_raw_os_error(libc::EAGAIN));
            }
        }
        Ok(())
    }

    /// Moves the front entry, just sent, to the in-flight entries until the server has taken
    /// it (or forgets it where that cannot be told: UDP).
    fn sent(&mut self, wire_len: usize, now: Instant) {
        let msg = self.pending.pop_front().expect("sent from pending");
        let marked = self.pending_marked > 0;
        self.pending_marked = self.pending_marked.saturating_sub(1);
        self.stats.delivered += 1;
        self.sends += 1;
        if !self.transport.tracks_unsettled() {
            self.recycle(msg);
            return;
        }
        // The send worked: the server was alive at the last look, which it can now be
        // trusted.
        for _ in 0..std::mem::take(&mut self.taken_unconfirmed) {
            let sent = self.in_flight.pop_front().expect("taken from in flight");
            self.recycle(sent.msg);
        }
        self.in_flight.push_back(InFlight {
            msg,
            wire_len,
            marked,
        });
        self.sends_since_trim += 1;
        if self.trim_at.is_none() {
            self.trim_at = Some(now + self.trim_retry);
        }
    }

    fn maybe_trim(&mut self, now: Instant) -> io::Result<()> {
        if self.sends_since_trim >= TRIM_EVERY || self.untaken() >= IN_FLIGHT_MAX {
            self.trim_in_flight(now)?;
        }
        Ok(())
    }

    /// An entry the server cannot take (a UDP error, a datagram too large): to stderr.
    fn reject_front(&mut self, error: &io::Error) {
        let msg = self.pending.pop_front().expect("rejected from pending");
        self.pending_marked = self.pending_marked.saturating_sub(1);
        self.stats.undelivered += 1;
        let _ = writeln!(
            io::stderr(),
            "tcp-listener: {} did not take an entry ({error}): {}",
            self.transport.describe(),
            text_of(&msg)
        );
        self.recycle(msg);
    }

    /// Forgets the in-flight entries the server has certainly taken: the socket's unsettled
    /// bytes (each entry's wire bytes at least) bound how many of the newest may not be. An
    /// error: the connection failed.
    fn trim_in_flight(&mut self, now: Instant) -> io::Result<()> {
        self.sends_since_trim = 0;
        let unsettled = self.transport.unsettled_bytes()?;
        // A reset connection forgets its queue: make sure the count came from a live one.
        self.transport.check_open()?;
        // The bytes written of the front pending entry are in the queue too.
        let unsettled = unsettled.saturating_sub(self.written);
        let mut keep = 0;
        let mut sum = 0;
        if unsettled > 0 {
            for sent in self.in_flight.iter().rev() {
                keep += 1;
                sum += sent.wire_len;
                if sum >= unsettled {
                    break;
                }
            }
        }
        let taken = self.in_flight.len().saturating_sub(keep);
        let progress = if self.transport.confirms_by_send() {
            let progress = taken > self.taken_unconfirmed;
            self.taken_unconfirmed = taken;
            progress
        } else {
            for _ in 0..taken {
                let sent = self.in_flight.pop_front().expect("taken from in flight");
                self.recycle(sent.msg);
            }
            taken > 0
        };
        self.trim_retry = if progress {
            TRIM_RETRY
        } else {
            (self.trim_retry * 2).min(TRIM_RETRY_MAX)
        };
        // Nothing more to learn from the socket once all is taken (confirmed or not).
        self.trim_at = (self.untaken() > 0).then_some(now + self.trim_retry);
        Ok(())
    }

    fn recycle(&mut self, mut msg: Vec<u8>) {
        if self.spare.len() < SPARE_MAX {
            msg.clear();
            self.spare.push(msg);
        }
    }

    /// Decides what a failed send means: a full socket (wait) or the server gone (reconnect).
    fn after_error(&mut self, now: Instant, error: &io::Error) {
        match error.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::ENOBUFS) | Some(libc::EINTR) => {
                self.wait = Wait::Room(now + FULL_QUEUE_RETRY);
            }
            Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOMEM) => {
                self.wait = Wait::Resources(now + RETRY_INTERVAL);
            }
            _ => self.went_down(now, error),
        }
    }

    /// The connection failed: what the server had not taken may be lost, so it is queued
    /// again, first, and a reconnect is tried later.
    fn went_down(&mut self, now: Instant, error: &io::Error) {
        self.begin_outage(now, error);
        let outage = self.outage.as_mut().expect("begun");
        while let Some(sent) = self.in_flight.pop_back() {
            let mut msg = sent.msg;
            if !sent.marked {
                msg.extend_from_slice(REDELIVERED_MARK.as_bytes());
            }
            self.pending.push_front(msg);
            self.pending_marked += 1;
            outage.redelivered += 1;
        }
        self.taken_unconfirmed = 0;
        // A frame cut short is sent whole on the next connection.
        self.written = 0;
        self.trim_at = None;
        self.trim_retry = TRIM_RETRY;
        self.transport.disconnect(false);
        self.wait = self.retry_later(now);
    }
}

/// Room for `LEN SP` before a frame.
const PREFIX_MAX: usize = 21;

/// Writes `LEN SP` at the end of `buf`; returns its length.
fn octet_count_prefix(buf: &mut [u8; PREFIX_MAX], len: usize) -> usize {
    let mut digits = [0; 20];
    let digits = decimal_bytes(&mut digits, len as u64);
    let start = PREFIX_MAX - 1 - digits.len();
    buf[start..PREFIX_MAX - 1].copy_from_slice(digits);
    buf[PREFIX_MAX - 1] = b' ';
    PREFIX_MAX - start
}

/// The bytes a message of `len` bytes occupies on the wire.
fn frame_len(framing: Framing, len: usize) -> usize {
    match framing {
        Framing::Datagram => len,
        Framing::OctetCounting => {
            let mut digits = [0; 20];
            decimal_bytes(&mut digits, len as u64).len() + 1 + len
        }
        Framing::NulTerminated => len + 1,
    }
}

/// The entry's text in a formatted message: what follows the `tcp-listener[PID]: ` tag.
fn text_of(msg: &[u8]) -> Cow<'_, str> {
    let text = msg
        .windows(3)
        .position(|w| w == b"]: ")
        .map_or(msg, |i| &msg[i + 3..]);
    String::from_utf8_lossy(text)
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;
    use crate::entry::Entry;

    /// A scripted syslog server. As a stream: a send buffer of `room` bytes the server takes
    /// from (acknowledges) when the test says so. As datagrams: a queue of `qlen`.
    #[derive(Default)]
    struct Server {
        running: bool,
        stream: bool,
        udp: bool,
        room: usize,
        /// Stream bytes sent and not yet taken (lost if the server dies).
        buffer: Vec<u8>,
        received: Vec<u8>,
        qlen: usize,
        queue: VecDeque<Vec<u8>>,
        datagrams: Vec<Vec<u8>>,
        /// Bumped when the server dies or closes: the connections made before are broken.
        generation: u64,
        /// Closed by the server (end of file), rather than reset.
        closed: bool,
        /// A connect stays in progress.
        connect_hangs: bool,
        /// Errors to return from the next sends.
        fail_next: VecDeque<i32>,
        connects: usize,
        /// disconnect(discard = true) was called.
        discarded: bool,
    }

    impl Server {
        /// Takes `n` bytes of the stream, or `n` datagrams.
        fn take(&mut self, n: usize) {
            let bytes = n.min(self.buffer.len());
            self.received.extend(self.buffer.drain(..bytes));
            let datagrams = n.min(self.queue.len());
            self.datagrams.extend(self.queue.drain(..datagrams));
        }
        fn take_all(&mut self) {
            self.take(usize::MAX);
        }
        fn kill(&mut self) {
            self.running = false;
            self.buffer.clear();
            self.queue.clear();
            self.generation += 1;
        }
        /// Takes everything, then closes the connection (end of file) and stops listening.
        fn close(&mut self) {
            self.take_all();
            self.running = false;
            self.closed = true;
            self.generation += 1;
        }
        fn start(&mut self) {
            self.running = true;
            self.closed = false;
        }
        /// Every message received, each a whole frame (panics on a bad frame).
        fn messages(&self) -> Vec<String> {
            if !self.stream {
                return self
                    .datagrams
                    .iter()
                    .map(|d| String::from_utf8_lossy(d).into_owned())
                    .collect();
            }
            let mut out = Vec::new();
            let mut rest = &self.received[..];
            while !rest.is_empty() {
                let sp = rest.iter().position(|&b| b == b' ').expect("LEN SP");
                let len: usize = std::str::from_utf8(&rest[..sp]).unwrap().parse().unwrap();
                let msg = &rest[sp + 1..sp + 1 + len];
                assert!(msg.starts_with(b"<"), "{}", String::from_utf8_lossy(msg));
                out.push(String::from_utf8_lossy(msg).into_owned());
                rest = &rest[sp + 1 + len..];
            }
            out
        }
        /// The entry texts received, in order.
        fn texts(&self) -> Vec<String> {
            self.messages()
                .iter()
                .map(|m| text_of(m.as_bytes()).into_owned())
                .collect()
        }
    }

    struct Fake {
        server: Rc<RefCell<Server>>,
        state: State,
        generation: u64,
    }

    fn errno(e: i32) -> io::Error {
        io::Error::from_raw_os_error(e)
    }

    impl Fake {
        fn broken(&self) -> Option<io::Error> {
            let s = self.server.borrow();
            (self.generation != s.generation).then(|| {
                if s.closed {
                    io::Error::new(io::ErrorKind::ConnectionAborted, "closed")
                } else {
                    errno(libc::ECONNRESET)
                }
            })
        }
    }

    impl Transport for Fake {
        fn describe(&self) -> &str {
            "syslog at tcp://fake:514"
        }
        fn state(&self) -> State {
            self.state
        }
        fn connect(&mut self, _: &Registry, _: Instant) -> io::Result<State> {
            let mut s = self.server.borrow_mut();
            s.connects += 1;
            self.generation = s.generation;
            self.state = if s.connect_hangs {
                State::Connecting
            } else if s.running {
                State::Up
            } else {
                self.state = State::Down;
                return Err(errno(libc::ECONNREFUSED));
            };
            Ok(self.state)
        }
        fn finish_connect(&mut self) -> io::Result<State> {
            let s = self.server.borrow();
            if self.state == State::Connecting && !s.connect_hangs {
                if !s.running {
                    return Err(errno(libc::ECONNREFUSED));
                }
                self.state = State::Up;
            }
            Ok(self.state)
        }
        fn untried(&self) -> usize {
            0
        }
        fn disconnect(&mut self, discard: bool) {
            self.state = State::Down;
            self.server.borrow_mut().discarded |= discard;
        }
        fn framing(&self) -> Framing {
            if self.server.borrow().stream {
                Framing::OctetCounting
            } else {
                Framing::Datagram
            }
        }
        fn send_datagrams(&mut self, msgs: &[&[u8]], wire_len: &mut [usize]) -> io::Result<usize> {
            let mut s = self.server.borrow_mut();
            if let Some(e) = s.fail_next.pop_front() {
                return Err(errno(e));
            }
            if !s.running {
                return Err(errno(libc::ECONNREFUSED));
            }
            let mut sent = 0;
            for (msg, len) in msgs.iter().zip(wire_len.iter_mut()) {
                if s.queue.len() >= s.qlen {
                    break;
                }
                s.queue.push_back(msg.to_vec());
                *len = msg.len();
                sent += 1;
            }
            if sent == 0 {
                return Err(errno(libc::EAGAIN));
            }
            if s.udp {
                // Nothing to wait for: the datagrams are taken at once.
                let queued: Vec<Vec<u8>> = s.queue.drain(..).collect();
                s.datagrams.extend(queued);
            }
            Ok(sent)
        }
        fn write_stream(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            if let Some(e) = self.broken() {
                return Err(e);
            }
            let mut s = self.server.borrow_mut();
            if let Some(e) = s.fail_next.pop_front() {
                return Err(errno(e));
            }
            let mut room = s.room - s.buffer.len();
            if room == 0 {
                return Err(errno(libc::EAGAIN));
            }
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(room);
                s.buffer.extend_from_slice(&b[..take]);
                room -= take;
                n += take;
            }
            Ok(n)
        }
        fn rejects(&self, e: &io::Error) -> bool {
            let s = self.server.borrow();
            s.udp && e.raw_os_error() != Some(libc::EAGAIN)
        }
        fn tracks_unsettled(&self) -> bool {
            !self.server.borrow().udp
        }
        fn unsettled_bytes(&self) -> io::Result<usize> {
            // A dead server's queue is gone: it reads as taken (so does the kernel's).
            let s = self.server.borrow();
            if s.stream {
                Ok(s.buffer.len())
            } else {
                // The kernel counts more than the payload (an skb per datagram): so does this.
                Ok(s.queue.iter().map(|d| d.len() + 10).sum())
            }
        }
        fn confirms_by_send(&self) -> bool {
            let s = self.server.borrow();
            !s.stream && !s.udp
        }
        fn check_open(&mut self) -> io::Result<()> {
            // A datagram socket cannot tell.
            if !self.server.borrow().stream {
                return Ok(());
            }
            match self.broken() {
                Some(e) => Err(e),
                None => Ok(()),
            }
        }
        fn holds_unsent(&self) -> bool {
            self.server.borrow().stream && self.state == State::Up
        }
        fn wait(&self, _: Duration, _: bool) {}
    }

    struct Setup {
        server: Rc<RefCell<Server>>,
        delivery: Delivery<Fake>,
        poll: mio::Poll,
    }

    fn setup_with(server: Server, t0: Instant) -> Setup {
        let server = Rc::new(RefCell::new(server));
        let poll = mio::Poll::new().unwrap();
        let fake = Fake {
            server: Rc::clone(&server),
            state: State::Down,
            generation: 0,
        };
        let delivery = Delivery::new(fake, poll.registry(), t0);
        Setup {
            server,
            delivery,
            poll,
        }
    }

    /// A TCP server with `room` bytes of send buffer.
    fn stream(room: usize) -> Setup {
        setup_with(
            Server {
                running: true,
                stream: true,
                room,
                ..Server::default()
            },
            Instant::now(),
        )
    }

    impl Setup {
        fn log(&mut self, range: std::ops::Range<usize>) {
            for i in range {
                let text = format!("entry {i}");
                self.delivery.log(&Entry::notice(6, &text));
            }
        }
        fn flush(&mut self, now: Instant) {
            self.delivery.flush(now, self.poll.registry());
        }
        fn drain(&mut self, deadline: Instant) {
            let registry = self.poll.registry().try_clone().unwrap();
            self.delivery.drain(deadline, &registry);
        }
        /// Flushes while the server takes everything, until nothing is left to send.
        fn settle(&mut self, mut now: Instant) {
            for _ in 0..1000 {
                self.flush(now);
                self.server.borrow_mut().take_all();
                if self.delivery.pending.is_empty() {
                    now += TRIM_RETRY_MAX;
                    self.flush(now);
                    self.server.borrow_mut().take_all();
                    self.flush(now);
                    self.server.borrow_mut().take_all();
                    return;
                }
                now += Duration::from_millis(50);
            }
            panic!("never settled");
        }
    }

    /// `entry 0` … `entry n-1` each once, in order, among `got`; a marked entry may repeat
    /// one that came before.
    fn assert_each_once_in_order(got: &[String], n: usize) {
        let mut want = 0;
        for text in got {
            let Some(i) = text.strip_prefix("entry ") else {
                continue;
            };
            let marked = i.ends_with(REDELIVERED_MARK);
            let i: usize = i.trim_end_matches(REDELIVERED_MARK).parse().unwrap();
            if i == want {
                want += 1;
            } else {
                assert!(marked && i < want, "{text} out of order in {got:?}");
            }
        }
        assert_eq!(want, n, "{got:?}");
    }

    #[test]
    fn stream_frames_are_octet_counted_and_a_partial_write_is_resumed() {
        // A frame is 45 to 60 bytes (the pid varies): 75 bytes cut the second one.
        let mut s = stream(75);
        let t0 = Instant::now();
        s.log(0..10);
        s.flush(t0);
        // 75 bytes went: a frame cut in the middle, the rest waits for room.
        assert_eq!(s.server.borrow().buffer.len(), 75);
        assert!(s.delivery.written > 0);
        assert_eq!(s.delivery.wake_at(), Some(t0 + TRIM_RETRY));
        s.settle(t0);
        let messages = s.server.borrow().messages();
        assert_each_once_in_order(&s.server.borrow().texts(), 10);
        assert_eq!(messages.len(), 10);
        let pid = std::process::id();
        assert!(
            messages[0].starts_with("<30>")
                && messages[0].ends_with(&format!("tcp-listener[{pid}]: entry 0")),
            "{messages:?}"
        );
        let first = String::from_utf8_lossy(&s.server.borrow().received[..8]).into_owned();
        assert!(
            first.starts_with(&format!("{} <30>", messages[0].len())),
            "{first}"
        );
        assert_eq!(s.delivery.stats().delivered, 10);
        assert!(s.delivery.in_flight.is_empty());
        assert_eq!(s.delivery.wake_at(), None);
    }

    #[test]
    fn a_full_socket_holds_the_entries_says_no_room_and_when_to_retry() {
        let mut s = stream(0);
        let t0 = Instant::now();
        s.log(0..100);
        s.flush(t0);
        assert!(!s.delivery.has_room());
        assert_eq!(s.delivery.pending.len(), 100);
        assert_eq!(s.delivery.wake_at(), Some(t0 + FULL_QUEUE_RETRY));
        s.server.borrow_mut().room = 1 << 20;
        s.settle(t0 + FULL_QUEUE_RETRY);
        assert_each_once_in_order(&s.server.borrow().texts(), 100);
        assert!(s.delivery.has_room());
    }

    #[test]
    fn a_server_that_takes_nothing_stops_the_reading_once_enough_is_in_flight() {
        let mut s = stream(1 << 30);
        let mut now = Instant::now();
        let mut n = 0;
        while s.delivery.has_room() {
            s.log(n..n + 64);
            n += 64;
            s.flush(now);
            assert!(n < 10 * IN_FLIGHT_MAX, "never out of room");
        }
        assert!(s.delivery.pending.is_empty());
        assert!(s.delivery.in_flight.len() >= IN_FLIGHT_MAX);
        // While nothing is taken, the looks at the socket grow rarer, up to TRIM_RETRY_MAX.
        let mut gaps = Vec::new();
        for _ in 0..8 {
            let at = s.delivery.wake_at().unwrap();
            gaps.push(at.duration_since(now));
            now = at;
            s.flush(now);
        }
        assert_eq!(*gaps.last().unwrap(), TRIM_RETRY_MAX, "{gaps:?}");
        assert!(gaps.windows(2).all(|w| w[0] <= w[1]), "{gaps:?}");
        // The server takes everything: the next look forgets it all, and there is room.
        s.server.borrow_mut().take_all();
        s.flush(s.delivery.wake_at().unwrap());
        assert!(s.delivery.in_flight.is_empty());
        assert!(s.delivery.has_room());
        assert_each_once_in_order(&s.server.borrow().texts(), n);
    }

    #[test]
    fn a_reset_connection_sends_again_marked_what_the_server_had_not_taken() {
        let mut s = stream(1 << 20);
        let t0 = Instant::now();
        s.log(0..20);
        s.flush(t0);
        s.server.borrow_mut().take_all();
        s.flush(t0 + TRIM_RETRY); // taken: forgotten
        assert!(s.delivery.in_flight.is_empty());
        s.log(20..30);
        s.flush(t0 + TRIM_RETRY);
        assert_eq!(s.delivery.in_flight.len(), 10);
        // The server dies with those 10 not taken; the next look at the socket sees it.
        s.server.borrow_mut().kill();
        s.flush(t0 + 2 * TRIM_RETRY);
        assert_eq!(s.delivery.transport().state(), State::Down);
        assert_eq!(s.delivery.pending.len(), 10);
        assert!(s.delivery.outage.is_some());
        let t1 = t0 + 2 * TRIM_RETRY;
        assert_eq!(s.delivery.wake_at(), Some(t1 + RETRY_INTERVAL));
        // Entries logged meanwhile wait; nothing is tried before the retry is due.
        s.log(30..35);
        s.flush(t1 + RETRY_INTERVAL / 2);
        assert_eq!(s.server.borrow().connects, 1);
        s.server.borrow_mut().start();
        s.settle(t1 + RETRY_INTERVAL);
        let texts = s.server.borrow().texts();
        assert_each_once_in_order(&texts, 35);
        let marked: Vec<&String> = texts
            .iter()
            .filter(|t| t.ends_with(REDELIVERED_MARK))
            .collect();
        assert_eq!(marked.len(), 10, "{texts:?}");
        let notice = texts.last().unwrap();
        assert!(
            notice.starts_with("syslog at tcp://fake:514 was unreachable for 0.")
                && notice.contains(" s; 15 entries were held meanwhile")
                && notice.contains("10 of them sent again"),
            "{notice}"
        );
    }

    #[test]
    fn a_server_that_closed_the_connection_is_noticed_before_writing_into_it() {
        let mut s = stream(1 << 20);
        let t0 = Instant::now();
        s.log(0..5);
        s.settle(t0);
        s.server.borrow_mut().close();
        s.log(5..10);
        let t1 = t0 + Duration::from_secs(1);
        s.flush(t1);
        assert_eq!(s.delivery.transport().state(), State::Down);
        assert_eq!(
            s.delivery.pending.len(),
            5,
            "nothing written into the closed connection"
        );
        s.server.borrow_mut().start();
        s.settle(t1 + RETRY_INTERVAL);
        let texts = s.server.borrow().texts();
        assert_each_once_in_order(&texts, 10);
        assert!(
            texts.iter().all(|t| !t.ends_with(REDELIVERED_MARK)),
            "{texts:?}"
        );
        assert!(texts
            .last()
            .unwrap()
            .contains("5 entries were held meanwhile"));
    }

    #[test]
    fn killed_twice_an_entry_is_marked_once() {
        let mut s = stream(1 << 20);
        let t0 = Instant::now();
        s.log(0..3);
        s.flush(t0);
        s.server.borrow_mut().kill();
        s.flush(t0 + TRIM_RETRY);
        s.server.borrow_mut().start();
        let t1 = t0 + TRIM_RETRY + RETRY_INTERVAL;
        s.flush(t1); // sent again, not taken
        assert_eq!(s.delivery.in_flight.len(), 3);
        s.server.borrow_mut().kill();
        s.flush(t1 + TRIM_RETRY);
        s.server.borrow_mut().start();
        s.settle(t1 + TRIM_RETRY + 2 * RETRY_INTERVAL);
        let texts = s.server.borrow().texts();
        assert_each_once_in_order(&texts, 3);
        for t in &texts {
            assert!(t.matches(REDELIVERED_MARK).count() <= 1, "{t}");
        }
    }

    #[test]
    fn reconnects_back_off_while_the_server_cannot_be_reached() {
        let t0 = Instant::now();
        let mut s = setup_with(
            Server {
                running: false,
                stream: true,
                room: 1 << 20,
                ..Server::default()
            },
            t0,
        );
        s.log(0..100);
        let mut now = t0;
        let mut waits = Vec::new();
        for _ in 0..8 {
            let at = s.delivery.wake_at().unwrap();
            waits.push(at.duration_since(now));
            now = at;
            s.flush(now);
        }
        let ms: Vec<u128> = waits.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [250, 500, 1000, 2000, 4000, 4000, 4000, 4000]);
        assert!(
            !s.delivery.has_room(),
            "entries held, the loop stops reading"
        );
        s.server.borrow_mut().start();
        s.settle(now + RETRY_MAX);
        assert_each_once_in_order(&s.server.borrow().texts(), 100);
        // Once connected, the next failure starts again from the first interval.
        assert_eq!(s.delivery.backoff, RETRY_INTERVAL);
    }

    #[test]
    fn a_connect_that_hangs_is_given_up_after_the_timeout() {
        let t0 = Instant::now();
        let mut s = setup_with(
            Server {
                running: true,
                stream: true,
                room: 1 << 20,
                connect_hangs: true,
                ..Server::default()
            },
            t0,
        );
        assert_eq!(s.delivery.transport().state(), State::Connecting);
        assert_eq!(s.delivery.wake_at(), Some(t0 + CONNECT_TIMEOUT));
        s.log(0..70);
        s.flush(t0 + Duration::from_secs(1));
        assert!(!s.delivery.has_room());
        assert_eq!(s.delivery.transport().state(), State::Connecting);
        s.flush(t0 + CONNECT_TIMEOUT);
        assert_eq!(s.delivery.transport().state(), State::Down);
        assert_eq!(
            s.delivery.wake_at(),
            Some(t0 + CONNECT_TIMEOUT + RETRY_INTERVAL)
        );
        s.server.borrow_mut().connect_hangs = false;
        s.settle(t0 + CONNECT_TIMEOUT + RETRY_INTERVAL);
        assert_each_once_in_order(&s.server.borrow().texts(), 70);
    }

    #[test]
    fn drain_counts_what_the_server_never_took_and_resets_the_connection() {
        let mut s = stream(200);
        s.log(0..10);
        s.drain(Instant::now() + Duration::from_millis(5));
        assert_eq!(s.delivery.stats().undelivered, 10);
        assert!(s.delivery.pending.is_empty() && s.delivery.in_flight.is_empty());
        assert!(
            s.server.borrow().discarded,
            "reset: none of it arrives later"
        );
        // A server that takes everything: nothing undelivered, a plain close.
        let mut s = stream(1 << 20);
        s.log(0..10);
        s.flush(Instant::now());
        s.server.borrow_mut().take_all();
        s.drain(Instant::now() + Duration::from_secs(5));
        assert_eq!(s.delivery.stats().undelivered, 0);
        assert!(!s.server.borrow().discarded);
        assert_each_once_in_order(&s.server.borrow().texts(), 10);
    }

    #[test]
    fn udp_errors_concern_one_datagram_which_is_counted() {
        let mut s = setup_with(
            Server {
                running: true,
                udp: true,
                qlen: usize::MAX,
                ..Server::default()
            },
            Instant::now(),
        );
        s.server
            .borrow_mut()
            .fail_next
            .extend([libc::ECONNREFUSED, libc::EAGAIN]);
        s.log(0..5);
        let now = Instant::now();
        s.flush(now); // entry 0 refused, then a full buffer
        assert_eq!(s.delivery.stats().undelivered, 1);
        assert_eq!(s.delivery.pending.len(), 4);
        assert_eq!(s.delivery.wake_at(), Some(now + FULL_QUEUE_RETRY));
        s.flush(now + FULL_QUEUE_RETRY);
        let texts = s.server.borrow().texts();
        assert_eq!(texts, ["entry 1", "entry 2", "entry 3", "entry 4"]);
        assert!(s.delivery.in_flight.is_empty(), "UDP: nothing to wait for");
        assert_eq!(s.delivery.transport().state(), State::Up);
    }

    #[test]
    fn a_full_dev_log_queue_holds_the_entries_until_the_server_reads() {
        let mut s = setup_with(
            Server {
                running: true,
                qlen: 10,
                ..Server::default()
            },
            Instant::now(),
        );
        let now = Instant::now();
        s.log(0..100);
        s.flush(now);
        assert_eq!(s.delivery.pending.len(), 90);
        assert!(!s.delivery.has_room());
        s.settle(now);
        assert_each_once_in_order(&s.server.borrow().texts(), 100);
        assert!(s.delivery.has_room());
    }

    #[test]
    fn dev_log_dying_while_idle_loses_nothing_it_had_not_read() {
        // The queue of a dead /dev/log server reads as empty, like one that read everything:
        // what a look finds read is forgotten only after a later send has worked.
        let mut s = setup_with(
            Server {
                running: true,
                qlen: 1000,
                ..Server::default()
            },
            Instant::now(),
        );
        let t0 = Instant::now();
        s.log(0..10);
        s.flush(t0);
        s.server.borrow_mut().take(4);
        s.flush(t0 + TRIM_RETRY);
        assert_eq!(s.delivery.in_flight.len(), 10, "4 read, not forgotten yet");
        // Each unread datagram counts more than its bytes, so a few more may be kept.
        let untaken = s.delivery.untaken();
        assert!((6..10).contains(&untaken), "{untaken}");
        // The server dies with 6 unread; the daemon is idle, and a look sees an empty queue.
        s.server.borrow_mut().kill();
        s.flush(t0 + 2 * TRIM_RETRY);
        assert_eq!(s.delivery.in_flight.len(), 10);
        assert_eq!(
            s.delivery.wake_at(),
            None,
            "nothing to look at until a send"
        );
        // The next send finds it gone: all ten go again, marked.
        s.log(10..12);
        s.flush(t0 + 3 * TRIM_RETRY);
        assert_eq!(s.delivery.transport().state(), State::Down);
        s.server.borrow_mut().start();
        s.settle(t0 + 3 * TRIM_RETRY + RETRY_INTERVAL);
        let texts = s.server.borrow().texts();
        assert_each_once_in_order(&texts, 12);
        // A send that works confirms the last look: what was read is forgotten.
        s.log(12..13);
        s.flush(t0 + Duration::from_secs(10));
        s.server.borrow_mut().take_all();
        s.flush(t0 + Duration::from_secs(11));
        s.log(13..14);
        s.flush(t0 + Duration::from_secs(11));
        assert_eq!(s.delivery.in_flight.len(), 1, "only the last is unread");
    }

    #[test]
    fn only_a_missing_dev_log_falls_back_to_stderr() {
        let dir = std::env::temp_dir().join(format!("tcpl-devlog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log");
        let _ = std::fs::remove_file(&path);
        let notice = without_local_socket(&SyslogServer::Local, &path).expect("missing");
        assert_eq!(
            notice,
            format!(
                "no syslog socket at {}: logging to stderr instead",
                path.display()
            )
        );
        let tcp = SyslogServer::Tcp("127.0.0.1:1".into());
        assert_eq!(
            without_local_socket(&tcp, &path),
            None,
            "a remote server is retried"
        );
        let _socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        assert_eq!(without_local_socket(&SyslogServer::Local, &path), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
