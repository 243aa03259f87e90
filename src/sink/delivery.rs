//! The delivery engine of the journald and syslog sinks: it owns the entries queued, those in
//! flight, the outages, redelivery, the looks at what the peer has taken (trimming) and the
//! drain at a stop. No system call here: a socket is a [`Transport`], and what differs between
//! journald and a syslog server (the bytes of an entry, its redelivery mark, how the peer takes
//! entries) is its [`Protocol`]; so this state machine is unit-tested against scripted peers.
//!
//! - Entries are queued by [`Delivery::log`] and sent by [`Delivery::flush`], which the server
//!   calls at the end of every turn of its loop, without waiting: datagrams with sendmmsg(2),
//!   [`BATCH`] at a time (one too large for a datagram goes alone, where the transport has a
//!   way: journald's memfd), or a stream with one sendmsg(2) of up to [`BATCH`] frames, a
//!   partly written frame resumed where it stopped. Meanwhile [`Delivery::has_room`] says no
//!   once [`QUEUE_LIMIT`] entries wait, so the loop stops reading clients and TCP flow control
//!   slows them down: memory stays bounded.
//! - A sent entry stays *in flight* until the peer has certainly taken it (SIOCOUTQ: the bytes
//!   journald or the local syslog daemon has not read, those a TCP server has not
//!   acknowledged). When the peer is lost, what it had not taken may be lost with it: the
//!   in-flight entries are queued again, first, marked once ([`Protocol::mark_redelivered`]).
//! - A failed send is one of three [`Failure`]s, decided here only ([`classify`]): a full
//!   queue is retried soon (or at a writable event), a lack of descriptors or memory later,
//!   and a peer gone starts an outage: entries are held, a reconnect is tried after
//!   [`RETRY_INTERVAL`] (doubling up to [`Protocol::RECONNECT_MAX`]), a stream connect in
//!   progress is given up after [`CONNECT_TIMEOUT`]; once all is delivered again one notice
//!   says how long it lasted, how many entries were held and how many were sent again.
//! - [`Delivery::drain`] returns by its deadline: what is still queued (and what a TCP server
//!   has not acknowledged, which a close would lose) goes to stderr and is counted as
//!   undelivered; such a connection is then reset, so that none of it arrives after all.
//!
//! Here: the state and its public face, connecting, outages, the looks and redelivery;
//! `peer` (what differs between peers: the traits, the errno classes), `send` (datagrams and
//! stream frames), `tests` (against a scripted transport, and with each sink's protocol).

mod peer;
mod send;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::io::{self, Write};
use std::time::{Duration, Instant};

use mio::Registry;

use super::DeliveryStats;
use crate::entry::{priority, Entry};
pub use peer::{classify, Failure, LinkState, Looks, OutputFraming, Protocol, Transport};

/// Entries sent with one sendmmsg(2) or sendmsg(2) at most.
pub const BATCH: usize = 64;

/// Entries queued at most before [`Delivery::has_room`] says no: the loop then stops reading
/// clients until a flush has sent them. At [`BATCH`], one turn of the loop reads clients until
/// a sendmmsg's worth of entries is queued, so one sendmmsg carries the lines of several reads
/// and clients. Measured against 1 (send after every read that produced an entry), with 8
/// clients × 25,000 lines of 64 bytes into journald: 2,200 sendmmsg calls instead of 9,044 (91
/// entries per call instead of 22) and 19,341 system calls in all instead of 45,167. What it
/// costs: up to BATCH entries, plus those of one read, queued at a time.
pub const QUEUE_LIMIT: usize = BATCH;

/// First wait before reconnecting to a peer that cannot be reached; it doubles with each
/// failed attempt up to [`Protocol::RECONNECT_MAX`]. Also the wait after running out of
/// descriptors or memory.
pub const RETRY_INTERVAL: Duration = Duration::from_millis(250);
/// A stream connect not done by then has failed.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How soon to retry a full queue even if no writable event arrives.
const FULL_QUEUE_RETRY: Duration = Duration::from_millis(50);
/// Buffers of forgotten entries kept for reuse: keeping up to [`IN_FLIGHT_MAX`] would hold
/// ~0.6 MB for good after any burst (measured: +60 B per connection with 10,000 idle clients).
const SPARE_MAX: usize = 128;
/// In-flight entries kept at most; past this the sink waits for the peer to take them.
const IN_FLIGHT_MAX: usize = 2048;
/// Sends between two looks at what the peer has taken.
const TRIM_EVERY: u32 = 64;
/// How soon to look again while the peer has not taken everything.
const TRIM_RETRY: Duration = Duration::from_millis(10);

