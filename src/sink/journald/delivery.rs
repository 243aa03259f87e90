//! Delivery to journald: what is queued, what is in flight, and what happens when journald is
//! slow, full or gone. No system call here: the socket is a [`Transport`], so this state
//! machine is unit-tested against a scripted journald.
//!
//! - Entries are queued by [`Delivery::log`] and sent by [`Delivery::flush`], [`BATCH`] per
//!   sendmmsg(2); an entry too large for a datagram goes alone, as a memfd.
//! - A sent entry stays *in flight* until journald has certainly read it (SIOCOUTQ says how
//!   many bytes of ours it has not read). If journald dies, what it had not read dies with it:
//!   the in-flight entries are queued again, first, marked `REDELIVERED=1`.
//! - A full queue (EAGAIN) is retried soon; journald gone (ECONNREFUSED, ENOENT, …) starts an
//!   outage: entries are held and a reconnect is tried every [`RETRY_INTERVAL`]; once all is
//!   delivered again one notice says how long it lasted and how many entries were held.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use mio::Registry;

use super::encode::{encode_entry_cached, encode_field, message_of, PeerFields};
pub use super::socket::BATCH;
use crate::entry::{priority, Entry};
use crate::sink::DeliveryStats;

/// What the delivery state machine needs from the journal socket.
pub trait Transport {
    /// The journal socket's path, for messages.
    fn path(&self) -> &Path;
    /// (Re)connects to journald and registers for writable events.
    fn connect(&mut self, registry: &Registry) -> io::Result<()>;
    fn disconnect(&mut self);
    fn is_connected(&self) -> bool;
    /// Sends the first entries of `entries`, one datagram each, in one call; returns how many
    /// went, and the bytes each one occupies in `wire_len`. When the first cannot go the error
    /// says why (EMSGSIZE: too large for a datagram, see [`Transport::send_large`]).
    fn send_batch(&mut self, entries: &[&[u8]], wire_len: &mut [usize]) -> io::Result<usize>;
    /// Sends an entry too large for a datagram (as a sealed memfd); returns its wire bytes.
    fn send_large(&mut self, entry: &[u8]) -> io::Result<usize>;
    /// Bytes of our datagrams journald has not read yet.
    fn unread_bytes(&self) -> io::Result<usize>;
    /// Whether journald is still there, without waiting: a datagram it ignores (empty).
    fn probe(&self) -> io::Result<()>;
    /// Waits at most `timeout` for room to send.
    fn wait_writable(&self, timeout: Duration);
}

/// How often to try to reach a journald that has gone away.
pub const RETRY_INTERVAL: Duration = Duration::from_millis(250);
/// How soon to retry a full queue even if no writable event arrives.
const FULL_QUEUE_RETRY: Duration = Duration::from_millis(50);
/// Buffers of forgotten in-flight entries kept for reuse.
const SPARE_MAX: usize = 128;
/// The capacity of a new entry buffer: a line of a hundred bytes or so with its fields.
const ENTRY_CAPACITY: usize = 384;
/// In-flight entries kept at most; past this the sink waits for journald to read.
const IN_FLIGHT_MAX: usize = 2048;
/// Sends between two looks at how much journald has read.
const TRIM_EVERY: u32 = 64;
/// How soon to look again while journald still has unread entries of ours.
const TRIM_RETRY: Duration = Duration::from_millis(10);

/// Entries queued at most before [`Delivery::has_room`] says no: the loop then stops reading
/// clients until a flush has sent them. At [`BATCH`], one turn of the loop reads clients until
/// a sendmmsg's worth of entries is queued, so one sendmmsg carries the lines of several reads
/// and clients. Measured against 1 (send after every read that produced an entry), with 8
/// clients × 25,000 lines of 64 bytes into journald: 2,200 sendmmsg calls instead of 9,044 (91
/// entries per call instead of 22) and 19,341 system calls in all instead of 45,167. What it
/// costs: up to BATCH entries, plus those of one read, queued at a time.
pub const QUEUE_LIMIT: usize = BATCH;

