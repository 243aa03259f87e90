//! Issue 20: `[log] namespace`. Client entries (lines, connections) go to a journal namespace
//! of their own, the daemon's own entries (start, stop, reloads, errors) stay in the main
//! journal; both are real journald namespaces here (the "main" one stands for the system
//! journal: `log.journal_socket` points at it), read back with `journalctl --namespace`.

#[macro_use]
mod common;

use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::backlog::{send_until_stalled, split_between};
use common::outage::stream_across_an_outage;
use common::*;

fn events<'a>(entries: &'a [Fields], event: &str) -> Vec<&'a Fields> {
    entries
        .iter()
        .filter(|e| text(e, "LISTENER_EVENT") == event)
        .collect()
}

fn notices_with(entries: &[Fields], needle: &str) -> Vec<String> {
    events(entries, "notice")
        .iter()
        .map(|e| text(e, "MESSAGE"))
        .filter(|m| m.contains(needle))
        .collect()
}

/// With `namespace` set, every line and connection entry is in the namespace and none in the
/// main journal; the start, the stop summary and every other notice are in the main journal
/// and none in the namespace. The start entry says where client entries go.
#[test]
fn client_entries_go_to_the_namespace_and_the_daemons_own_to_the_main_journal() {
    need_journald!("client_entries_go_to_the_namespace_and_the_daemons_own_to_the_main_journal");
    let main = Journal::start();
    let clients = Journal::start();
    let mut daemon = Daemon::start(&namespace_config(&main, &clients, ""));
    let mut s = daemon.connect();
    let port = s.local_addr().unwrap().port();
    for i in 0..100 {
        send(&mut s, format!("line {i}\n").as_bytes());
    }
    drop(s);
    let got = clients.wait_for("100 lines and the disconnect", |e| {
        lines_of(e).len() == 100 && !events(e, "disconnected").is_empty()
    });
    daemon.signal(libc::SIGTERM);
    assert!(daemon.wait_exit(Duration::from_secs(10)).success());
    let own = main.wait_for("the stop summary", |e| {
        !notices_with(e, "stopping: served").is_empty()
    });
    let lines = lines_of(&got);
    assert_eq!(
        lines,
        (0..100)
            .map(|i| format!("127.0.0.1:{port}: line {i}"))
            .collect::<Vec<_>>()
    );
    assert_eq!(events(&got, "connected").len(), 1);
    assert!(
        events(&got, "notice").is_empty(),
        "no notice in the namespace: {got:?}"
    );
    for event in ["line", "connected", "disconnected"] {
        assert!(
            events(&own, event).is_empty(),
            "{event} in the main journal"
        );
    }
    let start = notices_with(&own, "listening on");
    assert_eq!(start.len(), 1, "{own:?}");
    assert!(
        start[0].contains(&format!(
            "client entries to the journal namespace {} (/run/systemd/journal.{}/socket)",
            clients.name, clients.name
        )),
        "{start:?}"
    );
    let stop = notices_with(&own, "stopping: served 1 connections, logged 100 lines");
    assert_eq!(stop.len(), 1, "{own:?}");
    assert!(stop[0].contains("everything received before the stop was logged"));
}

