//! The engine against a scripted transport: each send answers what the test scripted (sent,
//! would block, refused, connection lost, out of memory), each connect too, and the peer
//! takes what the test says it takes.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::time::{Duration, Instant};

use mio::Registry;

use super::harness::{errno, Harness};
use crate::entry::Entry;
use crate::sink::delivery::*;

/// Entries as their text; sent again, they end with ` [again]`.
#[derive(Default)]
struct Plain;

/// The longest wait between two looks at a peer that takes nothing.
const LOOK_MAX: Duration = Duration::from_millis(40);

impl Protocol for Plain {
    const PEER: &'static str = "the peer";
    const MARK: &'static str = "[again]";
    const ENTRY_CAPACITY: usize = 0;
    const RECONNECT_MAX: Duration = Duration::from_secs(1);
    const TAKEN_UNSTORED: usize = 0;
    const LOOKS: Looks = Looks::WhenDue { up_to: LOOK_MAX };

    fn encode(&mut self, out: &mut Vec<u8>, entry: &Entry<'_>) {
        out.extend_from_slice(entry.message.as_bytes());
    }

    fn mark_redelivered(encoded: &mut Vec<u8>) {
        encoded.extend_from_slice(b" [again]");
    }

    fn text_of(encoded: &[u8]) -> Cow<'_, str> {
        String::from_utf8_lossy(encoded)
    }
}

/// What a send answers.
#[derive(Debug, Clone, Copy)]
enum Answer {
    /// Takes at most this many entries (datagrams) or bytes (a stream).
    Takes(usize),
    /// Fails with this errno: EAGAIN (would block), ECONNRESET (connection lost), …
    Fails(i32),
}

/// The scripted transport. When no answer is left, a send takes everything and a connect
/// works.
struct Script {
    state: LinkState,
    /// A TCP-like stream (octet-counted frames) rather than datagrams.
    stream: bool,
    /// UDP-like: a datagram is done once sent, and an error concerns that datagram only.
    udp: bool,
    /// Answers to the next connects: an errno.
    connects: VecDeque<i32>,
    sends: VecDeque<Answer>,
    /// What went out: each datagram, or the stream's bytes.
    datagrams: Vec<Vec<u8>>,
    stream_bytes: Vec<u8>,
    /// Bytes sent that the peer has not taken (lost with the connection).
    unsettled: usize,
    /// Looks at the unsettled bytes.
    looks: Cell<usize>,
    /// disconnect(discard = true) was called.
    discarded: bool,
}

impl Default for Script {
    fn default() -> Script {
        Script {
            state: LinkState::Down,
            stream: false,
            udp: false,
            connects: VecDeque::new(),
            sends: VecDeque::new(),
            datagrams: Vec::new(),
            stream_bytes: Vec::new(),
            unsettled: 0,
            looks: Cell::new(0),
            discarded: false,
        }
    }
}

impl Script {
    fn answer(&mut self) -> Answer {
        self.sends.pop_front().unwrap_or(Answer::Takes(usize::MAX))
    }

    /// The text of each entry that went out, in order.
    fn texts(&self) -> Vec<String> {
        if !self.stream {
            let texts = self.datagrams.iter();
            return texts.map(|d| Plain::text_of(d).into_owned()).collect();
        }
        let mut out = Vec::new();
        let mut rest = &self.stream_bytes[..];
        while !rest.is_empty() {
            let sp = rest.iter().position(|&b| b == b' ').expect("LEN SP");
            let len: usize = std::str::from_utf8(&rest[..sp]).unwrap().parse().unwrap();
            out.push(Plain::text_of(&rest[sp + 1..sp + 1 + len]).into_owned());
            rest = &rest[sp + 1 + len..];
        }
        out
    }
}

