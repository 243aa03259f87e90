//! Arbitrary bytes, cut into arbitrary reads, through the syslog framer (`framing =
//! "syslog"`), the syslog header parser, the journal field mapping and the MESSAGE form, as
//! the daemon is to do with what a syslog client sends.
//!
//! Input: byte 0 picks the framer's room (`max_line_length` less the peer's `label: `
//! prefix: 4..=67, or 100, 300, 1000, 4096 for bytes 0xc0 and up), byte 1 whether it may
//! change between reads (a reload), byte 2 seeds the read sizes; the rest is what the client
//! sent. Invariants checked:
//! - the framer never holds more than the largest limit in force + 2 bytes, and no piece is
//!   longer than the limit in force when it was emitted;
//! - without reloads, joining each message's pieces gives exactly the messages of a plain
//!   reference framer written below from the documented rules (octet counting or LF/NUL
//!   framing per frame, fall-back, trailers, empty frames, the terminator learned from the
//!   stream, whose only dependence on the reads is an LF that ends one, a cut last frame
//!   marked partial); part numbers count up from 1 and only the last piece of a message is
//!   not `continued`; pieces of a valid UTF-8 message are valid UTF-8;
//! - the header parser never panics and every slice it returns lies inside the piece it was
//!   given; an unparsed piece is kept whole; a continuation piece's header is the first
//!   piece's (from `Sticky`) with that piece as message;
//! - every journal field value and the MESSAGE are escaped text: no control character but
//!   TAB, no newline, and the field names are the documented constants;
//! - the MESSAGE, prefix and mark included, fits the room (pieces after the first of a
//!   message naming a host are shorter by ` host`), unless the room is too small for the mark,
//!   that host and one escaped character.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcp_listener::config::Framing;
use tcp_listener::escape::escaped_len;
use tcp_listener::framing::{Frame, Framer, MAX_FRAME};
use tcp_listener::syslog_message::{
    field, parse, write_message, Format, Header, JournalFields, Sticky,
};

#[derive(Debug, Clone, PartialEq, Eq)]
struct Piece {
    bytes: Vec<u8>,
    part: u32,
    continued: bool,
    partial: bool,
    limit: usize,
}

impl Piece {
    fn new(f: Frame<'_>, limit: usize) -> Piece {
        assert_eq!(f.framing, Framing::Syslog);
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

fn limit_of(b: u8) -> usize {
    if b < 0xc0 {
        4 + usize::from(b % 64)
    } else {
        [100, 300, 1000, 4096][usize::from(b % 4)]
    }
}

/// Which byte ends a frame that is not octet-counted, as the reference learns it.
#[derive(Clone, Copy, PartialEq)]
enum Terminator {
    Unknown,
    /// An LF ended a message; `cut`: one that could hold LFs (it started with `<` or was the
    /// rest of one).
    AfterLf {
        cut: bool,
    },
    Lf,
    Nul,
}

/// The documented syslog framing, written plainly over the whole stream: the messages and
/// whether each is partial (cut by the end of the stream). `read_ends[i]`: a read ended right
/// after byte `i` (the last byte always ends one).
fn reference(data: &[u8], read_ends: &[bool]) -> Vec<(Vec<u8>, bool)> {
    let mut out = Vec::new();
    let mut terminator = Terminator::Unknown;
    let mut i = 0;
    while i < data.len() {
        let starts_message = matches!(data[i], b'<' | b'1'..=b'9');
        let mut rest_of_cut = false;
        if let Terminator::AfterLf { cut } = terminator {
            terminator = if starts_message {
                Terminator::Lf
            } else {
                rest_of_cut = cut;
                Terminator::Unknown
            };
        }
        if (b'1'..=b'9').contains(&data[i]) {
            // MSG-LEN: digits, then a space; at most MAX_FRAME.
            let mut j = i;
            let mut len = 0usize;
            while j < data.len() && data[j].is_ascii_digit() && len <= MAX_FRAME {
                len = len * 10 + usize::from(data[j] - b'0');
                j += 1;
            }
            if len <= MAX_FRAME {
                if j == data.len() {
                    // Only digits so far: cut.
                    out.push((data[i..].to_vec(), true));
                    break;
                }
                if data[j] == b' ' {
                    let start = j + 1;
                    let end = start + len;
                    if end > data.len() {
                        if start < data.len() {
                            out.push((data[start..].to_vec(), true));
                        }
                        break;
                    }
                    let mut frame = &data[start..end];
                    if frame.ends_with(b"\r\n") {
                        frame = &frame[..frame.len() - 2];
                    } else if frame.ends_with(b"\n") || frame.ends_with(b"\0") {
                        frame = &frame[..frame.len() - 1];
                    }
                    if !frame.is_empty() {
                        out.push((frame.to_vec(), false));
                    }
                    i = end;
                    continue;
                }
            }
            // Malformed or oversized: LF framing from the first digit.
        }
        // A frame that may hold LFs while the terminator is not known.
        let may_hold_lf = data[i] == b'<' || rest_of_cut;
        let ends = |j: usize| match (data[j], terminator) {
            (0, _) => true,
            (b'\n', Terminator::Lf) => true,
            (b'\n', Terminator::Unknown) => {
                !may_hold_lf || read_ends[j] || matches!(data.get(j + 1), Some(b'<' | b'1'..=b'9'))
            }
            _ => false,
        };
        match (i..data.len()).position(ends) {
            Some(k) => {
                let mut frame = &data[i..i + k];
                if frame.ends_with(b"\r") {
                    frame = &frame[..frame.len() - 1];
                }
                if !frame.is_empty() {
                    out.push((frame.to_vec(), false));
                    if terminator == Terminator::Unknown {
                        terminator = if data[i + k] == 0 {
                            Terminator::Nul
                        } else {
                            Terminator::AfterLf { cut: may_hold_lf }
                        };
                    }
                }
                i += k + 1;
            }
            None => {
                out.push((data[i..].to_vec(), true));
                break;
            }
        }
    }
    out
}

fn inside(slice: &[u8], whole: &[u8]) -> bool {
    let (s, w) = (slice.as_ptr() as usize, whole.as_ptr() as usize);
    s >= w && s + slice.len() <= w + whole.len()
}

fn check_text(text: &str) {
    for c in text.chars() {
        assert!(
            !c.is_control() || c == '\t',
            "control character {c:?} in {text:?}"
        );
    }
}

const NAMES: [&str; 8] = [
    field::FACILITY,
    field::IDENTIFIER,
    field::PID,
    field::HOSTNAME,
    field::TIMESTAMP,
    field::MSGID,
    field::STRUCTURED_DATA,
    field::PARSE_ERROR,
];

/// What the server is to log for `piece`; checks the parser and the mapping on the way.
fn check_entry(piece: &Piece, sticky: &mut Sticky, fields: &mut JournalFields) {
    let bytes = &piece.bytes[..];
    let header: Header<'_> = if piece.part <= 1 {
        let h = parse(bytes);
        for s in [
            h.timestamp,
            h.hostname,
            h.app_name,
            h.procid,
            h.msgid,
            h.structured_data,
        ]
        .into_iter()
        .flatten()
        .chain([h.message])
        {
            assert!(inside(s, bytes), "a slice outside the frame");
        }
        if h.format == Format::Unparsed {
            assert_eq!(h.message, bytes);
            assert!(h.pri.is_none());
        } else {
            assert!(h.pri.is_some());
        }
        if piece.part == 1 {
            sticky.remember(&h);
        }
        h
    } else {
        let h = sticky.continuation(bytes);
        assert_eq!(h.message, bytes);
        assert!(h.structured_data.is_none());
        h
    };
    assert!(header.priority(6) <= 7);
    fields.set(&header);
    for (name, value) in fields.iter() {
        assert!(NAMES.contains(&name));
        check_text(value);
    }
    let mut message = String::new();
    write_message(&mut message, LABEL, &header);
    check_text(&message);
    // The MESSAGE with its mark fits the room the framer was given after `label: `, when the
    // room is more than its floors: room for the longest mark, the host a piece after the
    // first names, and the longest escape of one character.
    let mark = if piece.continued {
        " [continued]"
    } else if piece.partial {
        " [partial]"
    } else {
        ""
    };
    message.push_str(mark);
    let host = match (piece.part, header.hostname) {
        (2.., Some(host)) => 1 + escaped_len(host),
        _ => 0,
    };
    if piece.limit >= 12 + host + 8 {
        assert!(
            message.len() <= LABEL.len() + 2 + piece.limit,
            "a MESSAGE of {} bytes with room {}: {message:?}",
            message.len(),
            piece.limit
        );
    }
}

const LABEL: &str = "192.0.2.7:51234";

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let mut limit = limit_of(data[0]);
    let reloads = data[1] & 1 == 1;
    let mut rng = u32::from(data[2]).wrapping_mul(2_654_435_761) | 1;
    let input = &data[3..];

