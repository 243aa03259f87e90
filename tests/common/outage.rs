//! A journald outage in the middle of a stream, as a test plays it: lines before, during and
//! after, and the check that every one of them reached the journal once, in order.

use super::{lines_of, send, text, unique_lines, Daemon, Fields, Journal};

/// Sends 100 lines `before N` to `daemon`; once they are in `journal`, takes it away with
/// `away`, sends 100 lines `during N` and waits for the daemon to say journald is
/// unreachable; brings it back with `back` and sends 100 lines `after N`. Checks that all
/// 300 are in `journal`, once each (a line journald had read just before it went away may
/// come again, marked `REDELIVERED=1`) and in order, and returns its entries.
pub fn stream_across_an_outage(
    daemon: &Daemon,
    journal: &mut Journal,
    away: impl FnOnce(&mut Journal),
    back: impl FnOnce(&mut Journal),
) -> Vec<Fields> {
    let mut s = daemon.connect();
    for i in 0..100 {
        send(&mut s, format!("before {i}\n").as_bytes());
    }
    journal.wait_for("the first 100 lines", |e| lines_of(e).len() == 100);
    away(journal);
    for i in 0..100 {
        send(&mut s, format!("during {i}\n").as_bytes());
    }
    daemon.wait_stderr("unreachable");
    back(journal);
    for i in 0..100 {
        send(&mut s, format!("after {i}\n").as_bytes());
    }
    let entries = journal.wait_for("all 300 lines", |e| unique_lines(e).len() >= 300);
    let lines: Vec<String> = unique_lines(&entries)
        .iter()
        .map(|e| text(e, "MESSAGE"))
        .collect();
    assert_eq!(lines.len(), 300);
    for (phase, chunk) in ["before", "during", "after"].iter().zip(lines.chunks(100)) {
        for (i, l) in chunk.iter().enumerate() {
            assert!(l.ends_with(&format!(": {phase} {i}")), "{l}");
        }
    }
    entries
}
