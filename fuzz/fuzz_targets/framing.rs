//! Arbitrary bytes, cut into arbitrary reads, through the line framer, the escaper and the
//! journald entry encoder, as the daemon does with what a client sends.
//!
//! Input: byte 0 picks `max_line_length` (12..=123: the peer's 17-byte `label: ` prefix plus
//! -5..=106, so that the room left for text runs from below the 4-byte floor to about a
//! hundred bytes and pieces are cut often), byte 1 the mode and whether the limit may
//! change between reads (a reload), byte 2 seeds the read sizes; the rest is what the client
//! sent, from the peer `192.0.2.7:51234`. Invariants checked:
//! - no MESSAGE is longer than the `max_line_length` in force when its piece was emitted
//!   (when that limit leaves room for the prefix, the mark and any one escaped character),
//!   no piece is longer raw than the room the framer was given, and the framer never holds
//!   more than that + 1 bytes;
//! - in line mode, joining each line's pieces gives exactly the lines of the input (ended by
//!   LF, CRLF or a lone CR, terminators removed), the last one marked partial if unended;
//!   without reloads each line is cut into exactly the documented pieces (the oracle in
//!   tests/common/lines.rs); pieces of a valid UTF-8 line are valid UTF-8 (no character is
//!   cut); part numbers count up from 1 and only the last piece of a line is not `continued`;
//! - in raw mode, each read, minus its trailing CR/LF, is cut into the documented pieces;
//! - the escaped text has no control character but TAB, no bidi override or line separator,
//!   and unescaping it gives the bytes back;
//! - the native-protocol entry decodes to exactly the fields that were encoded (nothing a
//!   client sends can add or change a field).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::net::SocketAddr;
use tcp_listener::config::Framing;
use tcp_listener::entry::{peer_label, text_room, Entry, Peer};
use tcp_listener::escape::{escape, unescape};
use tcp_listener::framing::{Frame, Framer};
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
use lines::{documented_lines, documented_pieces};

const PEER: ([u8; 4], u16) = ([192, 0, 2, 7], 51234);

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

/// The entry the daemon logs for `piece`: its MESSAGE is the prefix, the escaped text and
/// the mark; it decodes to exactly the fields encoded (nothing a client sends can add or
/// change a field); and its MESSAGE fits the limit in force.
fn check_entry(text: &str, piece: &Piece, max_line_length: usize, label: &str) {
    let addr = SocketAddr::from(PEER);
    let peer = Peer {
        addr,
        connection_id: 3,
    };
    let frame = Frame {
        bytes: &piece.bytes,
        part: piece.part,
        continued: piece.continued,
        partial: piece.partial,
        framing: Framing::Line,
    };
    let mut buf = String::new();
    let entry = Entry::line(&mut buf, label, peer, 7, &frame);
    let mark = if piece.continued {
        " [continued]"
    } else if piece.partial {
        " [partial]"
    } else {
        ""
    };
    assert_eq!(entry.message, format!("{label}: {text}{mark}"));
    // Room for the prefix, the longest mark and the longest escape of one character (8).
    if max_line_length >= label.len() + 2 + 12 + 8 {
        assert!(
            entry.message.len() <= max_line_length,
            "a MESSAGE of {} bytes with max_line_length {max_line_length}",
            entry.message.len()
        );
    }
    let mut out = Vec::new();
    encode_entry(&mut out, &entry);
    let got = decode_entry(&out);
    let part = piece.part.to_string();
    let mut want: Vec<(String, Vec<u8>)> = vec![
        ("MESSAGE".into(), entry.message.as_bytes().to_vec()),
        ("PRIORITY".into(), b"6".to_vec()),
        ("SYSLOG_IDENTIFIER".into(), b"tcp-listener".to_vec()),
        ("SYSLOG_FACILITY".into(), b"3".to_vec()),
        ("LISTENER_EVENT".into(), b"line".to_vec()),
        ("REMOTE_ADDR".into(), b"192.0.2.7".to_vec()),
        ("REMOTE_PORT".into(), b"51234".to_vec()),
        ("CONNECTION_ID".into(), b"3".to_vec()),
        ("LINE_NUMBER".into(), b"7".to_vec()),
    ];
    if piece.part > 0 {
        want.push(("LINE_PART".into(), part.into_bytes()));
    }
    if piece.continued {
        want.push(("LINE_CONTINUED".into(), b"1".to_vec()));
    }
    if piece.partial {
        want.push(("LINE_PARTIAL".into(), b"1".to_vec()));
    }
    assert_eq!(got, want);
}

/// The pieces' sizes, per line (or read).
fn sizes(pieces: &[Piece]) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    for p in pieces {
        cur.push(p.bytes.len());
        if !p.continued {
            out.push(std::mem::take(&mut cur));
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let label = peer_label(SocketAddr::from(PEER));
    let label_len = label.len();
    let mut limit = 12 + (data[0] % 112) as usize;
    let room = |limit: usize| text_room(limit, &label);
    let mode = if data[1] & 1 == 1 {
        Framing::Raw
    } else {
        Framing::Line
    };
    let reloads = data[1] & 2 == 2;
    let mut rng = u32::from(data[2]).wrapping_mul(2_654_435_761) | 1;
    let input = &data[3..];

    let mut framer = Framer::new(mode, room(limit));
    let mut pieces: Vec<Piece> = Vec::new();
    let mut reads: Vec<&[u8]> = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        let n = (1 + xorshift(&mut rng) as usize % 24).min(rest.len());
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        reads.push(chunk);
        if reloads && xorshift(&mut rng) % 8 == 0 {
            limit = 12 + xorshift(&mut rng) as usize % 112;
            framer.reconfigure(mode, room(limit));
        }
        framer.push(chunk, |f: Frame<'_>| pieces.push(Piece::new(f, limit)));
        assert!(
            framer.buffered() <= room(limit) + 1,
            "holds {} bytes with a room of {}",
            framer.buffered(),
            room(limit)
        );
    }
    framer.finish(|f: Frame<'_>| pieces.push(Piece::new(f, limit)));

    for p in &pieces {
        assert!(
            p.bytes.len() <= room(p.limit),
            "a piece of {} bytes with a room of {}",
            p.bytes.len(),
            room(p.limit)
        );
        if mode == Framing::Line {
            assert!(!p.bytes.contains(&b'\n') && !p.bytes.contains(&b'\r'));
        }
        let text = check_escaped(&p.bytes);
        check_entry(&text, p, p.limit, &label);
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
            // Each read's pieces join to it.
            let mut got: Vec<Vec<u8>> = Vec::new();
            let mut cur = Vec::new();
            for p in &pieces {
                cur.extend_from_slice(&p.bytes);
                if !p.continued {
                    got.push(std::mem::take(&mut cur));
                }
            }
            assert_eq!(got, want);
            if !reloads {
                let documented: Vec<Vec<usize>> = want
                    .iter()
                    .map(|r| {
                        let pieces = documented_pieces(r, false, label_len, limit);
                        pieces.iter().map(Vec::len).collect()
                    })
                    .collect();
                assert_eq!(sizes(&pieces), documented);
            }
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
            if !reloads {
                let documented: Vec<Vec<usize>> = want
                    .iter()
                    .map(|(line, partial)| {
                        let pieces = documented_pieces(line, *partial, label_len, limit);
                        pieces.iter().map(Vec::len).collect()
                    })
                    .collect();
                assert_eq!(sizes(&pieces), documented);
            }
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
