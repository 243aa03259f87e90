//! Arbitrary bytes, cut into arbitrary reads, through the line framer, the escaper and the
//! journald entry encoder, as the daemon does with what a client sends.
//!
//! Input: byte 0 picks `max_line_length` (4..=67), byte 1 the mode and whether the limit may
//! change between reads (a reload), byte 2 seeds the read sizes; the rest is what the client
//! sent. Invariants checked:
//! - no piece is longer than the `max_line_length` in force when it was emitted, and the
//!   framer never holds more than that + 1 bytes;
//! - in line mode, joining each line's pieces gives exactly the lines of the input (ended by
//!   LF, CRLF or a lone CR, terminators removed), the last one marked partial if unended;
//!   pieces of a valid UTF-8 line are valid UTF-8 (no character is cut); part numbers count
//!   up from 1 and only the last piece of a line is not `continued`;
//! - in raw mode, each read is one piece, minus its trailing CR/LF;
//! - the escaped text has no control character but TAB, no bidi override or line separator,
//!   and unescaping it gives the bytes back;
//! - the native-protocol entry decodes to exactly the fields that were encoded (nothing a
//!   client sends can add or change a field).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::net::SocketAddr;
use tcp_listener::config::Framing;
use tcp_listener::escape::{escape, unescape};
use tcp_listener::framing::{Frame, Framer};
use tcp_listener::entry::{priority, Entry, Event, Fields, Origin, Peer, Value};
use tcp_listener::sink::journald::encode::encode_entry;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Piece {
    bytes: Vec<u8>,
    part: u32,
    continued: bool,
    partial: bool,
    limit: usize,
}

impl Piece {
    /// A frame as emitted while `limit` was the `max_line_length` in force.
    fn new(f: Frame<'_>, limit: usize) -> Piece {
        Piece {
            bytes: f.bytes.to_vec(),
            part: f.part,
            continued: f.continued,
            partial: f.partial,
            limit,
        }
    }
}

fn xorshift(state: &mut u32) -> u32 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    x
}

/// The documented line rule, shared with the fault suite.
#[path = "../../tests/common/lines.rs"]
mod lines;
use lines::documented_lines;

fn check_escaped(bytes: &[u8]) -> String {
    let text = escape(bytes);
    for c in text.chars() {
        assert!(
            !c.is_control() || c == '\t',
            "control character {c:?} left in {text:?}"
        );
        assert!(
            !matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'),
            "{c:?} left in {text:?}"
        );
    }
    assert_eq!(
        unescape(&text).as_deref(),
        Some(bytes),
        "escaping is not reversible: {text:?}"
    );
    text
}

/// Decodes journald's native protocol: `KEY=value\n` or `KEY\n<u64 le len><value>\n`.
fn decode_entry(mut data: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut fields = Vec::new();
    while !data.is_empty() {
        let nl = data.iter().position(|&b| b == b'\n').expect("field ends");
        let line = &data[..nl];
        if let Some(eq) = line.iter().position(|&b| b == b'=') {
            fields.push((
                String::from_utf8(line[..eq].to_vec()).unwrap(),
                line[eq + 1..].to_vec(),
            ));
            data = &data[nl + 1..];
        } else {
            let key = String::from_utf8(line.to_vec()).unwrap();
            let rest = &data[nl + 1..];
            let len = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
            fields.push((key, rest[8..8 + len].to_vec()));
            assert_eq!(rest[8 + len], b'\n');
            data = &rest[8 + len + 1..];
        }
    }
    fields
}

