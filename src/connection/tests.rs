use mio::Token;

use super::*;
use std::io::Write;

/// A client socket and the daemon side of its connection, accepted.
pub(crate) fn pair() -> (std::net::TcpStream, TcpStream, SocketAddr) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (server, addr) = l.accept().unwrap();
    server.set_nonblocking(true).unwrap();
    (client, TcpStream::from_std(server), addr)
}

pub(crate) fn config(extra: &str) -> Config {
    Config::parse(extra, std::path::Path::new("t.toml")).unwrap()
}

/// Reads until the client's bytes have all arrived.
fn read_all(conn: &mut Connection, want: usize, now: Instant) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0; 64];
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.len() < want {
        assert!(Instant::now() < deadline, "only {got:?}");
        match conn.read(&mut buf, now) {
            ReadOutcome::Data(n) => got.extend_from_slice(&buf[..n]),
            ReadOutcome::WouldBlock | ReadOutcome::Interrupted => std::thread::yield_now(),
            other => panic!("{other:?}"),
        }
    }
    got
}

#[test]
fn reads_frames_and_numbers_lines_and_sees_the_close() {
    let (mut client, stream, addr) = pair();
    let now = Instant::now();
    let mut conn = Connection::new(stream, addr, 7, &config(""), now);
    assert_eq!(conn.label, addr.to_string());
    client.write_all(b"one\ntwo\nthr").unwrap();
    let data = read_all(&mut conn, 11, now);
    let mut lines = Vec::new();
    let mut budget = TokenBucket::new(0, 0, now);
    let counts = conn.frame(&data, now, &mut budget, RateLimitAction::Drop, |l| {
        lines.push((l.number, l.peer.connection_id, l.frame.bytes.to_vec()))
    });
    assert_eq!(
        counts,
        FrameCounts {
            logged: 2,
            dropped: 0
        }
    );
    assert_eq!(lines, [(1, 7, b"one".to_vec()), (2, 7, b"two".to_vec())]);
    drop(client);
    let mut buf = [0; 16];
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match conn.read(&mut buf, now) {
            ReadOutcome::Closed => break,
            ReadOutcome::WouldBlock => assert!(Instant::now() < deadline),
            other => panic!("{other:?}"),
        }
    }
    let mut partial = Vec::new();
    assert_eq!(
        conn.finish(|l| partial.push((l.number, l.frame.partial))),
        1
    );
    assert_eq!(partial, [(3, true)]);
    let totals = conn.totals(now);
    assert_eq!((totals.bytes, totals.lines), (11, 3));
}

#[test]
fn lines_over_the_budget_are_dropped_counted_and_reported_once_a_second() {
    let (_client, stream, addr) = pair();
    let t0 = Instant::now();
    let mut conn = Connection::new(stream, addr, 1, &config(""), t0);
    let mut budget = TokenBucket::new(1, 2, t0);
    let drop = RateLimitAction::Drop;
    let counts = conn.frame(b"a\nb\nc\nd\ne\n", t0, &mut budget, drop, |_| {});
    assert_eq!(
        counts,
        FrameCounts {
            logged: 2,
            dropped: 3
        }
    );
    assert_eq!(conn.drop_report(t0, false), None, "not a second yet");
    let t1 = t0 + DROP_REPORT_INTERVAL;
    assert_eq!(
        conn.drop_report(t1, false),
        Some(DropReport { count: 3, total: 3 })
    );
    assert_eq!(conn.drop_report(t1, false), None);
    // One token came back in that second; the next two lines: one logged, one dropped,
    // reported at the end whatever the time.
    conn.frame(b"f\ng\n", t1, &mut budget, drop, |_| {});
    assert_eq!(
        conn.drop_report(t1, true),
        Some(DropReport { count: 1, total: 4 })
    );
}