/// An entry journald may not have read yet.
struct InFlight {
    encoded: Vec<u8>,
    /// Bytes it occupies in the datagram (0 when it went as a memfd).
    wire_len: usize,
    /// Already marked `REDELIVERED=1`.
    marked: bool,
}

/// Why (and until when) the next flush need not try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    Nothing,
    /// journald is gone: reconnect then.
    Reconnect(Instant),
    /// journald's queue was full: try again then (or at a writable event).
    Room(Instant),
    /// Out of descriptors or memory: try again then.
    Resources(Instant),
}

/// journald unreachable since `since`.
struct Outage {
    since: Instant,
    /// [`Delivery::sends`] when it began: every send after it is an entry held meanwhile.
    sends_before: u64,
    redelivered: u64,
}

pub struct Delivery<T: Transport> {
    transport: T,
    /// Encoded entries waiting to be sent, oldest first.
    pending: VecDeque<Vec<u8>>,
    /// How many entries at the front of `pending` are marked `REDELIVERED=1` already.
    pending_marked: usize,
    /// Entries sent but perhaps not yet read by journald, oldest first.
    in_flight: VecDeque<InFlight>,
    /// Buffers of trimmed in-flight entries, reused so that tracking allocates nothing.
    spare: Vec<Vec<u8>>,
    sends_since_trim: u32,
    peer_fields: PeerFields,
    wait: Wait,
    /// When to look again at what journald has read.
    trim_at: Option<Instant>,
    outage: Option<Outage>,
    /// Entries sent, redeliveries included.
    sends: u64,
    stats: DeliveryStats,
    /// The sink's own notices (an outage over), collected for another sink to log instead
    /// of being logged here: a journal namespace's sink says them in the main journal.
    notices: Option<Vec<(u8, String)>>,
}

