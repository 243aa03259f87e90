//! The engine with journald's protocol ([`Journal`]) against a scripted journald: a socket
//! queue it reads from, dies with and comes back to, as the real one does.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use mio::Registry;

use super::harness::{assert_each_once_in_order, errno, scripted_error, unread_bytes, Harness};
use crate::entry::Entry;
use crate::sink::delivery::{
    Delivery, LinkState, Transport, FULL_QUEUE_RETRY, RETRY_INTERVAL, SPARE_MAX, TRIM_RETRY,
};
use crate::sink::journald::delivery::Journal;
use crate::sink::journald::encode::message_of;

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

impl Fake {
    fn is_connected(&self) -> bool {
        self.connected
    }
}

impl Transport for Fake {
    type Protocol = Journal;
    fn describe(&self) -> &str {
        "journald at /fake/journal/socket"
    }
    fn state(&self) -> LinkState {
        if self.connected {
            LinkState::Up
        } else {
            LinkState::Down
        }
    }
    fn connect(&mut self, _: &Registry, _: Instant) -> io::Result<LinkState> {
        if !self.journald.borrow().running {
            return Err(errno(libc::ECONNREFUSED));
        }
        self.connected = true;
        Ok(LinkState::Up)
    }
    fn disconnect(&mut self, _: bool) {
        self.connected = false;
    }
    fn send_datagrams(&mut self, entries: &[&[u8]], wire_len: &mut [usize]) -> io::Result<usize> {
        let mut j = self.journald.borrow_mut();
        let running = j.running;
        scripted_error(&mut j.fail_next, running)?;
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
    fn unsettled_bytes(&self) -> io::Result<usize> {
        Ok(unread_bytes(&self.journald.borrow().queue))
    }
    fn probe(&self) -> io::Result<()> {
        if self.journald.borrow().running {
            Ok(())
        } else {
            Err(errno(libc::ECONNREFUSED))
        }
    }
    fn wait(&self, _: Duration, _: bool) {}
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

impl Harness for Setup {
    type Transport = Fake;
    fn parts(&mut self) -> (&mut Delivery<Fake>, &mio::Poll) {
        (&mut self.delivery, &self.poll)
    }
    fn peer_takes_all(&mut self) {
        self.journald.borrow_mut().read_all();
    }
}

impl Setup {
    /// Flushes and lets journald read until everything is stored.
    fn settle(&mut self, now: Instant) {
        self.settle_then(now, Duration::ZERO, 1);
    }
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