impl Transport for Script {
    type Protocol = Plain;
    fn describe(&self) -> &str {
        "the scripted peer"
    }
    fn state(&self) -> LinkState {
        self.state
    }
    fn connect(&mut self, _: &Registry, _: Instant) -> io::Result<LinkState> {
        if let Some(e) = self.connects.pop_front() {
            return Err(errno(e));
        }
        self.state = LinkState::Up;
        Ok(self.state)
    }
    fn disconnect(&mut self, discard: bool) {
        self.state = LinkState::Down;
        self.discarded |= discard;
        self.unsettled = 0;
    }
    fn framing(&self) -> OutputFraming {
        if self.stream {
            OutputFraming::OctetCounting
        } else {
            OutputFraming::Datagram
        }
    }
    fn send_datagrams(&mut self, entries: &[&[u8]], wire_len: &mut [usize]) -> io::Result<usize> {
        let n = match self.answer() {
            Answer::Fails(e) => return Err(errno(e)),
            Answer::Takes(0) => return Err(errno(libc::EAGAIN)),
            Answer::Takes(n) => n.min(entries.len()),
        };
        for (entry, len) in entries[..n].iter().zip(wire_len.iter_mut()) {
            self.datagrams.push(entry.to_vec());
            *len = entry.len();
            if !self.udp {
                self.unsettled += entry.len();
            }
        }
        Ok(n)
    }
    fn write_stream(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut room = match self.answer() {
            Answer::Fails(e) => return Err(errno(e)),
            Answer::Takes(n) => n,
        };
        let mut n = 0;
        for b in bufs {
            let take = b.len().min(room);
            self.stream_bytes.extend_from_slice(&b[..take]);
            room -= take;
            n += take;
        }
        self.unsettled += n;
        Ok(n)
    }
    fn rejects(&self, error: &io::Error) -> bool {
        self.udp && classify(error) == Failure::Gone
    }
    fn tracks_unsettled(&self) -> bool {
        !self.udp
    }
    fn unsettled_bytes(&self) -> io::Result<usize> {
        self.looks.set(self.looks.get() + 1);
        Ok(self.unsettled)
    }
    fn holds_unsent(&self) -> bool {
        self.stream && self.state == LinkState::Up
    }
    fn wait(&self, _: Duration, _: bool) {}
}

struct Test {
    delivery: Delivery<Script>,
    poll: mio::Poll,
}

impl Harness for Test {
    type Transport = Script;
    fn parts(&mut self) -> (&mut Delivery<Script>, &mio::Poll) {
        (&mut self.delivery, &self.poll)
    }
    fn peer_takes_all(&mut self) {
        self.delivery.transport.unsettled = 0;
    }
}

impl Test {
    fn script(&mut self) -> &mut Script {
        &mut self.delivery.transport
    }
    fn texts(&self) -> Vec<String> {
        self.delivery.transport.texts()
    }
    /// Counts the looks at what the peer has taken, as the engine makes them.
    fn looks(&self) -> usize {
        self.delivery.transport.looks.get()
    }
}

fn start(script: Script, now: Instant) -> Test {
    let poll = mio::Poll::new().unwrap();
    let delivery = Delivery::new(script, poll.registry(), now);
    Test { delivery, poll }
}

fn numbered(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("entry {i}")).collect()
}

#[test]
fn the_errno_classes() {
    for e in [libc::EAGAIN, libc::ENOBUFS, libc::EINTR] {
        assert_eq!(classify(&errno(e)), Failure::Full, "{e}");
    }
    for e in [libc::EMFILE, libc::ENFILE, libc::ENOMEM] {
        assert_eq!(classify(&errno(e)), Failure::OutOfResources, "{e}");
    }
    for e in [
        libc::ECONNREFUSED,
        libc::ECONNRESET,
        libc::EPIPE,
        libc::ENOENT,
        libc::ENOTCONN,
    ] {
        assert_eq!(classify(&errno(e)), Failure::Gone, "{e}");
    }
    let timeout = io::Error::new(io::ErrorKind::TimedOut, "connect timed out");
    assert_eq!(classify(&timeout), Failure::Gone);
}