#[test]
fn the_pieces_of_a_long_line_count_as_one_line() {
    let (_client, stream, addr) = pair();
    let t0 = Instant::now();
    let mut conn = Connection::new(stream, addr, 1, &config("max_line_length = 4"), t0);
    let mut budget = TokenBucket::new(1, 1, t0);
    let mut logged = Vec::new();
    let drop = RateLimitAction::Drop;
    // The first line (3 pieces) takes the only token; the second is dropped whole.
    let counts = conn.frame(b"aaaabbbbcc\ndddd", t0, &mut budget, drop, |l| {
        logged.push(l.frame.bytes.to_vec())
    });
    let later = conn.frame(b"eeeeff", t0, &mut budget, drop, |l| {
        logged.push(l.frame.bytes.to_vec())
    });
    conn.finish(|l| logged.push(l.frame.bytes.to_vec()));
    assert_eq!(logged, [b"aaaa".to_vec(), b"bbbb".to_vec(), b"cc".to_vec()]);
    assert_eq!(counts.dropped + later.dropped, 1);
    assert_eq!(conn.drop_report(t0, true).unwrap().count, 1);
}

#[test]
fn the_pieces_of_a_line_share_its_line_number_and_lines_are_counted_once() {
    // Issue 17: a line in 4 pieces was LINE_NUMBER 1 to 4 and the next one 5.
    // (In syslog framing the third starts with `<` too: the LF before it is then sure to
    // end a message, as the sender's terminator is not known yet.)
    for (framing, long, next, third) in [
        (
            "line",
            &b"aaaabbbbccccdd\n"[..],
            &b"next\n"[..],
            &b"eeeeffffg"[..],
        ),
        ("syslog", b"14 aaaabbbbccccdd", b"<13>next\n", b"<1>eeeeff"),
    ] {
        let (_client, stream, addr) = pair();
        let t0 = Instant::now();
        let cfg = config(&format!("framing = \"{framing}\"\nmax_line_length = 4"));
        let mut conn = Connection::new(stream, addr, 1, &cfg, t0);
        let mut budget = TokenBucket::new(0, 0, t0);
        let mut got = Vec::new();
        let stream = [long, next, third].concat();
        let counts = conn.frame(&stream, t0, &mut budget, RateLimitAction::Drop, |l| {
            got.push((l.number, l.frame.part))
        });
        // Three lines begun: the third's first two pieces are logged, its last one at the end.
        assert_eq!(counts.logged, 3, "{framing}: {counts:?}");
        assert_eq!(conn.finish(|l| got.push((l.number, l.frame.part))), 0);
        let mut want = vec![(1, 1), (1, 2), (1, 3), (1, 4)];
        if framing == "line" {
            want.push((2, 0));
        } else {
            want.extend([(2, 1), (2, 2)]); // `<13>`, `next`
        }
        want.extend([(3, 1), (3, 2), (3, 3)]);
        assert_eq!(got, want, "{framing}");
        assert_eq!(
            conn.totals(t0).lines,
            3,
            "{framing}: LINES_LOGGED counts lines"
        );
    }
}

/// Issue 17 item 7: the peer a state names must be the socket's (it is what every entry
/// of the connection names); another is refused and the connection served as new.
#[test]
fn a_carried_connection_whose_state_names_another_peer_is_refused() {
    let t0 = Instant::now();
    let (_client, stream, addr) = pair();
    let mut saved = Connection::new(stream, addr, 1, &config(""), t0).save(t0);
    saved.peer = "192.0.2.7:4000".parse().unwrap();
    let (_client2, stream2, addr2) = pair();
    let why = Connection::restore(stream2, &saved, &config(""), t0)
        .map(|_| ())
        .map_err(|(_, why)| why)
        .unwrap_err();
    assert_eq!(
        why,
        format!("the state names 192.0.2.7:4000 as its peer, the socket {addr2}")
    );
}