    let mut framer = Framer::new(Framing::Syslog, limit);
    let mut largest = limit;
    let mut pieces: Vec<Piece> = Vec::new();
    let mut read_ends = vec![false; input.len()];
    let mut rest = input;
    while !rest.is_empty() {
        let n = (1 + xorshift(&mut rng) as usize % 32).min(rest.len());
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        read_ends[input.len() - rest.len() - 1] = true;
        if reloads && xorshift(&mut rng) % 8 == 0 {
            limit = limit_of(xorshift(&mut rng) as u8);
            largest = largest.max(limit);
            framer.reconfigure(Framing::Syslog, limit);
        }
        framer.push(chunk, |f: Frame<'_>| pieces.push(Piece::new(f, limit)));
        assert!(
            framer.buffered() <= largest + 2,
            "holds {} bytes with limits up to {largest}",
            framer.buffered()
        );
    }
    framer.finish(|f: Frame<'_>| pieces.push(Piece::new(f, limit)));

    let mut sticky = Sticky::new();
    let mut fields = JournalFields::new();
    for p in &pieces {
        assert!(
            p.bytes.len() <= p.limit,
            "a piece of {} bytes with a limit of {}",
            p.bytes.len(),
            p.limit
        );
        check_entry(p, &mut sticky, &mut fields);
    }

    // Join each message's pieces, checking the part numbering on the way.
    let mut messages: Vec<(Vec<u8>, bool)> = Vec::new();
    let mut cur: Vec<u8> = Vec::new();
    let mut expect_part = 0u32;
    for p in &pieces {
        if expect_part == 0 {
            assert!(p.part <= 1, "first piece has part {}", p.part);
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
            assert!(
                !cur.is_empty() || p.partial || p.part > 0,
                "an empty message"
            );
            messages.push((std::mem::take(&mut cur), p.partial));
            expect_part = 0;
        }
    }
    assert!(cur.is_empty(), "the last piece says more follows");
    if reloads {
        return;
    }
    let want = reference(input, &read_ends);
    assert_eq!(messages, want);
    // A message that is valid UTF-8 is never cut inside a character.
    let mut i = 0;
    for (message, _) in &want {
        let whole = std::str::from_utf8(message).is_ok();
        loop {
            let p = &pieces[i];
            i += 1;
            if whole {
                assert!(
                    std::str::from_utf8(&p.bytes).is_ok(),
                    "a UTF-8 message cut inside a character: {:?}",
                    p.bytes
                );
            }
            if !p.continued {
                break;
            }
        }
    }
});