#[test]
fn a_refused_connect_starts_an_outage_retried_later_and_later_that_one_notice_ends() {
    let t0 = Instant::now();
    let script = Script {
        connects: [libc::ECONNREFUSED, libc::ECONNREFUSED].into(),
        ..Script::default()
    };
    let mut s = start(script, t0);
    assert_eq!(s.delivery.transport().state(), LinkState::Down);
    assert!(s.delivery.outage.is_some(), "begun at the first refusal");
    s.log(0..3);
    assert_eq!(s.delivery.wake_at(), Some(t0 + RETRY_INTERVAL));
    // Nothing is tried before the retry is due.
    s.flush(t0 + RETRY_INTERVAL / 2);
    assert_eq!(s.script().connects.len(), 1);
    // Refused again: the next wait is twice as long.
    s.flush(t0 + RETRY_INTERVAL);
    assert_eq!(s.delivery.wake_at(), Some(t0 + 3 * RETRY_INTERVAL));
    assert_eq!(s.delivery.pending.len(), 3, "held");
    // Connected: what was held goes, then one notice says how long and how many.
    let t1 = t0 + Duration::from_millis(800);
    s.flush(t1);
    assert_eq!(s.texts(), numbered(0..3));
    assert!(s.delivery.outage.is_none());
    s.flush(t1);
    let texts = s.texts();
    assert_eq!(texts.len(), 4, "{texts:?}");
    assert_eq!(
        texts[3],
        "the scripted peer was unreachable for 0.8 s; 3 entries were held meanwhile and are \
         delivered now, 0 of them sent again because the peer may have lost them (marked \
         [again])"
    );
    // Once connected, the next failure waits the first interval again.
    assert_eq!(s.delivery.backoff, RETRY_INTERVAL);
}

#[test]
fn a_lost_connection_sends_again_first_and_in_order_what_the_peer_had_not_taken_marked_once() {
    let t0 = Instant::now();
    let mut s = start(Script::default(), t0);
    s.log(0..5);
    s.flush(t0);
    // The peer takes entries 0 and 1; a look forgets them.
    s.script().unsettled = "entry 2".len() * 3;
    s.flush(t0 + TRIM_RETRY);
    assert_eq!(s.delivery.in_flight.len(), 3);
    // The connection is lost at the next send: 2, 3 and 4 go again, before 5 and 6.
    s.log(5..7);
    s.script().sends.push_back(Answer::Fails(libc::ECONNRESET));
    s.flush(t0 + TRIM_RETRY);
    assert_eq!(s.delivery.transport().state(), LinkState::Down);
    assert_eq!(s.delivery.pending.len(), 5);
    let t1 = t0 + TRIM_RETRY + RETRY_INTERVAL;
    assert_eq!(s.delivery.wake_at(), Some(t1));
    s.flush(t1);
    s.flush(t1); // the notice
    let texts = s.texts();
    let again = ["entry 2 [again]", "entry 3 [again]", "entry 4 [again]"];
    assert_eq!(texts[..5], numbered(0..5));
    assert_eq!(texts[5..8], again);
    assert_eq!(texts[8..10], numbered(5..7));
    assert!(
        texts[10].contains("5 entries were held meanwhile")
            && texts[10].contains("3 of them sent again"),
        "{texts:?}"
    );
    // Lost again before the peer took anything: all go again, none marked twice.
    s.script().sends.push_back(Answer::Fails(libc::EPIPE));
    s.log(7..8);
    s.flush(t1);
    s.settle_then(t1 + RETRY_INTERVAL, Duration::ZERO, 1);
    let texts = s.texts();
    let notice = format!("{} [again]", texts[10]);
    let second: Vec<&str> = texts[11..].iter().map(String::as_str).collect();
    assert_eq!(
        second[..7],
        [
            "entry 2 [again]",
            "entry 3 [again]",
            "entry 4 [again]",
            "entry 5 [again]",
            "entry 6 [again]",
            &notice,
            "entry 7",
        ]
    );
    let entries = texts.iter().filter(|t| t.starts_with("entry "));
    assert!(
        entries.clone().all(|t| t.matches(" [again]").count() <= 1),
        "{texts:?}"
    );
    assert_eq!(entries.count(), 5 + 5 + 5 + 1);
}

