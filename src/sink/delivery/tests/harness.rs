//! What the sinks' tests of the engine share (a scripted journald, a scripted syslog server):
//! a delivery driven by hand with numbered entries, scripted errors, and the check that each
//! entry arrived once and in order.

use std::collections::VecDeque;
use std::io;
use std::ops::Range;
use std::time::{Duration, Instant};

use crate::entry::Entry;
use crate::sink::delivery::{Delivery, Transport};

/// A test's delivery to a scripted peer.
pub trait Harness {
    type Transport: Transport;
    /// The delivery, and the poll its socket registers with.
    fn parts(&mut self) -> (&mut Delivery<Self::Transport>, &mio::Poll);
    /// The peer takes (reads, acknowledges) everything sent to it so far.
    fn peer_takes_all(&mut self);

    /// Queues `entry i` for each `i` of `range`.
    fn log(&mut self, range: Range<usize>) {
        let (delivery, _) = self.parts();
        for i in range {
            let text = format!("entry {i}");
            delivery.log(&Entry::notice(6, &text));
        }
    }

    fn flush(&mut self, now: Instant) {
        let (delivery, poll) = self.parts();
        delivery.flush(now, poll.registry());
    }

    fn drain(&mut self, deadline: Instant) {
        let (delivery, poll) = self.parts();
        delivery.drain(deadline, poll.registry());
    }

    /// Flushes while the peer takes everything, until nothing is left to send; then, `later`
    /// on, `rounds` more flushes that the peer takes, for the looks that are still due.
    fn settle_then(&mut self, mut now: Instant, later: Duration, rounds: usize) {
        for _ in 0..1000 {
            self.flush(now);
            self.peer_takes_all();
            if self.parts().0.pending.is_empty() {
                now += later;
                for _ in 0..rounds {
                    self.flush(now);
                    self.peer_takes_all();
                }
                return;
            }
            now += Duration::from_millis(50);
        }
        panic!("never settled");
    }
}

pub fn errno(e: i32) -> io::Error {
    io::Error::from_raw_os_error(e)
}

/// The next scripted error, else ECONNREFUSED from a peer that is not running.
pub fn scripted_error(fail_next: &mut VecDeque<i32>, running: bool) -> io::Result<()> {
    match fail_next.pop_front() {
        Some(e) => Err(errno(e)),
        None if !running => Err(errno(libc::ECONNREFUSED)),
        None => Ok(()),
    }
}

/// What SIOCOUTQ says of datagrams not read: the kernel counts more than the payload (an skb
/// per datagram), and so does this.
pub fn unread_bytes(queue: &VecDeque<Vec<u8>>) -> usize {
    queue.iter().map(|d| d.len() + 10).sum()
}

/// `entry 0` … `entry n-1` each once, in order, among `got` (each text, and whether it was
/// marked as sent again); a marked one may repeat one that came before; other texts (notices)
/// may come between.
pub fn assert_each_once_in_order(got: &[(String, bool)], n: usize) {
    let mut want = 0;
    for (text, marked) in got {
        let Some(i) = text
            .strip_prefix("entry ")
            .and_then(|rest| rest.split(' ').next()?.parse::<usize>().ok())
        else {
            continue;
        };
        if i == want {
            want += 1;
        } else {
            assert!(*marked && i < want, "{text} out of order in {got:?}");
        }
    }
    assert_eq!(want, n, "{got:?}");
}