fn check_entry(message: &str, piece: &Piece) {
    let part = piece.part.to_string();
    let mut extra: Vec<(&'static str, &str)> = vec![("LINE_NUMBER", "7")];
    let mut fields = Fields::new().with("LINE_NUMBER", Value::Number(7));
    if piece.part > 0 {
        extra.push(("LINE_PART", &part));
        fields.push("LINE_PART", Value::Number(piece.part.into()));
    }
    if piece.partial {
        extra.push(("LINE_PARTIAL", "1"));
        fields.push("LINE_PARTIAL", Value::Text("1"));
    }
    let peer = Peer {
        addr: SocketAddr::from(([192, 0, 2, 7], 51234)),
        connection_id: 3,
    };
    let entry = Entry {
        priority: priority::INFO,
        event: Event::Line,
        message,
        peer: Some(peer),
        fields,
        origin: Origin::DAEMON,
    };
    let mut out = Vec::new();
    encode_entry(&mut out, &entry);
    let got = decode_entry(&out);
    let mut want: Vec<(String, Vec<u8>)> = vec![
        ("MESSAGE".into(), message.as_bytes().to_vec()),
        ("PRIORITY".into(), b"6".to_vec()),
        ("SYSLOG_IDENTIFIER".into(), b"tcp-listener".to_vec()),
        ("SYSLOG_FACILITY".into(), b"3".to_vec()),
        ("LISTENER_EVENT".into(), b"line".to_vec()),
        ("REMOTE_ADDR".into(), b"192.0.2.7".to_vec()),
        ("REMOTE_PORT".into(), b"51234".to_vec()),
        ("CONNECTION_ID".into(), b"3".to_vec()),
    ];
    for (k, v) in &extra {
        want.push((k.to_string(), v.as_bytes().to_vec()));
    }
    assert_eq!(got, want);
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let mut limit = 4 + (data[0] % 64) as usize;
    let mode = if data[1] & 1 == 1 {
        Framing::Raw
    } else {
        Framing::Line
    };
    let reloads = data[1] & 2 == 2;
    let mut rng = u32::from(data[2]).wrapping_mul(2_654_435_761) | 1;
    let input = &data[3..];

    let mut framer = Framer::new(mode, limit);
    let mut pieces: Vec<Piece> = Vec::new();
    let mut reads: Vec<&[u8]> = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        let n = (1 + xorshift(&mut rng) as usize % 24).min(rest.len());
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        reads.push(chunk);
        if reloads && xorshift(&mut rng) % 8 == 0 {
            limit = 4 + xorshift(&mut rng) as usize % 64;
            framer.reconfigure(mode, limit);
        }
        framer.push(chunk, |f: Frame<'_>| pieces.push(Piece::new(f, limit)));
        assert!(
            framer.buffered() <= limit + 1,
            "holds {} bytes with a limit of {limit}",
            framer.buffered()
        );
    }
    framer.finish(|f: Frame<'_>| pieces.push(Piece::new(f, limit)));

    for p in &pieces {
        if mode == Framing::Line {
            assert!(
                p.bytes.len() <= p.limit,
                "a piece of {} bytes with a limit of {}",
                p.bytes.len(),
                p.limit
            );
            assert!(!p.bytes.contains(&b'\n') && !p.bytes.contains(&b'\r'));
        }
        let text = check_escaped(&p.bytes);
        check_entry(&text, p);
    }

    match mode {
        Framing::Syslog => unreachable!("the syslog target covers syslog mode"),
        Framing::Raw => {
            let want: Vec<&[u8]> = reads
                .iter()
                .map(|r| {
                    let end = r
                        .iter()
                        .rposition(|&b| b != b'\n' && b != b'\r')
                        .map_or(0, |i| i + 1);
                    &r[..end]
                })
                .collect();
            let got: Vec<&[u8]> = pieces.iter().map(|p| &p.bytes[..]).collect();
            assert_eq!(got, want);
        }
        Framing::Line => {
            // Join the pieces of each line, checking the part numbering on the way.
            let mut lines: Vec<(Vec<u8>, bool)> = Vec::new();
            let mut cur: Vec<u8> = Vec::new();
            let mut expect_part = 0u32;
            for p in &pieces {
                if expect_part == 0 {
                    assert!(
                        p.part == 0 || p.part == 1,
                        "first piece has part {}",
                        p.part
                    );
                    if p.part == 0 {
                        assert!(!p.continued);
                    }
                } else {
                    assert_eq!(p.part, expect_part + 1, "parts count up");
                }
                assert!(!(p.continued && p.partial));
                cur.extend_from_slice(&p.bytes);
                if p.continued {
                    expect_part = p.part;
                } else {
                    lines.push((std::mem::take(&mut cur), p.partial));
                    expect_part = 0;
                }
            }
            assert!(cur.is_empty(), "the last piece says more follows");
            let want = documented_lines(input);
            assert_eq!(lines, want);
            // A line that is valid UTF-8 is never cut inside a character.
            let mut i = 0;
            for (line, _) in &want {
                let whole = std::str::from_utf8(line).is_ok();
                loop {
                    let p = &pieces[i];
                    i += 1;
                    if whole {
                        assert!(
                            std::str::from_utf8(&p.bytes).is_ok(),
                            "a UTF-8 line cut inside a character: {:?}",
                            p.bytes
                        );
                    }
                    if !p.continued {
                        break;
                    }
                }
            }
        }
    }
});