/// A line stream runs while SIGHUP moves the client entries from the main journal to one
/// namespace, to another, and back: lines sent after each reload are in the journal that
/// reload named, and every line of the stream is in one of the three, once.
#[test]
fn reloads_between_none_and_namespaces_move_new_lines_and_lose_none() {
    need_journald!("reloads_between_none_and_namespaces_move_new_lines_and_lose_none");
    let main = Journal::start();
    let ns1 = Journal::start();
    let ns2 = Journal::start();
    let extra = "max_lines_per_sec = 0\n";
    let daemon = Daemon::start(&test_config(Some(&main), extra));
    let stop = Arc::new(AtomicBool::new(false));
    let mut stream = daemon.connect();
    let stream_port = stream.local_addr().unwrap().port().to_string();
    let sender = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut batch = String::new();
                for _ in 0..10 {
                    n += 1;
                    batch.push_str(&format!("stream {n}\n"));
                }
                send(&mut stream, batch.as_bytes());
                // A steady load through every reload rather than one burst before them.
                std::thread::sleep(Duration::from_millis(2));
            }
            (stream, n)
        })
    };
    main.wait_for("the stream", |e| lines_of(e).len() >= 100);
    // (the config of each phase, the journal its lines go to)
    let phases: [(String, &Journal); 3] = [
        (namespace_config(&main, &ns1, extra), &ns1),
        (namespace_config(&main, &ns2, extra), &ns2),
        (test_config(Some(&main), extra), &main),
    ];
    for (i, (config, journal)) in phases.iter().enumerate() {
        let before = journal.ours().len();
        daemon.reload_with(config);
        daemon.wait_stderr_count("configuration reloaded", i + 1);
        let mut marker: TcpStream = daemon.connect();
        send(&mut marker, format!("marker {i}\n").as_bytes());
        let needle = format!(": marker {i}");
        journal.wait_for(&needle, |e| {
            lines_of(e).iter().any(|l| l.ends_with(&needle))
        });
        // The stream goes on into the same journal.
        journal.wait_for("the stream there", |e| {
            e.len() > before + 50
                && unique_lines(e)
                    .iter()
                    .filter(|l| text(l, "REMOTE_PORT") == stream_port)
                    .count()
                    > 50
        });
        for other in [&main, &ns1, &ns2] {
            if !std::ptr::eq(other, *journal) {
                let found = lines_of(&other.ours())
                    .into_iter()
                    .filter(|l| l.ends_with(&needle))
                    .count();
                assert_eq!(found, 0, "marker {i} in another journal");
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let (_stream, sent) = sender.join().unwrap();
    let stream_lines = |j: &Journal| -> Vec<u64> {
        unique_lines(&j.ours())
            .iter()
            .filter(|e| text(e, "REMOTE_PORT") == stream_port)
            .map(|e| {
                let line = String::from_utf8(entry_bytes(e)).unwrap();
                line.strip_prefix("stream ").unwrap().parse().unwrap()
            })
            .collect()
    };
    let all = wait_until(Duration::from_secs(15), "every line of the stream", || {
        let per: Vec<Vec<u64>> = [&main, &ns1, &ns2]
            .iter()
            .map(|j| stream_lines(j))
            .collect();
        (per.iter().map(Vec::len).sum::<usize>() as u64 >= sent).then_some(per)
    });
    println!(
        "{sent} lines streamed through 3 reloads: {} in the main journal, {} in {}, {} in {}",
        all[0].len(),
        all[1].len(),
        ns1.name,
        all[2].len(),
        ns2.name
    );
    // Each journal holds a run of the stream in order; together they are every line once.
    for lines in &all {
        assert!(lines.windows(2).all(|w| w[0] < w[1]), "in order: {lines:?}");
        assert!(!lines.is_empty());
    }
    let mut joined: Vec<u64> = all.concat();
    joined.sort_unstable();
    assert_eq!(joined, (1..=sent).collect::<Vec<_>>());
    // The daemon's own entries stayed in the main journal.
    let own = main.ours();
    assert_eq!(notices_with(&own, "configuration reloaded").len(), 3);
    for ns in [&ns1, &ns2] {
        assert!(events(&ns.ours(), "notice").is_empty());
    }
}

/// The namespace's journald killed mid-stream (what sat unread in its socket dies with it)
/// and started again: every line is in the namespace, what may have been lost is sent again
/// (`REDELIVERED=1`), and the outage is told in the main journal, not in the namespace.
#[test]
fn the_namespace_journald_killed_mid_stream_loses_nothing_and_the_outage_is_told_in_main() {
    need_journald!(
        "the_namespace_journald_killed_mid_stream_loses_nothing_and_the_outage_is_told_in_main"
    );
    let main = Journal::start();
    let mut clients = Journal::start();
    let daemon = Daemon::start(&namespace_config(&main, &clients, ""));
    let entries =
        stream_across_an_outage(&daemon, &mut clients, Journal::kill, Journal::start_again);
    let told = main.wait_for("the outage notice", |e| {
        !notices_with(e, "was unreachable for").is_empty()
    });
    let notice = &notices_with(&told, "was unreachable for")[0];
    assert!(
        notice.starts_with(&format!(
            "journald at /run/systemd/journal.{}/socket was unreachable for",
            clients.name
        )),
        "{notice}"
    );
    assert!(events(&entries, "notice").is_empty());
}

/// Started while the namespace's socket does not exist (its journald not started), the
/// daemon says so in the main journal and logs client lines there meanwhile (kept, as
/// without a namespace); once the socket is there (looked at every 5 s) they go to the
/// namespace, with a notice that counts what went to the main journal.
#[test]
fn a_namespace_socket_that_appears_later_takes_the_lines_from_then_on() {
    need_journald!("a_namespace_socket_that_appears_later_takes_the_lines_from_then_on");
    let main = Journal::start();
    let mut clients = Journal::unstarted();
    let daemon = Daemon::start(&namespace_config(&main, &clients, ""));
    let mut s = daemon.connect();
    send(&mut s, b"early\n");
    let own = main.wait_for("the early line", |e| {
        lines_of(e).iter().any(|l| l.ends_with(": early"))
    });
    let missing = notices_with(&own, "client entries go to the main journal meanwhile");
    assert_eq!(
        missing,
        [format!(
            "the socket of the journal namespace {0}, /run/systemd/journal.{0}/socket, does not \
             exist: client entries go to the main journal meanwhile, looking again every 5 s (is \
             systemd-journald@{0}.socket started?)",
            clients.name
        )]
    );
    clients.start_again();
    let own = main.wait_for("the switch", |e| {
        !notices_with(e, "can be used again").is_empty()
    });
    let switched = &notices_with(&own, "can be used again")[0];
    assert!(
        switched.contains("client entries go there again after")
            && switched.ends_with("in the main journal (2 went there meanwhile)"),
        "the connected entry and the early line: {switched}"
    );
    send(&mut s, b"late\n");
    clients.wait_for("the late line", |e| {
        lines_of(e).iter().any(|l| l.ends_with(": late"))
    });
    assert_eq!(
        lines_of(&main.ours())
            .iter()
            .filter(|l| l.ends_with(": late"))
            .count(),
        0
    );
}

/// A reload that gives up the namespace while its journald is stalled (SIGSTOP, the daemon's
/// queue for it full): what was queued for it goes to the main journal, what it had taken
/// into its socket it stores once it runs again; every line is in one or the other, none on
/// stderr. The main journal is not held up meanwhile: the reload is told at once.
#[test]
fn a_reload_that_gives_up_a_stalled_namespace_hands_its_queue_to_the_main_journal() {
    need_journald!(
        "a_reload_that_gives_up_a_stalled_namespace_hands_its_queue_to_the_main_journal"
    );
    let main = Journal::start();
    let clients = Journal::start();
    let extra = "max_lines_per_sec = 0\n";
    let daemon = Daemon::start(&namespace_config(&main, &clients, extra));
    clients.pause();
    let total = 20_000;
    let sender = send_until_stalled(&daemon, total);
    daemon.reload_with(&test_config(Some(&main), extra));
    main.wait_for("the reload, with the namespace still stalled", |e| {
        !notices_with(e, "configuration reloaded").is_empty()
    });
    let s = sender.join().unwrap();
    clients.resume();
    drop(s);
    let (a, b) = split_between(
        &daemon,
        total,
        ("the namespace", &clients),
        ("the main journal", &main),
    );
    assert!(a > 0 && b > 0);
}

/// The start entry (issue 20): when the journal client lines go to is in RAM or holds less
/// than a day of one host at `max_lines_per_sec`, one notice in the main journal says so,
/// how long it holds (its size over the limit × about 700 bytes an entry), and what keeps
/// more; JOURNAL_STORAGE, JOURNAL_MAX_USE and JOURNAL_HOLDS_SEC say the same. The daemon
/// reads the namespace's journald configuration as journald does (a drop-in overrides the
/// main file). A persistent namespace that holds more than a day gets no such entry.
#[test]
fn the_start_entry_says_how_long_the_journal_of_the_lines_holds() {
    need_journald!("the_start_entry_says_how_long_the_journal_of_the_lines_holds");
    let main = Journal::start();
    // In RAM (the harness's Storage=volatile), 7 MB by a drop-in.
    let mut ram = Journal::unstarted();
    let dropins = format!("/etc/systemd/journald@{}.conf.d", ram.name);
    std::fs::create_dir_all(&dropins).unwrap();
    std::fs::write(
        format!("{dropins}/50-test.conf"),
        "[Journal]\nRuntimeMaxUse=100M\n",
    )
    .unwrap();
    std::fs::write(
        format!("{dropins}/60-test.conf"),
        "[Journal]\nRuntimeMaxUse=7M\n",
    )
    .unwrap();
    ram.start_again();
    let daemon = Daemon::start(&namespace_config(&main, &ram, ""));
    let own = main.wait_for("the start entry", |e| {
        !notices_with(e, "client lines go to").is_empty()
    });
    let e = events(&own, "notice")
        .into_iter()
        .find(|e| text(e, "MESSAGE").starts_with("client lines go to"))
        .unwrap();
    assert_eq!(
        text(e, "MESSAGE"),
        format!(
            "client lines go to the journal namespace {0}, which is in RAM (/run/log/journal): \
             lost at a reboot, and at most 7.0M (RuntimeMaxUse=): about 10 s of lines from one \
             host at max_lines_per_sec = 1000 (about 700 bytes an entry) (the system's own \
             entries are in another journal: not pushed out). To keep more: \
             Storage=persistent in /etc/systemd/journald@{0}.conf",
            ram.name
        )
    );
    assert_eq!(text(e, "PRIORITY"), "5");
    assert_eq!(text(e, "JOURNAL_STORAGE"), "volatile");
    assert_eq!(text(e, "JOURNAL_MAX_USE"), (7u64 << 20).to_string());
    assert_eq!(text(e, "JOURNAL_HOLDS_SEC"), "10");
    assert!(daemon
        .stderr_lines()
        .iter()
        .any(|l| l.contains("about 10 s of lines")));
    drop(daemon);

    // On disk, 10 GB, at 100 lines/s: about 17 days; nothing to say.
    let mut disk = Journal::unstarted();
    std::fs::write(
        format!("/etc/systemd/journald@{}.conf", disk.name),
        "[Journal]\nStorage=persistent\nSystemMaxUse=10G\nRateLimitIntervalSec=0\n\
         ForwardToWall=no\n",
    )
    .unwrap();
    disk.start_again();
    let main = Journal::start();
    let _daemon = Daemon::start(&namespace_config(&main, &disk, "max_lines_per_sec = 100\n"));
    let own = main.wait_for("the listening entry", |e| {
        !notices_with(e, "listening on").is_empty()
    });
    assert!(
        notices_with(&own, "client lines go to").is_empty(),
        "{own:?}"
    );
    // ... but at 1000 lines/s it holds about 4 h: said.
    drop(_daemon);
    let main = Journal::start();
    let _daemon = Daemon::start(&namespace_config(&main, &disk, ""));
    let own = main.wait_for("the start entry", |e| {
        !notices_with(e, "client lines go to").is_empty()
    });
    let said = &notices_with(&own, "client lines go to")[0];
    assert!(
        said.contains("on disk, at most 10.0G (SystemMaxUse=): about 4 h of lines"),
        "{said}"
    );
}