#[test]
fn a_look_every_batch_and_the_in_flight_bound_stop_the_reading_until_the_peer_takes() {
    let mut now = Instant::now();
    let mut s = start(Script::default(), now);
    let mut n = 0;
    while s.delivery.has_room() {
        s.log(n..n + BATCH);
        n += BATCH;
        s.flush(now);
        assert!(n < 10 * IN_FLIGHT_MAX, "never out of room");
    }
    // The peer takes nothing: every entry is kept, up to the bound, with one look at the
    // socket per TRIM_EVERY sends.
    assert!(s.delivery.pending.is_empty());
    assert_eq!(s.delivery.in_flight.len(), IN_FLIGHT_MAX);
    assert_eq!(s.looks(), IN_FLIGHT_MAX / TRIM_EVERY as usize);
    // Meanwhile the looks grow rarer, up to the protocol's longest wait.
    let mut gaps = Vec::new();
    for _ in 0..6 {
        let at = s.delivery.wake_at().expect("a look is due");
        gaps.push(at.duration_since(now));
        now = at;
        s.flush(now);
    }
    assert!(gaps.windows(2).all(|w| w[0] <= w[1]), "{gaps:?}");
    assert_eq!(*gaps.last().unwrap(), LOOK_MAX, "{gaps:?}");
    assert!(!s.delivery.has_room());
    // The peer takes all: the next look forgets everything, keeping a few buffers for reuse.
    s.peer_takes_all();
    s.flush(s.delivery.wake_at().unwrap());
    assert!(s.delivery.in_flight.is_empty());
    assert_eq!(s.delivery.spare.len(), SPARE_MAX);
    assert!(s.delivery.has_room());
    assert_eq!(s.delivery.wake_at(), None);
    assert_eq!(s.texts(), numbered(0..n));
}

#[test]
fn a_full_socket_is_retried_soon_and_no_memory_later_neither_an_outage() {
    let now = Instant::now();
    let mut s = start(Script::default(), now);
    s.log(0..3);
    s.script().sends.push_back(Answer::Fails(libc::EAGAIN));
    s.flush(now);
    assert_eq!(s.delivery.pending.len(), 3);
    assert_eq!(s.delivery.wake_at(), Some(now + FULL_QUEUE_RETRY));
    s.script().sends.push_back(Answer::Fails(libc::ENOMEM));
    let t1 = now + FULL_QUEUE_RETRY;
    s.flush(t1);
    assert_eq!(s.delivery.wake_at(), Some(t1 + RETRY_INTERVAL));
    assert!(s.delivery.outage.is_none());
    assert_eq!(s.delivery.transport().state(), LinkState::Up);
    s.flush(t1 + RETRY_INTERVAL);
    assert_eq!(s.texts(), numbered(0..3), "no notice, nothing sent twice");
    assert_eq!(s.delivery.stats().delivered, 3);
}

#[test]
fn a_datagram_the_peer_rejects_goes_to_stderr_and_the_rest_goes_on() {
    let now = Instant::now();
    let script = Script {
        udp: true,
        ..Script::default()
    };
    let mut s = start(script, now);
    s.log(0..3);
    s.script()
        .sends
        .push_back(Answer::Fails(libc::ECONNREFUSED));
    s.flush(now);
    assert_eq!(s.texts(), numbered(1..3));
    assert_eq!(s.delivery.stats().undelivered, 1);
    assert_eq!(s.delivery.stats().delivered, 2);
    assert!(
        s.delivery.in_flight.is_empty(),
        "a datagram is done once sent"
    );
    assert!(s.delivery.outage.is_none());
}