impl<T: Transport> Delivery<T> {
    /// Connects at once; if journald cannot be reached, an outage starts.
    pub fn new(transport: T, registry: &Registry, now: Instant) -> Delivery<T> {
        let mut delivery = Delivery {
            transport,
            pending: VecDeque::new(),
            pending_marked: 0,
            in_flight: VecDeque::new(),
            spare: Vec::new(),
            sends_since_trim: 0,
            peer_fields: PeerFields::default(),
            wait: Wait::Nothing,
            trim_at: None,
            outage: None,
            sends: 0,
            stats: DeliveryStats::default(),
            notices: None,
        };
        if let Err(e) = delivery.transport.connect(registry) {
            delivery.went_down(now, &e);
        }
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

    pub fn stats(&self) -> DeliveryStats {
        self.stats
    }

    /// Whether the loop may read more from clients: little is queued and journald is keeping
    /// up with what is in flight.
    pub fn has_room(&self) -> bool {
        self.pending.len() < QUEUE_LIMIT && self.in_flight.len() < IN_FLIGHT_MAX
    }

    /// When [`Delivery::flush`] wants to be called again even without an event.
    pub fn wake_at(&self) -> Option<Instant> {
        let wait = match self.wait {
            Wait::Nothing => None,
            Wait::Reconnect(t) => Some(t),
            Wait::Room(t) | Wait::Resources(t) => Some(t).filter(|_| !self.pending.is_empty()),
        };
        let trim = self.trim_at.filter(|_| !self.in_flight.is_empty());
        match (wait, trim) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Queues an entry; [`Delivery::flush`], which the server calls at the end of every turn
    /// of its loop, sends it.
    pub fn log(&mut self, entry: &Entry<'_>) {
        // A new buffer is made big enough for a typical entry at once: grown from empty it
        // would be reallocated five or six times (measured: 40% of the entries of a burst
        // found no spare buffer, and reallocating them was a fifth of the daemon's work).
        let mut encoded = self
            .spare
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(ENTRY_CAPACITY));
        encoded.clear();
        encode_entry_cached(&mut encoded, entry, &mut self.peer_fields);
        self.pending.push_back(encoded);
    }

    /// Takes out what is queued and not sent (a reload hands it to the next sink).
    pub fn take_pending(&mut self) -> Vec<Vec<u8>> {
        self.pending_marked = 0;
        self.pending.drain(..).collect()
    }

    /// Queues an entry another journald sink had encoded.
    pub fn adopt(&mut self, encoded: Vec<u8>) {
        self.pending.push_back(encoded);
    }

    /// Sends what is queued, reconnecting first if journald was gone and a retry is due.
    pub fn flush(&mut self, now: Instant, registry: &Registry) {
        if !self.transport.is_connected() {
            if matches!(self.wait, Wait::Reconnect(t) if t > now) {
                return;
            }
            if self.transport.connect(registry).is_err() {
                self.wait = Wait::Reconnect(now + RETRY_INTERVAL);
                return;
            }
        }
        self.wait = Wait::Nothing;
        if let Err(e) = self.send_pending(now) {
            self.after_error(now, &e);
            return;
        }
        // Nothing sent since the last look, which found nothing unread: nothing to learn.
        let due = self.sends_since_trim > 0 || self.trim_at.is_some_and(|t| t <= now);
        if !self.in_flight.is_empty() && due {
            self.trim_in_flight(now);
        }
        // Over once all is sent (the look may just have found journald gone again).
        if !self.pending.is_empty() {
            return;
        }
        if let Some(outage) = self.outage.take() {
            let message = format!(
                "journald at {} was unreachable for {:.1} s; {} entries were held meanwhile and are \
                 delivered now, {} of them sent again because journald may have lost them \
                 (marked REDELIVERED=1)",
                self.transport.path().display(),
                now.duration_since(outage.since).as_secs_f64(),
                self.sends - outage.sends_before,
                outage.redelivered,
            );
            self.notice(priority::WARNING, message);
        }
    }

    /// Delivers everything queued before `deadline`; what cannot be delivered by then is
    /// written to stderr and counted as undelivered.
    pub fn drain(&mut self, deadline: Instant, registry: &Registry) {
        loop {
            let now = Instant::now();
            self.flush(now, registry);
            if self.pending.is_empty() || now >= deadline {
                break;
            }
            let wait_until = self.wake_at().unwrap_or(deadline).min(deadline);
            self.transport
                .wait_writable(wait_until.saturating_duration_since(now));
        }
        if self.pending.is_empty() {
            return;
        }
        let mut err = io::stderr().lock();
        let _ = writeln!(
            err,
            "tcp-listener: {} entries could not be delivered to journald at {}; they follow",
            self.pending.len(),
            self.transport.path().display()
        );
        for encoded in self.pending.drain(..) {
            let _ = writeln!(err, "{}", message_of(&encoded));
            self.stats.undelivered += 1;
        }
        self.pending_marked = 0;
    }

    /// Sends queued entries, [`BATCH`] at a time; stops at the first error (a full queue,
    /// journald gone), leaving the rest queued.
    fn send_pending(&mut self, now: Instant) -> io::Result<()> {
        let mut wire_len = [0; BATCH];
        while !self.pending.is_empty() {
            let mut batch: [&[u8]; BATCH] = [&[]; BATCH];
            let n = self.pending.len().min(BATCH);
            for (slot, entry) in batch.iter_mut().zip(&self.pending) {
                *slot = entry;
            }
            match self.transport.send_batch(&batch[..n], &mut wire_len) {
                Ok(sent) => {
                    for &len in &wire_len[..sent] {
                        self.sent(len, now);
                    }
                }
                // Too large for a datagram: this one goes alone, as a memfd.
                Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => {
                    let front = self.pending.front().expect("not empty");
                    let len = self.transport.send_large(front)?;
                    self.sent(len, now);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Moves the front entry, just sent, to the in-flight entries until journald has read it.
    fn sent(&mut self, wire_len: usize, now: Instant) {
        let encoded = self.pending.pop_front().expect("sent from pending");
        let marked = self.pending_marked > 0;
        self.pending_marked = self.pending_marked.saturating_sub(1);
        self.stats.delivered += 1;
        self.sends += 1;
        self.in_flight.push_back(InFlight {
            encoded,
            wire_len,
            marked,
        });
        self.sends_since_trim += 1;
        if self.sends_since_trim >= TRIM_EVERY || self.in_flight.len() >= IN_FLIGHT_MAX {
            self.trim_in_flight(now);
        }
    }

    /// Forgets the in-flight entries journald has certainly stored.
    ///
    /// - The socket's unread bytes (SIOCOUTQ: the true size of our datagrams still queued at
    ///   journald, each at least its length) bound how many of the newest entries may still
    ///   be unread.
    /// - journald takes one datagram at a time and stores it before it takes the next, so of
    ///   the entries it has read, only the last may not be stored yet (a large entry, a memfd,
    ///   takes a while): it is kept too, until a later one has been read.
    /// - A journald that dies frees its queue, and SIOCOUTQ drops to 0 as if it had read
    ///   everything. So before forgetting anything, a probe (a datagram journald ignores)
    ///   checks it is alive; if it is gone, what is in flight is sent again.
    fn trim_in_flight(&mut self, now: Instant) {
        self.sends_since_trim = 0;
        let Ok(unread) = self.transport.unread_bytes() else {
            return;
        };
        let mut maybe_unread = 0;
        let mut sum = 0;
        if unread > 0 {
            for sent in self.in_flight.iter().rev() {
                maybe_unread += 1;
                sum += sent.wire_len;
                if sum >= unread {
                    break;
                }
            }
        }
        let keep = maybe_unread + 1;
        if self.in_flight.len() > keep {
            if let Err(e) = self.transport.probe() {
                if is_gone(&e) {
                    self.went_down(now, &e);
                    return;
                }
            }
            while self.in_flight.len() > keep {
                let mut sent = self.in_flight.pop_front().expect("len > keep");
                // A few kept for reuse; keeping up to IN_FLIGHT_MAX would hold ~0.6 MB for
                // good after any burst (measured: +60 B per connection with 10,000 idle
                // clients).
                if self.spare.len() < SPARE_MAX {
                    sent.encoded.clear();
                    self.spare.push(sent.encoded);
                }
            }
        }
        // Look again soon while journald has entries of ours to read; the last one read
        // waits for the next send.
        self.trim_at = (maybe_unread > 0).then_some(now + TRIM_RETRY);
    }

    /// Decides what a failed send means: a full queue (wait) or journald gone (retry later).
    fn after_error(&mut self, now: Instant, error: &io::Error) {
        if is_full(error) {
            self.wait = Wait::Room(now + FULL_QUEUE_RETRY);
        } else if is_out_of_resources(error) {
            // Out of descriptors or memory even with the reserve (a memfd could not be
            // made): journald is not gone, so nothing is sent again; try later.
            self.wait = Wait::Resources(now + RETRY_INTERVAL);
        } else {
            self.went_down(now, error);
        }
    }

    /// journald is gone: what it had not read died with it, so it is queued again, first.
    fn went_down(&mut self, now: Instant, error: &io::Error) {
        let outage = self.outage.get_or_insert_with(|| {
            let _ = writeln!(
                io::stderr(),
                "tcp-listener: journald at {} unreachable ({error}); holding entries and retrying",
                self.transport.path().display()
            );
            Outage {
                since: now,
                sends_before: self.sends,
                redelivered: 0,
            }
        });
        while let Some(sent) = self.in_flight.pop_back() {
            let mut encoded = sent.encoded;
            if !sent.marked {
                encode_field(&mut encoded, "REDELIVERED", b"1");
            }
            self.pending.push_front(encoded);
            self.pending_marked += 1;
            outage.redelivered += 1;
        }
        self.transport.disconnect();
        self.wait = Wait::Reconnect(now + RETRY_INTERVAL);
    }
}

/// journald's queue is full (or the send was interrupted): it is there, try again soon.
fn is_full(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EAGAIN) | Some(libc::ENOBUFS) | Some(libc::EINTR)
    )
}

/// This process ran out of descriptors or memory: nothing to do with journald.
fn is_out_of_resources(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOMEM)
    )
}

/// journald is not there (dead, stopped, its socket removed).
fn is_gone(e: &io::Error) -> bool {
    !is_full(e) && !is_out_of_resources(e)
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;
    use crate::entry::Entry;

    /// A scripted journald: a socket queue of at most `qlen` datagrams of at most
    /// `max_datagram` bytes, which the test reads, kills and restarts.
    #[derive(Default)]
    struct Journald {
        running: bool,
        qlen: usize,
        max_datagram: usize,
        /// Datagrams sent and not yet read (lost if journald dies).
        queue: VecDeque<Vec<u8>>,
        /// What journald stored.
        stored: Vec<Vec<u8>>,
        /// Errors to return from the next sends, before looking at the queue.
        fail_next: VecDeque<i32>,
        batches: Vec<usize>,
    }

    impl Journald {
        fn read(&mut self, n: usize) {
            for _ in 0..n {
                match self.queue.pop_front() {
                    Some(d) => self.stored.push(d),
                    None => return,
                }
            }
        }
        fn read_all(&mut self) {
            self.read(usize::MAX);
        }
        fn kill(&mut self) {
            self.running = false;
            self.queue.clear();
        }
        /// The MESSAGE of each stored entry, and whether it was marked as sent again.
        fn messages(&self) -> Vec<(String, bool)> {
            self.stored
                .iter()
                .map(|d| {
                    let marked = d.ends_with(b"REDELIVERED=1\n");
                    (message_of(d).into_owned(), marked)
                })
                .collect()
        }
    }

    #[derive(Clone)]
    struct Fake {
        journald: Rc<RefCell<Journald>>,
        connected: bool,
    }

    fn errno(e: i32) -> io::Error {
        io::Error::from_raw_os_error(e)
    }

    impl Transport for Fake {
        fn path(&self) -> &Path {
            Path::new("/fake/journal/socket")
        }
        fn connect(&mut self, _: &Registry) -> io::Result<()> {
            if !self.journald.borrow().running {
                return Err(errno(libc::ECONNREFUSED));
            }
            self.connected = true;
            Ok(())
        }
        fn disconnect(&mut self) {
            self.connected = false;
        }
        fn is_connected(&self) -> bool {
            self.connected
        }
        fn send_batch(&mut self, entries: &[&[u8]], wire_len: &mut [usize]) -> io::Result<usize> {
            let mut j = self.journald.borrow_mut();
            if let Some(e) = j.fail_next.pop_front() {
                return Err(errno(e));
            }
            if !j.running {
                return Err(errno(libc::ECONNREFUSED));
            }
            let mut sent = 0;
            for (entry, len) in entries.iter().zip(wire_len.iter_mut()) {
                let error = if entry.len() > j.max_datagram {
                    libc::EMSGSIZE
                } else if j.queue.len() >= j.qlen {
                    libc::EAGAIN
                } else {
                    j.queue.push_back(entry.to_vec());
                    *len = entry.len();
                    sent += 1;
                    continue;
                };
                if sent == 0 {
                    return Err(errno(error));
                }
                break;
            }
            j.batches.push(sent);
            Ok(sent)
        }
        fn send_large(&mut self, entry: &[u8]) -> io::Result<usize> {
            let mut j = self.journald.borrow_mut();
            if !j.running {
                return Err(errno(libc::ECONNREFUSED));
            }
            if j.queue.len() >= j.qlen {
                return Err(errno(libc::EAGAIN));
            }
            j.queue.push_back(entry.to_vec());
            Ok(0)
        }
        fn unread_bytes(&self) -> io::Result<usize> {
            // The kernel counts more than the payload (an skb per datagram): so does this.
            let j = self.journald.borrow();
            Ok(j.queue.iter().map(|d| d.len() + 10).sum())
        }
        fn probe(&self) -> io::Result<()> {
            if self.journald.borrow().running {
                Ok(())
            } else {
                Err(errno(libc::ECONNREFUSED))
            }
        }
        fn wait_writable(&self, _: Duration) {}
    }

    struct Setup {
        journald: Rc<RefCell<Journald>>,
        delivery: Delivery<Fake>,
        poll: mio::Poll,
    }

    fn setup(qlen: usize) -> Setup {
        let journald = Rc::new(RefCell::new(Journald {
            running: true,
            qlen,
            max_datagram: 1000,
            ..Journald::default()
        }));
        let poll = mio::Poll::new().unwrap();
        let fake = Fake {
            journald: Rc::clone(&journald),
            connected: false,
        };
        let delivery = Delivery::new(fake, poll.registry(), Instant::now());
        Setup {
            journald,
            delivery,
            poll,
        }
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
        /// Flushes and lets journald read until everything is stored.
        fn settle(&mut self, mut now: Instant) {
            for _ in 0..1000 {
                self.flush(now);
                self.journald.borrow_mut().read_all();
                if self.delivery.pending.is_empty() {
                    self.flush(now);
                    self.journald.borrow_mut().read_all();
                    return;
                }
                now += Duration::from_millis(50);
            }
            panic!("never settled");
        }
    }

    /// Each of `0..n` once, in order, then the given notices; `marked` ones may repeat.
    fn assert_each_once_in_order(got: &[(String, bool)], n: usize) {
        let mut want = 0;
        for (message, marked) in got {
            let Some(i) = message
                .strip_prefix("entry ")
                .and_then(|rest| rest.split(' ').next()?.parse::<usize>().ok())
            else {
                continue;
            };
            if i == want {
                want += 1;
            } else {
                assert!(*marked && i < want, "{message} out of order in {got:?}");
            }
        }
        assert_eq!(want, n, "{got:?}");
    }

    #[test]
    fn entries_go_in_batches_in_order() {
        let mut s = setup(1000);
        let now = Instant::now();
        s.log(0..150);
        assert!(!s.delivery.has_room());
        s.flush(now);
        assert!(s.delivery.has_room());
        assert_eq!(s.journald.borrow().batches, [64, 64, 22]);
        s.journald.borrow_mut().read_all();
        // Nothing sent since: the next look is when the retry is due.
        s.flush(now);
        assert_eq!(s.delivery.in_flight.len(), 150);
        s.flush(now + TRIM_RETRY);
        assert_eq!(
            s.delivery.in_flight.len(),
            1,
            "all read: only the last one stays in flight until a later one is read"
        );
        assert_eq!(s.delivery.wake_at(), None);
        assert_each_once_in_order(&s.journald.borrow().messages(), 150);
        assert_eq!(s.delivery.stats().delivered, 150);
    }

    #[test]
    fn a_full_queue_holds_the_entries_and_says_when_to_retry() {
        let mut s = setup(10);
        let now = Instant::now();
        s.log(0..100);
        s.flush(now);
        assert_eq!(s.journald.borrow().queue.len(), 10);
        assert_eq!(s.delivery.pending.len(), 90);
        assert!(!s.delivery.has_room());
        assert_eq!(s.delivery.wake_at(), Some(now + FULL_QUEUE_RETRY));
        // journald reads a few: the next flush fills the queue again.
        s.journald.borrow_mut().read(4);
        s.flush(now);
        assert_eq!(s.delivery.pending.len(), 86);
        s.settle(now);
        assert_each_once_in_order(&s.journald.borrow().messages(), 100);
        assert!(s.journald.borrow().messages().iter().all(|(_, m)| !m));
        assert!(s.delivery.has_room());
    }

    #[test]
    fn an_entry_too_large_for_a_datagram_goes_alone_in_its_turn() {
        let mut s = setup(1000);
        let now = Instant::now();
        s.log(0..3);
        let big = format!("entry 3 {}", "x".repeat(5000));
        s.delivery.log(&Entry::notice(6, &big));
        s.log(4..6);
        s.settle(now);
        let got = s.journald.borrow().messages();
        assert_eq!(got.len(), 6);
        assert!(got[3].0.starts_with("entry 3 xxx"));
        assert_eq!(s.journald.borrow().batches, [3, 2]);
    }

    #[test]
    fn journald_gone_holds_entries_retries_and_redelivers_what_it_had_not_read() {
        let mut s = setup(1000);
        let t0 = Instant::now();
        s.log(0..20);
        s.flush(t0);
        // journald stores 5, the daemon sees it (nothing more is in flight than the 15
        // unread), and journald dies with those 15 unread.
        s.journald.borrow_mut().read(5);
        s.flush(t0 + TRIM_RETRY);
        let kept = s.delivery.in_flight.len();
        assert!((15..20).contains(&kept), "{kept}");
        s.journald.borrow_mut().kill();
        s.log(20..30);
        s.flush(t0);
        assert!(!s.delivery.transport().is_connected());
        assert_eq!(s.delivery.wake_at(), Some(t0 + RETRY_INTERVAL));
        // Before the retry is due nothing is tried; while journald is down, retries fail.
        s.flush(t0 + RETRY_INTERVAL / 2);
        s.flush(t0 + RETRY_INTERVAL);
        assert_eq!(s.delivery.wake_at(), Some(t0 + 2 * RETRY_INTERVAL));
        s.log(30..35);
        s.journald.borrow_mut().running = true;
        let t1 = t0 + 2 * RETRY_INTERVAL;
        s.settle(t1);
        let got = s.journald.borrow().messages();
        assert_each_once_in_order(&got, 35);
        // What was still in flight came again, marked: the 15 journald had not read, and no
        // more than the few the unread byte count cannot tell apart; never the first five.
        let marked: Vec<usize> = got
            .iter()
            .filter(|(_, m)| *m)
            .map(|(t, _)| t.strip_prefix("entry ").unwrap().parse().unwrap())
            .collect();
        assert_eq!(marked, (20 - kept..20).collect::<Vec<_>>(), "{got:?}");
        let notice = &got.last().unwrap().0;
        let held = kept + 15;
        assert!(
            notice.contains(&format!(
                "was unreachable for 0.5 s; {held} entries were held meanwhile"
            )) && notice.contains(&format!("{kept} of them sent again")),
            "{notice}"
        );
    }

    #[test]
    fn killed_twice_an_entry_is_marked_once() {
        let mut s = setup(1000);
        let t0 = Instant::now();
        s.log(0..3);
        s.flush(t0);
        s.journald.borrow_mut().kill();
        s.log(3..4);
        s.flush(t0); // the send sees it
        s.journald.borrow_mut().running = true;
        s.flush(t0 + RETRY_INTERVAL); // redelivered, unread again
        s.journald.borrow_mut().kill();
        s.log(4..5);
        s.flush(t0 + RETRY_INTERVAL);
        s.journald.borrow_mut().running = true;
        s.settle(t0 + 2 * RETRY_INTERVAL);
        let j = s.journald.borrow();
        for d in &j.stored {
            let n = d
                .windows(b"REDELIVERED=1\n".len())
                .filter(|w| w == b"REDELIVERED=1\n")
                .count();
            assert!(n <= 1, "{}", String::from_utf8_lossy(d));
        }
        assert_each_once_in_order(&j.messages(), 5);
    }

    #[test]
    fn a_partly_read_queue_keeps_only_the_unread_entries_in_flight() {
        let mut s = setup(1000);
        let now = Instant::now();
        s.log(0..100);
        s.flush(now);
        s.journald.borrow_mut().read(90);
        s.log(100..164); // 64 more sends: a look at what journald has read
        s.flush(now);
        let in_flight = s.delivery.in_flight.len();
        // 74 unread; each unread datagram counts more than its payload, so some more may be
        // kept, never fewer.
        assert!((74..100).contains(&in_flight), "{in_flight}");
        assert_eq!(s.delivery.wake_at(), Some(now + TRIM_RETRY));
        s.journald.borrow_mut().read_all();
        s.flush(now + TRIM_RETRY);
        assert_eq!(s.delivery.in_flight.len(), 1);
        assert!(s.delivery.spare.len() <= SPARE_MAX);
    }

    #[test]
    fn journald_dying_while_nothing_is_sent_loses_nothing() {
        // Its queue is freed, so the unread byte count drops to 0 as if all had been read.
        let mut s = setup(1000);
        let t0 = Instant::now();
        s.log(0..10);
        s.flush(t0);
        s.journald.borrow_mut().read(3);
        s.journald.borrow_mut().kill();
        s.flush(t0); // nothing to send: only a look at what journald read
        s.flush(t0 + TRIM_RETRY);
        s.journald.borrow_mut().running = true;
        s.settle(t0 + RETRY_INTERVAL);
        let got = s.journald.borrow().messages();
        assert_each_once_in_order(&got, 10);
        assert!(got.last().unwrap().0.contains("sent again"), "{got:?}");
    }

    #[test]
    fn an_outage_the_look_finds_lasts_until_journald_is_back() {
        let mut s = setup(1000);
        let t0 = Instant::now();
        s.log(0..10);
        s.flush(t0);
        s.journald.borrow_mut().kill();
        // Nothing to send: the next look at what journald read finds it gone.
        s.flush(t0 + TRIM_RETRY);
        assert!(!s.delivery.transport().is_connected());
        assert!(
            s.delivery.outage.is_some(),
            "not over while journald is gone"
        );
        s.journald.borrow_mut().running = true;
        s.settle(t0 + 2 * RETRY_INTERVAL);
        let got = s.journald.borrow().messages();
        assert_each_once_in_order(&got, 10);
        let notices: Vec<&String> = got
            .iter()
            .map(|(m, _)| m)
            .filter(|m| m.contains("was unreachable"))
            .collect();
        assert_eq!(notices.len(), 1, "{got:?}");
        assert!(
            notices[0].contains("was unreachable for 0.5 s; 10 entries were held meanwhile")
                && notices[0].contains("10 of them sent again"),
            "{}",
            notices[0]
        );
    }

    #[test]
    fn the_last_entry_read_is_kept_until_a_later_one_is_read() {
        // journald took the large entry off its queue and died storing it.
        let mut s = setup(1000);
        let t0 = Instant::now();
        s.log(0..2);
        let big = format!("entry 2 {}", "x".repeat(5000));
        s.delivery.log(&Entry::notice(6, &big));
        s.flush(t0);
        s.journald.borrow_mut().read(2);
        let taken = s.journald.borrow_mut().queue.pop_front().unwrap();
        assert!(message_of(&taken).starts_with("entry 2 "));
        s.flush(t0);
        s.journald.borrow_mut().kill();
        s.log(3..4);
        s.flush(t0);
        s.journald.borrow_mut().running = true;
        s.settle(t0 + RETRY_INTERVAL);
        let got = s.journald.borrow().messages();
        assert_each_once_in_order(&got, 4);
        assert!(got
            .iter()
            .any(|(m, marked)| *marked && m.starts_with("entry 2 ")));
    }

    #[test]
    fn out_of_descriptors_is_not_journald_gone() {
        let mut s = setup(1000);
        let now = Instant::now();
        s.log(0..3);
        s.journald.borrow_mut().fail_next.push_back(libc::EMFILE);
        s.flush(now);
        assert!(s.delivery.transport().is_connected());
        assert_eq!(s.delivery.wake_at(), Some(now + RETRY_INTERVAL));
        assert!(s.delivery.outage.is_none());
        s.settle(now + RETRY_INTERVAL);
        let got = s.journald.borrow().messages();
        assert_each_once_in_order(&got, 3);
        assert_eq!(got.len(), 3, "no notice, no redelivery: {got:?}");
    }

    #[test]
    fn journald_absent_at_start_then_appearing() {
        let journald = Rc::new(RefCell::new(Journald {
            running: false,
            qlen: 100,
            max_datagram: 1000,
            ..Journald::default()
        }));
        let poll = mio::Poll::new().unwrap();
        let t0 = Instant::now();
        let fake = Fake {
            journald: Rc::clone(&journald),
            connected: false,
        };
        let mut s = Setup {
            delivery: Delivery::new(fake, poll.registry(), t0),
            journald,
            poll,
        };
        s.log(0..4);
        s.flush(t0);
        assert_eq!(s.delivery.wake_at(), Some(t0 + RETRY_INTERVAL));
        s.journald.borrow_mut().running = true;
        s.settle(t0 + RETRY_INTERVAL);
        let got = s.journald.borrow().messages();
        assert_each_once_in_order(&got, 4);
        assert!(
            got[4].0.contains("4 entries were held meanwhile"),
            "{got:?}"
        );
    }

    #[test]
    fn drain_gives_what_cannot_be_delivered_to_stderr_and_counts_it() {
        let mut s = setup(1000);
        s.journald.borrow_mut().kill();
        s.log(0..7);
        let registry = s.poll.registry().try_clone().unwrap();
        s.delivery
            .drain(Instant::now() + Duration::from_millis(20), &registry);
        assert_eq!(s.delivery.stats().undelivered, 7);
        assert!(s.delivery.pending.is_empty());
    }
}