#[test]
fn a_line_begun_after_a_dropped_one_is_carried_over_and_finished_like_any_other() {
    let (_client, stream, addr) = pair();
    let t0 = Instant::now();
    let mut conn = Connection::new(stream, addr, 1, &config(""), t0);
    let mut budget = TokenBucket::new(1, 1, t0);
    let drop = RateLimitAction::Drop;
    // `a` takes the only token, `b` is dropped, `c` is unfinished: not dropped (it has
    // not asked the budget yet), so it is logged as partial like any unfinished line.
    let counts = conn.frame(b"a\nb\nc", t0, &mut budget, drop, |_| {});
    assert_eq!((counts.logged, counts.dropped), (1, 1));
    let mut carried = Vec::new();
    let n = conn.log_carried(|l| carried.push((l.number, l.frame.bytes.to_vec())));
    assert_eq!((n, carried), (1, vec![(2, b"c".to_vec())]));
    let mut finished = Vec::new();
    let n = conn.finish(|l| finished.push((l.number, l.frame.bytes.to_vec())));
    assert_eq!((n, finished), (1, vec![(2, b"c".to_vec())]));
}

#[test]
fn the_rest_of_a_dropped_long_line_is_neither_carried_over_nor_finished() {
    let (_client, stream, addr) = pair();
    let t0 = Instant::now();
    let mut conn = Connection::new(stream, addr, 1, &config("max_line_length = 4"), t0);
    let mut budget = TokenBucket::new(1, 1, t0);
    let drop = RateLimitAction::Drop;
    // `aaaa` takes the only token; `bbbb` (a first piece) is dropped, and so is its rest.
    conn.frame(b"aaaa\nbbbbcc", t0, &mut budget, drop, |_| {});
    assert_eq!(conn.log_carried(|l| panic!("carried {l:?}")), 0);
    assert_eq!(conn.finish(|l| panic!("finished {l:?}")), 0);
}

#[test]
fn a_long_syslog_message_is_one_line_of_the_budget_and_its_pieces_carry_its_header() {
    let (_client, stream, addr) = pair();
    let t0 = Instant::now();
    // 127.0.0.1:PORT: leaves 59 - 17 = 42 bytes: 30 for the text of a piece followed by
    // more, 42 for the last; 3 less (` vm`) for the pieces after the first.
    let config = config("framing = \"syslog\"\nmax_line_length = 59");
    let mut conn = Connection::new(stream, addr, 1, &config, t0);
    assert_eq!(conn.label.len(), 15, "an ephemeral port has 5 digits");
    let mut budget = TokenBucket::new(1, 1, t0);
    let mut logged = Vec::new();
    let first = b"<131>1 - vm nas 42 - - disk failing badly, and more text follows";
    let second = b"<14>1 - vm app - - - dropped";
    let stream = [
        format!("{} ", first.len()).as_bytes(),
        first,
        format!("{} ", second.len()).as_bytes(),
        second,
    ]
    .concat();
    let counts = conn.frame(&stream, t0, &mut budget, RateLimitAction::Drop, |l| {
        let h = l.header.expect("a syslog piece has a header");
        let app = String::from_utf8_lossy(h.app_name.unwrap_or(b"-")).into_owned();
        let host = String::from_utf8_lossy(h.hostname.unwrap_or(b"-")).into_owned();
        logged.push((
            l.frame.bytes.to_vec(),
            l.frame.part,
            app,
            host,
            h.priority(6),
        ));
    });
    assert_eq!(
        counts.dropped, 1,
        "the second message: the only token went to the first"
    );
    let sizes: Vec<usize> = logged.iter().map(|p| p.0.len()).collect();
    assert_eq!(sizes, [30, 34], "the last piece holds 42 - 3 at most");
    assert_eq!(
        logged.iter().flat_map(|p| p.0.clone()).collect::<Vec<u8>>(),
        first
    );
    for (i, (_, part, app, host, priority)) in logged.iter().enumerate() {
        assert_eq!(*part, i as u32 + 1);
        assert_eq!(
            (&app[..], &host[..], *priority),
            ("nas", "vm", 3),
            "piece {part}"
        );
    }
}

