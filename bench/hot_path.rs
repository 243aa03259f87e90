//! The hot path's speed without system calls (framer, syslog header parser, entry and journald
//! encoding), in ns per line or message: a part of the benchmark, printed as a markdown table
//! by `bench/run` and never asserted (the machine is shared and timings are noisy):
//!
//!     cargo bench --bench hot_path

use std::hint::black_box;
use std::time::Instant;

use tcp_listener::config::Framing;
use tcp_listener::framing::Framer;

/// Best of `rounds` runs of `f` over `n` items, in ns per item.
fn ns_per(n: usize, rounds: usize, mut f: impl FnMut()) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..rounds {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_nanos() as f64 / n as f64);
    }
    best
}

fn line_mode_framer_speed() {
    // 10,000 lines of 80 bytes, read 1024 bytes at a time, as the daemon reads them.
    let line = [b"x".repeat(79), b"\n".to_vec()].concat();
    let stream: Vec<u8> = line.repeat(10_000);
    let ns = ns_per(10_000, 50, || {
        let mut framer = Framer::new(Framing::Line, 4096);
        let mut n = 0usize;
        for chunk in stream.chunks(1024) {
            framer.push(black_box(chunk), |f| n += f.bytes.len());
        }
        black_box(n);
    });
    row("framer, line mode", "80-byte line", ns);
}

fn syslog_mode_framer_speed() {
    // The same 10,000 messages octet-counted and LF-framed, read 1024 bytes at a time.
    let msg = br#"<131>1 2026-11-27T16:09:48.908392+00:00 vm nas 4242 - [timeQuality tzKnown="1" isSynced="0"] disk failing"#;
    let counted: Vec<u8> = [format!("{} ", msg.len()).as_bytes(), &msg[..]]
        .concat()
        .repeat(10_000);
    let lf: Vec<u8> = [&msg[..], b"\n"].concat().repeat(10_000);
    for (name, stream) in [("octet-counted", &counted), ("LF-framed", &lf)] {
        let ns = ns_per(10_000, 50, || {
            let mut framer = Framer::new(Framing::Syslog, 4096);
            let mut n = 0usize;
            for chunk in stream.chunks(1024) {
                framer.push(black_box(chunk), |f| n += f.bytes.len());
            }
            black_box(n);
        });
        row(
            &format!("framer, syslog mode, {name}"),
            &format!("{}-byte message", msg.len()),
            ns,
        );
    }
}

fn syslog_header_parser_speed() {
    use tcp_listener::syslog_message::{parse, write_message, JournalFields};
    let messages: [(&str, &[u8]); 3] = [
        (
            "RFC 5424 (logger)",
            br#"<131>1 2026-11-27T16:09:48.908392+00:00 vm nas 4242 - [timeQuality tzKnown="1" isSynced="0"] disk failing"#,
        ),
        (
            "RFC 3164 (logger)",
            b"<131>Nov 27 16:09:49 vm nas[4242]: disk failing",
        ),
        ("no PRI", b"just a line of text from nc"),
    ];
    for (name, msg) in messages {
        let parse_ns = ns_per(100_000, 20, || {
            for _ in 0..100_000 {
                black_box(parse(black_box(msg)));
            }
        });
        let mut fields = JournalFields::new();
        let mut message = String::new();
        let all_ns = ns_per(100_000, 20, || {
            for _ in 0..100_000 {
                let h = parse(black_box(msg));
                fields.set(&h);
                message.clear();
                write_message(&mut message, "192.0.2.7:51234", &h);
                black_box((&fields, &message));
            }
        });
        let over = format!("{name} message, {} bytes", msg.len());
        row("syslog header parser", &over, parse_ns);
        row("parser + fields + MESSAGE", &over, all_ns);
    }
}

fn entry_path_speed() {
    // What runs per line or message besides system calls: framer, entry, journald encoding;
    // 10,000 of them, read 1024 bytes at a time.
    use tcp_listener::entry::{peer_label, Entry, Peer, Remote};
    use tcp_listener::sink::journald::encode::{encode_entry_cached, PeerFields};
    use tcp_listener::syslog_message::{parse, JournalFields};
    let addr = "192.0.2.7:51234".parse().unwrap();
    let peer = Peer {
        addr,
        connection_id: 3,
    };
    let label = peer_label(addr);
    let line = [b"x".repeat(79), b"\n".to_vec()].concat().repeat(10_000);
    let msg = br#"<131>1 2026-11-27T16:09:48.908392+00:00 vm nas 4242 - [timeQuality tzKnown="1" isSynced="0"] disk failing"#;
    let counted: Vec<u8> = [format!("{} ", msg.len()).as_bytes(), &msg[..]]
        .concat()
        .repeat(10_000);
    for (name, framing, stream) in [
        ("80-byte line", Framing::Line, &line),
        ("RFC 5424 message, octet-counted", Framing::Syslog, &counted),
    ] {
        let mut text = String::new();
        let mut fields = JournalFields::new();
        let mut out = Vec::with_capacity(1024);
        let mut cache = PeerFields::default();
        let remote = Remote::default();
        let ns = ns_per(10_000, 50, || {
            let mut framer = Framer::new(framing, 4096);
            let mut n = 0;
            for chunk in stream.chunks(1024) {
                framer.push(black_box(chunk), |f| {
                    n += 1;
                    let e = match f.framing {
                        Framing::Syslog => {
                            let h = parse(f.bytes);
                            Entry::syslog(&mut text, &mut fields, &label, peer, n, &f, &h, &remote)
                        }
                        _ => Entry::line(&mut text, &label, peer, n, &f),
                    };
                    out.clear();
                    encode_entry_cached(&mut out, &e, &mut cache);
                    black_box(&out);
                });
            }
        });
        row("framer + entry + journald encoding", name, ns);
    }
}

/// One row of the table: what runs, over what, in ns each.
fn row(what: &str, over: &str, ns: f64) {
    println!("| {what} | {over} | {ns:.1} |");
}

fn main() {
    println!("| hot path (no system calls) | per | ns |");
    println!("|---|---|---:|");
    line_mode_framer_speed();
    syslog_mode_framer_speed();
    syslog_header_parser_speed();
    entry_path_speed();
}
