//! A backlog that a reload hands on, as a test plays it: `total` numbered lines
//! (`line 1`..`line {total}`) sent until the daemon has stopped reading (`send_until_stalled`:
//! entries are queued), and the count once the reload has sent them on (`split_between`:
//! every line once in one journal or the other, none on stderr).

use std::net::TcpStream;
use std::thread::JoinHandle;
use std::time::Duration;

use super::{send, text, unacked, unique_lines, wait_until, Daemon, Journal};

/// Sends lines `line 1`..`line {total}` to `daemon` from a thread, and returns once the
/// daemon has stopped reading: its sink's queue and its own are full, and the client's bytes
/// wait unacknowledged. The thread gives back the connection when everything is written.
pub fn send_until_stalled(daemon: &Daemon, total: usize) -> JoinHandle<TcpStream> {
    let mut s = daemon.connect();
    let watch = s.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let text: String = (1..=total).map(|i| format!("line {i}\n")).collect();
        send(&mut s, text.as_bytes());
        s
    });
    wait_until(
        Duration::from_secs(10),
        "the daemon to stop reading",
        || (unacked(&watch) > 0).then_some(()),
    );
    sender
}

/// Waits until each of the lines numbered 1..=`total` is in journal `a` or `b` (a line
/// redelivered to the same journal counted once), checks that none is missing, doubled or on
/// the daemon's stderr, prints how they split (the journals named by their labels), and
/// returns how many lines each journal holds.
pub fn split_between(
    daemon: &Daemon,
    total: usize,
    (a_name, a): (&str, &Journal),
    (b_name, b): (&str, &Journal),
) -> (usize, usize) {
    let count = |j: &Journal| {
        unique_lines(&j.matching_fields(
            &["LISTENER_EVENT=line"],
            &[
                "LISTENER_EVENT",
                "CONNECTION_ID",
                "LINE_NUMBER",
                "REDELIVERED",
            ],
        ))
    };
    let (a, b) = wait_until(
        Duration::from_secs(30),
        "every line in one journal or the other",
        || {
            let (a, b) = (count(a), count(b));
            (a.len() + b.len() >= total).then_some((a, b))
        },
    );
    let mut numbers: Vec<u64> = a
        .iter()
        .chain(&b)
        .map(|e| text(e, "LINE_NUMBER").parse().unwrap())
        .collect();
    numbers.sort_unstable();
    let on_stderr = daemon
        .stderr_lines()
        .iter()
        .filter(|l| l.contains(": line "))
        .count();
    println!(
        "{total} lines: {} in {a_name}, {} in {b_name}, {on_stderr} on stderr",
        a.len(),
        b.len()
    );
    assert_eq!(numbers, (1..=total as u64).collect::<Vec<_>>());
    assert_eq!(on_stderr, 0);
    (a.len(), b.len())
}