#[test]
fn throttled_lines_are_logged_and_put_the_budget_in_debt() {
    let (_client, stream, addr) = pair();
    let t0 = Instant::now();
    let mut conn = Connection::new(stream, addr, 1, &config(""), t0);
    let mut budget = TokenBucket::new(10, 2, t0);
    let counts = conn.frame(
        b"1\n2\n3\n4\n5\n",
        t0,
        &mut budget,
        RateLimitAction::Throttle,
        |_| {},
    );
    assert_eq!(
        counts,
        FrameCounts {
            logged: 5,
            dropped: 0
        }
    );
    // 3 in debt and one more needed: 0.4 s at 10 lines/s.
    assert_eq!(budget.ready_at(t0), Some(t0 + Duration::from_millis(400)));
}

#[test]
fn parked_clients_wait_their_time_and_ignore_events_meanwhile() {
    let poll = mio::Poll::new().unwrap();
    let mut conns = Connections::default();
    let t0 = Instant::now();
    let mut keep = Vec::new();
    for id in 0..2 {
        let (client, stream, addr) = pair();
        keep.push(client);
        conns
            .insert(
                Connection::new(stream, addr, id, &config(""), t0),
                poll.registry(),
            )
            .unwrap();
    }
    assert_eq!(conns.next_ready(), Some(0));
    assert_eq!(conns.next_ready(), Some(1));
    conns.park(0, t0 + Duration::from_millis(300));
    conns.park(1, t0 + Duration::from_millis(100));
    conns.mark_ready(0);
    assert_eq!(
        conns.next_ready(),
        None,
        "parked: an event does not queue it"
    );
    assert_eq!(conns.next_unpark(), Some(t0 + Duration::from_millis(100)));
    conns.unpark_due(t0 + Duration::from_millis(100));
    assert_eq!(conns.next_ready(), Some(1));
    assert_eq!(conns.next_ready(), None);
    conns.unpark_all();
    assert_eq!(conns.next_ready(), Some(0));
    assert_eq!(conns.next_unpark(), None);
}

#[test]
fn a_stop_counts_what_the_kernel_had_received() {
    let (mut client, stream, addr) = pair();
    let t0 = Instant::now();
    let mut conn = Connection::new(stream, addr, 1, &config(""), t0);
    client.write_all(b"before\nthe stop\n").unwrap();
    // Wait until the kernel has it all for the connection.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        conn.begin_stop();
        if conn.stop_quota() == Some(16) {
            break;
        }
        assert!(Instant::now() < deadline, "{:?}", conn.stop_quota());
        std::thread::yield_now();
    }
    let mut buf = [0; 64];
    assert!(matches!(conn.read(&mut buf, t0), ReadOutcome::Data(16)));
    assert_eq!(&buf[..16], b"before\nthe stop\n");
    assert_eq!(conn.stop_quota(), Some(0));
    // What did not fit in the time is counted by reading it without logging.
    let (mut client2, stream2, addr2) = pair();
    let mut late = Connection::new(stream2, addr2, 2, &config(""), t0);
    client2.write_all(b"a\nb\nc").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while {
        late.begin_stop();
        late.stop_quota() != Some(5)
    } {
        assert!(Instant::now() < deadline);
        std::thread::yield_now();
    }
    assert_eq!(late.discard_quota(&mut buf), (5, 2));
}

#[test]
fn the_ready_queue_holds_each_client_once() {
    let poll = mio::Poll::new().unwrap();
    let mut conns = Connections::default();
    let now = Instant::now();
    let mut keep = Vec::new();
    for id in 0..3 {
        let (client, stream, addr) = pair();
        keep.push(client);
        conns
            .insert(
                Connection::new(stream, addr, id, &config(""), now),
                poll.registry(),
            )
            .unwrap();
    }
    conns.mark_ready(1);
    conns.mark_all_ready();
    let order: Vec<usize> = std::iter::from_fn(|| conns.next_ready()).collect();
    assert_eq!(order, [0, 1, 2]);
    conns.requeue(2);
    conns.requeue(2);
    let removed = conns.remove(2, poll.registry()).unwrap();
    assert_eq!(removed.peer.connection_id, 2);
    assert_eq!(
        conns.next_ready(),
        None,
        "a removed client leaves the queue"
    );
    assert_eq!(conns.len(), 2);
    assert_eq!(conns.key_of(Token(1)), Some(1));
    assert_eq!(conns.key_of(Token(2)), None);
}