/// An entry sent that the peer may not have taken yet.
pub(super) struct InFlight {
    encoded: Vec<u8>,
    /// Bytes it occupies on the wire (0 when it went as a memfd).
    wire_len: usize,
    /// Already marked as sent again.
    marked: bool,
}

/// Why (and until when) the next flush need not try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    Nothing,
    /// A stream connect in progress, given up then.
    Connect(Instant),
    /// The peer cannot be reached: connect again then.
    Reconnect(Instant),
    /// The queue was full: try again then (or at a writable event).
    Room(Instant),
    /// Out of descriptors or memory: try again then.
    Resources(Instant),
}

/// The peer unreachable since `since`.
struct Outage {
    since: Instant,
    /// [`Delivery::sends`] when it began: every send after it is an entry held meanwhile.
    sends_before: u64,
    redelivered: u64,
}

/// The engine, for a transport and its protocol. The queues are visible to the sinks' tests.
pub struct Delivery<T: Transport> {
    transport: T,
    protocol: T::Protocol,
    /// Encoded entries (without framing) waiting to be sent, oldest first.
    pub(super) pending: VecDeque<Vec<u8>>,
    /// How many entries at the front of `pending` are marked as sent again already.
    pending_marked: usize,
    /// Bytes of the front entry's frame already written to the stream.
    written: usize,
    /// Entries sent but perhaps not yet taken by the peer, oldest first.
    pub(super) in_flight: VecDeque<InFlight>,
    /// How many of the oldest in-flight entries the last look found taken, to be forgotten
    /// at the next successful send ([`Transport::confirms_by_send`]).
    taken_unconfirmed: usize,
    /// Buffers of forgotten entries, reused so that queueing allocates nothing.
    spare: Vec<Vec<u8>>,
    sends_since_trim: u32,
    wait: Wait,
    /// When to look again at what the peer has taken, and how long the next look waits.
    trim_at: Option<Instant>,
    trim_retry: Duration,
    /// The wait before the next reconnect after a failure.
    backoff: Duration,
    outage: Option<Outage>,
    /// Entries sent, sends again included.
    sends: u64,
    stats: DeliveryStats,
    /// The sink's own notices (an outage over), collected for another sink to log instead
    /// of being logged here: a journal namespace's sink says them in the main journal.
    notices: Option<Vec<(u8, String)>>,
}

impl<T: Transport> Delivery<T> {
    /// Connects (or starts to) at once; if the peer cannot be reached, an outage starts.
    pub fn new(transport: T, registry: &Registry, now: Instant) -> Delivery<T> {
        let mut delivery = Delivery {
            transport,
            protocol: T::Protocol::default(),
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
            notices: None,
        };
        delivery.connected(now, registry);
        delivery
    }

    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// From now on the sink's own notices are kept for [`Delivery::take_notices`] instead of
    /// being logged here.
    pub fn collect_notices(&mut self) {
        self.notices.get_or_insert_with(Vec::new);
    }

    /// The notices collected since the last call (priority, text).
    pub fn take_notices(&mut self) -> Vec<(u8, String)> {
        self.notices
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Logs a notice of the sink's own, or keeps it for another sink to log.
    fn notice(&mut self, priority: u8, message: String) {
        match &mut self.notices {
            Some(notices) => notices.push((priority, message)),
            None => self.log(&Entry::notice(priority, &message)),
        }
    }

    pub fn describe(&self) -> String {
        self.transport.describe().to_string()
    }

    pub fn stats(&self) -> DeliveryStats {
        self.stats
    }

    /// Whether the loop may read more from clients: little is queued and the peer is keeping
    /// up with what is in flight.
    pub fn has_room(&self) -> bool {
        self.pending.len() < QUEUE_LIMIT && self.untaken() < IN_FLIGHT_MAX
    }

    /// In-flight entries the peer may not have taken.
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

    /// Encodes and queues an entry; [`Delivery::flush`] sends it.
    pub fn log(&mut self, entry: &Entry<'_>) {
        let mut encoded = self
            .spare
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(T::Protocol::ENTRY_CAPACITY));
        encoded.clear();
        self.protocol.encode(&mut encoded, entry);
        self.pending.push_back(encoded);
    }