#[test]
fn a_frame_cut_short_on_a_stream_is_resumed_where_it_stopped() {
    let now = Instant::now();
    let script = Script {
        stream: true,
        ..Script::default()
    };
    let mut s = start(script, now);
    s.log(0..3);
    s.script().sends.push_back(Answer::Takes(12));
    s.flush(now);
    // `7 entry 0` whole, `7 e` of the next.
    assert_eq!(s.script().stream_bytes, b"7 entry 07 e");
    assert_eq!(s.delivery.written, 3);
    assert_eq!(s.delivery.in_flight.len(), 1);
    assert_eq!(s.delivery.wake_at(), Some(now + TRIM_RETRY));
    s.flush(now + FULL_QUEUE_RETRY);
    assert_eq!(s.script().stream_bytes, b"7 entry 07 entry 17 entry 2");
    assert_eq!(s.delivery.written, 0);
    assert_eq!(s.texts(), numbered(0..3));
}

#[test]
fn drain_at_stop_delivers_what_it_can_and_gives_the_rest_to_stderr() {
    // A peer that is there: all is delivered, and the drain returns at once.
    let now = Instant::now();
    let mut s = start(Script::default(), now);
    s.log(0..3);
    s.drain(now + Duration::from_secs(30));
    assert!(now.elapsed() < Duration::from_secs(10));
    assert_eq!(s.texts(), numbered(0..3));
    assert_eq!(s.delivery.stats().undelivered, 0);
    // A peer that refuses every connect: by the deadline the entries are counted.
    let script = Script {
        connects: vec![libc::ECONNREFUSED; 100].into(),
        ..Script::default()
    };
    let mut s = start(script, Instant::now());
    s.log(0..5);
    s.drain(Instant::now() + Duration::from_millis(20));
    assert!(s.delivery.pending.is_empty());
    assert_eq!(s.delivery.stats().undelivered, 5);
    assert_eq!(s.delivery.stats().delivered, 0);
}

#[test]
fn drain_at_stop_counts_what_a_stream_peer_never_took_and_resets_the_connection() {
    let now = Instant::now();
    let script = Script {
        stream: true,
        ..Script::default()
    };
    let mut s = start(script, now);
    s.log(0..4);
    // Sent "an hour later": no look is due while the drain runs, only its last one.
    s.flush(now + Duration::from_secs(3600));
    // The peer takes the first entry only.
    s.script().unsettled = "7 entry 1".len() * 3;
    s.drain(Instant::now() + Duration::from_millis(20));
    assert_eq!(
        s.delivery.stats().undelivered,
        3,
        "the last look counts exactly"
    );
    assert!(s.delivery.in_flight.is_empty());
    assert!(s.script().discarded, "reset: none of it arrives later");
    // A stream peer that takes everything: a plain close, nothing undelivered.
    let mut s = start(
        Script {
            stream: true,
            ..Script::default()
        },
        now,
    );
    s.log(0..4);
    s.flush(now);
    s.peer_takes_all();
    s.drain(Instant::now() + Duration::from_secs(30));
    assert_eq!(s.delivery.stats().undelivered, 0);
    assert!(!s.script().discarded);
}

#[test]
fn collected_notices_are_kept_for_another_sink_not_sent() {
    let t0 = Instant::now();
    let script = Script {
        connects: [libc::ECONNREFUSED].into(),
        ..Script::default()
    };
    let mut s = start(script, t0);
    s.delivery.collect_notices();
    s.log(0..2);
    s.flush(t0 + RETRY_INTERVAL);
    s.flush(t0 + RETRY_INTERVAL);
    assert_eq!(s.texts(), numbered(0..2), "the notice is not sent here");
    let notices = s.delivery.take_notices();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0].0, crate::entry::priority::WARNING);
    assert!(notices[0].1.contains("2 entries were held meanwhile"));
    assert!(s.delivery.take_notices().is_empty(), "taken once");
}
