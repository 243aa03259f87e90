//! Arbitrary datagrams through what one datagram becomes (`udp::cut`, issue 19: RFC 5426's
//! one datagram, one message), as the UDP input does with each datagram it reads.
//!
//! Input: byte 0 picks the framing (`line`, `raw`, `syslog`) and whether the datagram was
//! longer than what was read of it (MSG_TRUNC), byte 1 `max_line_length` (12..=123, as in the
//! framing target, so that pieces are cut often; or 4087 for bytes 0xf0 and up); the rest is
//! the datagram, from the peer `192.0.2.7:51234`. Invariants checked:
//! - `cut` says there is a message exactly when the datagram, less its trailing LF, CR and
//!   NUL bytes (all of it when cut by the read), is not empty; and it emits nothing otherwise;
//! - every piece is of the framing asked for and no longer than the room
//!   (`entry::text_room`); part numbers count up from 1 and only the last piece of a message
//!   is not `continued`; only the last piece of the datagram can be `partial`, and only when
//!   the read cut it;
//! - `raw` and `syslog`: the pieces join to the one message; `line`: the messages are the
//!   documented lines of the datagram (its last line ended by the datagram's end unless the
//!   read cut it); `raw` and `line`: each message is cut in the pieces the README documents
//!   for a line (the oracle in tests/common/lines.rs; a syslog message's later pieces leave
//!   room for its host, which the syslog target checks);
//! - pieces of a valid UTF-8 message are valid UTF-8.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::net::SocketAddr;
use tcp_listener::config::Framing;
use tcp_listener::entry::{peer_label, text_room};
use tcp_listener::framing::Frame;
use tcp_listener::udp::{cut, trim};

/// The documented line rule, shared with the fault suite and the framing target.
#[path = "../../tests/common/lines.rs"]
mod lines;
use lines::{documented_lines, documented_pieces};

const PEER: ([u8; 4], u16) = ([192, 0, 2, 7], 51234);

#[derive(Debug)]
struct Piece {
    bytes: Vec<u8>,
    part: u32,
    continued: bool,
    partial: bool,
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let mode = [Framing::Line, Framing::Raw, Framing::Syslog][usize::from(data[0] % 3)];
    let truncated = data[0] & 0x80 != 0;
    let limit = if data[1] >= 0xf0 {
        4087
    } else {
        12 + usize::from(data[1] % 112)
    };
    let datagram = &data[2..];
    let label = peer_label(SocketAddr::from(PEER));
    let room = text_room(limit, &label);

    let mut pieces: Vec<Piece> = Vec::new();
    let any = cut(mode, room, datagram, truncated, |f: Frame<'_>| {
        assert_eq!(f.framing, mode);
        pieces.push(Piece {
            bytes: f.bytes.to_vec(),
            part: f.part,
            continued: f.continued,
            partial: f.partial,
        });
    });
    let message = if truncated { datagram } else { trim(datagram) };
    assert_eq!(any, !message.is_empty(), "a message exactly when bytes are left");
    if !any {
        assert!(pieces.is_empty(), "pieces of no message: {pieces:?}");
        return;
    }

    // Sizes, numbering, marks.
    let mut messages: Vec<(Vec<u8>, bool, Vec<usize>)> = Vec::new();
    let mut cur: Vec<u8> = Vec::new();
    let mut sizes: Vec<usize> = Vec::new();
    let mut expect_part = 0u32;
    for (i, p) in pieces.iter().enumerate() {
        assert!(
            p.bytes.len() <= room,
            "a piece of {} bytes with a room of {room}",
            p.bytes.len()
        );
        if expect_part == 0 {
            assert!(p.part <= 1, "first piece has part {}", p.part);
            if p.part == 0 {
                assert!(!p.continued);
            }
        } else {
            assert_eq!(p.part, expect_part + 1, "parts count up");
        }
        assert!(!(p.continued && p.partial));
        if p.partial {
            assert!(truncated, "partial without a cut read");
            assert_eq!(i, pieces.len() - 1, "only the last piece can be partial");
        }
        cur.extend_from_slice(&p.bytes);
        sizes.push(p.bytes.len());
        if p.continued {
            expect_part = p.part;
        } else {
            messages.push((std::mem::take(&mut cur), p.partial, std::mem::take(&mut sizes)));
            expect_part = 0;
        }
    }
    assert!(cur.is_empty(), "the last piece says more follows");

    // What the messages are, and how each is cut.
    let want: Vec<(Vec<u8>, bool)> = match mode {
        Framing::Raw | Framing::Syslog => vec![(message.to_vec(), truncated)],
        Framing::Line if truncated => documented_lines(message),
        Framing::Line => documented_lines(&[message, b"\n"].concat()),
    };
    let got: Vec<(Vec<u8>, bool)> = messages
        .iter()
        .map(|(m, partial, _)| (m.clone(), *partial))
        .collect();
    assert_eq!(got, want);
    let mut i = 0;
    for ((text, partial), (_, _, sizes)) in want.iter().zip(&messages) {
        if mode != Framing::Syslog {
            let documented: Vec<usize> = documented_pieces(text, *partial, label.len(), limit)
                .iter()
                .map(Vec::len)
                .collect();
            assert_eq!(sizes, &documented, "the documented pieces");
        }
        let whole = std::str::from_utf8(text).is_ok();
        for _ in sizes {
            if whole {
                assert!(
                    std::str::from_utf8(&pieces[i].bytes).is_ok(),
                    "a UTF-8 message cut inside a character: {:?}",
                    pieces[i].bytes
                );
            }
            i += 1;
        }
    }
});