    /// Takes out what is queued and not sent (a reload hands it to the next sink).
    pub fn take_pending(&mut self) -> Vec<Vec<u8>> {
        self.pending_marked = 0;
        self.pending.drain(..).collect()
    }

    /// Queues an entry another sink of the same protocol had encoded.
    pub fn adopt(&mut self, encoded: Vec<u8>) {
        self.pending.push_back(encoded);
    }

    /// Sends what is queued without waiting, connecting first if the peer was gone and a
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
        if !self.in_flight.is_empty() && self.look_due(now) {
            if let Err(e) = self.trim_in_flight(now) {
                self.went_down(now, &e);
                return;
            }
        }
        // Over once all is sent (the look may just have found the peer gone again).
        if !self.pending.is_empty() {
            return;
        }
        if let Some(outage) = self.outage.take() {
            let message = format!(
                "{} was unreachable for {:.1} s; {} entries were held meanwhile and are \
                 delivered now, {} of them sent again because {} may have lost them \
                 (marked {})",
                self.transport.describe(),
                now.duration_since(outage.since).as_secs_f64(),
                self.sends - outage.sends_before,
                outage.redelivered,
                T::Protocol::PEER,
                T::Protocol::MARK,
            );
            self.notice(priority::WARNING, message);
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
            let for_room =
                !self.pending.is_empty() || self.transport.state() == LinkState::Connecting;
            self.transport
                .wait(until.saturating_duration_since(now), for_room);
        }
        let last_look = matches!(T::Protocol::LOOKS, Looks::WhenDue { .. });
        if last_look && self.transport.state() == LinkState::Up && !self.in_flight.is_empty() {
            // A last exact look: only what the peer has not taken is counted.
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
                let _ = writeln!(err, "{}", T::Protocol::text_of(&sent.encoded));
            }
        }
        for encoded in self.pending.drain(..) {
            let _ = writeln!(err, "{}", T::Protocol::text_of(&encoded));
        }
        self.pending_marked = 0;
        self.stats.undelivered += n as u64;
    }

    /// Entries not delivered yet: those queued and, where a close would lose them, those the
    /// peer has not acknowledged.
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
            LinkState::Up => return true,
            LinkState::Connecting => self.transport.finish_connect(),
            LinkState::Down => {
                if matches!(self.wait, Wait::Reconnect(t) if t > now) {
                    return false;
                }
                match self.transport.connect(registry, now) {
                    Ok(LinkState::Connecting) => {
                        self.wait = Wait::Connect(now + CONNECT_TIMEOUT);
                        self.transport.finish_connect()
                    }
                    other => other,
                }
            }
        };
        match result {
            Ok(LinkState::Up) => {
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
        self.backoff = (self.backoff * 2).min(T::Protocol::RECONNECT_MAX);
        Wait::Reconnect(at)
    }

    fn begin_outage(&mut self, now: Instant, error: &io::Error) {
        if self.outage.is_none() {
            let _ = writeln!(
                io::stderr(),
                "tcp-listener: {} unreachable ({error}); holding entries and retrying",
                self.transport.describe()
            );
            self.stats.outages += 1;
            self.outage = Some(Outage {
                since: now,
                sends_before: self.sends,
                redelivered: 0,
            });
        }
    }

    /// Whether a flush that got this far looks at what the peer has taken.
    fn look_due(&self, now: Instant) -> bool {
        match T::Protocol::LOOKS {
            Looks::AfterEachSend => {
                self.sends_since_trim > 0 || self.trim_at.is_some_and(|t| t <= now)
            }
            Looks::WhenDue { .. } => self.trim_at.is_none_or(|t| t <= now),
        }
    }

    /// Looks at what the peer has taken after [`TRIM_EVERY`] sends, or with
    /// [`IN_FLIGHT_MAX`] entries it may not have taken.
    fn maybe_trim(&mut self, now: Instant) -> io::Result<()> {
        if self.sends_since_trim >= TRIM_EVERY || self.untaken() >= IN_FLIGHT_MAX {
            self.trim_in_flight(now)?;
        }
        Ok(())
    }

    /// Forgets the in-flight entries the peer has certainly taken. An error: the peer is lost.
    ///
    /// - The socket's unsettled bytes (SIOCOUTQ: each entry's wire bytes at least) bound how
    ///   many of the newest entries may not be taken; [`Protocol::TAKEN_UNSTORED`] more are
    ///   kept (journald takes one datagram at a time and stores it before it takes the next:
    ///   the last one it read may not be stored yet; a large entry, a memfd, takes a while).
    /// - A peer that is gone frees its queue, and the count drops to 0 as if it had taken
    ///   everything. So before forgetting anything, [`Transport::check_open`] and
    ///   [`Transport::probe`] make sure it is alive, or ([`Transport::confirms_by_send`]) what
    ///   it has taken is forgotten only at the next successful send.
    fn trim_in_flight(&mut self, now: Instant) -> io::Result<()> {
        self.sends_since_trim = 0;
        let unsettled = self.transport.unsettled_bytes()?;
        // A reset connection forgets its queue: make sure the count came from a live one.
        self.transport.check_open()?;
        // The bytes written of the front pending entry are in the queue too.
        let unsettled = unsettled.saturating_sub(self.written);
        let mut maybe_untaken = 0;
        let mut sum = 0;
        if unsettled > 0 {
            for sent in self.in_flight.iter().rev() {
                maybe_untaken += 1;
                sum += sent.wire_len;
                if sum >= unsettled {
                    break;
                }
            }
        }
        let held = maybe_untaken + T::Protocol::TAKEN_UNSTORED;
        let taken = self.in_flight.len().saturating_sub(held);
        let progress = if self.transport.confirms_by_send() {
            let progress = taken > self.taken_unconfirmed;
            self.taken_unconfirmed = taken;
            progress
        } else {
            if taken > 0 {
                if let Err(e) = self.transport.probe() {
                    if classify(&e) == Failure::Gone {
                        return Err(e);
                    }
                }
            }
            for _ in 0..taken {
                let sent = self.in_flight.pop_front().expect("taken from in flight");
                self.recycle(sent.encoded);
            }
            taken > 0
        };
        self.trim_retry = match T::Protocol::LOOKS {
            Looks::WhenDue { up_to } if !progress => (self.trim_retry * 2).min(up_to),
            _ => TRIM_RETRY,
        };
        // Nothing more to learn from the socket once all is taken (confirmed or not).
        self.trim_at = (maybe_untaken > 0).then_some(now + self.trim_retry);
        Ok(())
    }

    fn recycle(&mut self, mut encoded: Vec<u8>) {
        if self.spare.len() < SPARE_MAX {
            encoded.clear();
            self.spare.push(encoded);
        }
    }

    /// Decides what a failed send means: a full queue (wait), no descriptors or memory
    /// (later; nothing is sent again) or the peer gone (reconnect).
    fn after_error(&mut self, now: Instant, error: &io::Error) {
        match classify(error) {
            Failure::Full => self.wait = Wait::Room(now + FULL_QUEUE_RETRY),
            Failure::OutOfResources => self.wait = Wait::Resources(now + RETRY_INTERVAL),
            Failure::Gone => self.went_down(now, error),
        }
    }

    /// The peer is lost: what it had not taken may be lost with it, so it is queued again,
    /// first, and a reconnect is tried later.
    fn went_down(&mut self, now: Instant, error: &io::Error) {
        self.begin_outage(now, error);
        let outage = self.outage.as_mut().expect("begun");
        while let Some(sent) = self.in_flight.pop_back() {
            let mut encoded = sent.encoded;
            if !sent.marked {
                T::Protocol::mark_redelivered(&mut encoded);
            }
            self.pending.push_front(encoded);
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
