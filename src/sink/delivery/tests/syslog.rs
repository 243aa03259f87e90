//! The engine with the syslog protocol ([`Rfc3164`]) against a scripted syslog server: a TCP
//! connection it acknowledges from, resets or closes, a `/dev/log` datagram queue it reads,
//! and UDP.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::rc::Rc;

use std::time::{Duration, Instant};

use mio::Registry;

use super::harness::{self, errno, scripted_error, unread_bytes, Harness};
use crate::sink::delivery::{
    Delivery, LinkState, OutputFraming, Transport, CONNECT_TIMEOUT, FULL_QUEUE_RETRY,
    IN_FLIGHT_MAX, RETRY_INTERVAL, TRIM_RETRY,
};
use crate::sink::syslog::{text_of, Rfc3164, REDELIVERED_MARK, RETRY_MAX, TRIM_RETRY_MAX};

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
    state: LinkState,
    generation: u64,
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
    type Protocol = Rfc3164;
    fn describe(&self) -> &str {
        "syslog at tcp://fake:514"
    }
    fn state(&self) -> LinkState {
        self.state
    }
    fn connect(&mut self, _: &Registry, _: Instant) -> io::Result<LinkState> {
        let mut s = self.server.borrow_mut();
        s.connects += 1;
        self.generation = s.generation;
        self.state = if s.connect_hangs {
            LinkState::Connecting
        } else if s.running {
            LinkState::Up
        } else {
            self.state = LinkState::Down;
            return Err(errno(libc::ECONNREFUSED));
        };
        Ok(self.state)
    }
    fn finish_connect(&mut self) -> io::Result<LinkState> {
        let s = self.server.borrow();
        if self.state == LinkState::Connecting && !s.connect_hangs {
            if !s.running {
                return Err(errno(libc::ECONNREFUSED));
            }
            self.state = LinkState::Up;
        }
        Ok(self.state)
    }
    fn untried(&self) -> usize {
        0
    }
    fn disconnect(&mut self, discard: bool) {
        self.state = LinkState::Down;
        self.server.borrow_mut().discarded |= discard;
    }
    fn framing(&self) -> OutputFraming {
        if self.server.borrow().stream {
            OutputFraming::OctetCounting
        } else {
            OutputFraming::Datagram
        }
    }
    fn send_datagrams(&mut self, msgs: &[&[u8]], wire_len: &mut [usize]) -> io::Result<usize> {
        let mut s = self.server.borrow_mut();
        let running = s.running;
        scripted_error(&mut s.fail_next, running)?;
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
            Ok(unread_bytes(&s.queue))
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
        self.server.borrow().stream && self.state == LinkState::Up
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
        state: LinkState::Down,
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

impl Harness for Setup {
    type Transport = Fake;
    fn parts(&mut self) -> (&mut Delivery<Fake>, &mio::Poll) {
        (&mut self.delivery, &self.poll)
    }
    fn peer_takes_all(&mut self) {
        self.server.borrow_mut().take_all();
    }
}

impl Setup {
    /// Flushes while the server takes everything, until nothing is left to send.
    fn settle(&mut self, now: Instant) {
        self.settle_then(now, TRIM_RETRY_MAX, 2);
    }
}

/// `entry 0` … `entry n-1` each once, in order, among `got`; a marked entry may repeat
/// one that came before.
fn assert_each_once_in_order(got: &[String], n: usize) {
    let got: Vec<(String, bool)> = got
        .iter()
        .map(|t| {
            let text = t.trim_end_matches(REDELIVERED_MARK);
            (text.to_string(), text.len() < t.len())
        })
        .collect();
    harness::assert_each_once_in_order(&got, n);
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
    assert_eq!(s.delivery.transport().state(), LinkState::Down);
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
    assert_eq!(s.delivery.transport().state(), LinkState::Down);
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
    assert_eq!(s.delivery.transport().state(), LinkState::Connecting);
    assert_eq!(s.delivery.wake_at(), Some(t0 + CONNECT_TIMEOUT));
    s.log(0..70);
    s.flush(t0 + Duration::from_secs(1));
    assert!(!s.delivery.has_room());
    assert_eq!(s.delivery.transport().state(), LinkState::Connecting);
    s.flush(t0 + CONNECT_TIMEOUT);
    assert_eq!(s.delivery.transport().state(), LinkState::Down);
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
    assert_eq!(s.delivery.transport().state(), LinkState::Up);
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
    assert_eq!(s.delivery.transport().state(), LinkState::Down);
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
