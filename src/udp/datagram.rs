//! What one datagram becomes (pure; unit-tested and fuzzed): RFC 5426's one datagram, one
//! message. `framing = "syslog"` and `"raw"`: the datagram is one message; `"line"`: each
//! of its lines is one (LF, CRLF or a lone CR ends a line, as over TCP). A trailing run of
//! LF, CR and NUL bytes is not part of the message; a datagram that is nothing else (or
//! nothing at all) gives no message. A datagram cut at the read buffer (MSG_TRUNC) keeps
//! its end: its last piece is marked partial. Every message is cut in pieces that fit the
//! room, as a line over TCP is ([`crate::framing`]).

use crate::config::Framing;
use crate::framing::{Frame, Framer};

/// `datagram` less its trailing LF, CR and NUL bytes.
pub fn trim(datagram: &[u8]) -> &[u8] {
    let end = datagram
        .iter()
        .rposition(|&b| !matches!(b, b'\n' | b'\r' | 0))
        .map_or(0, |i| i + 1);
    &datagram[..end]
}

/// Cuts one datagram into the pieces of its messages, each handed to `emit` (whose
/// `framing` is `mode`'s: a syslog piece has a header to parse); `room` is the room of the
/// sender's entries ([`crate::entry::text_room`]). `truncated`: the datagram was longer
/// than what was read of it. Returns false for a datagram that holds no message.
pub fn cut(
    mode: Framing,
    room: usize,
    datagram: &[u8],
    truncated: bool,
    mut emit: impl FnMut(Frame<'_>),
) -> bool {
    let bytes = if truncated { datagram } else { trim(datagram) };
    if bytes.is_empty() {
        return false;
    }
    let mut framer = Framer::new(mode, room);
    match mode {
        Framing::Line => {
            framer.push(bytes, &mut emit);
            if truncated {
                framer.finish(&mut emit);
            } else {
                // `bytes` does not end a line: this ends the last one.
                framer.push(b"\n", &mut emit);
            }
        }
        Framing::Raw | Framing::Syslog => framer.push_message(bytes, truncated, &mut emit),
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (bytes, part, continued, partial) of every piece.
    fn pieces(
        mode: Framing,
        room: usize,
        datagram: &[u8],
        truncated: bool,
    ) -> Vec<(Vec<u8>, u32, bool, bool)> {
        let mut out = Vec::new();
        let any = cut(mode, room, datagram, truncated, |f| {
            assert_eq!(f.framing, mode);
            out.push((f.bytes.to_vec(), f.part, f.continued, f.partial));
        });
        assert_eq!(any, !out.is_empty());
        out
    }

    fn whole(b: &[u8]) -> (Vec<u8>, u32, bool, bool) {
        (b.to_vec(), 0, false, false)
    }

    const MODES: [Framing; 3] = [Framing::Line, Framing::Raw, Framing::Syslog];

    #[test]
    fn a_trailing_lf_or_nul_is_not_part_of_the_message() {
        for mode in MODES {
            for d in [
                &b"<13>hi"[..],
                b"<13>hi\n",
                b"<13>hi\0",
                b"<13>hi\r\n",
                b"<13>hi\n\0\0",
            ] {
                assert_eq!(
                    pieces(mode, 100, d, false),
                    vec![whole(b"<13>hi")],
                    "{mode:?} {d:?}"
                );
            }
        }
    }

    #[test]
    fn syslog_and_raw_keep_the_datagram_whole_and_line_cuts_it_in_lines() {
        let d = b"<13>first\nsecond\r\nthird\rfourth\n\nlast";
        for mode in [Framing::Raw, Framing::Syslog] {
            assert_eq!(pieces(mode, 100, d, false), vec![whole(d)]);
        }
        let lines: Vec<_> = ["<13>first", "second", "third", "fourth", "", "last"]
            .iter()
            .map(|l| whole(l.as_bytes()))
            .collect();
        assert_eq!(pieces(Framing::Line, 100, d, false), lines);
    }

    /// Issue 19 item 3: bad input. Nothing panics; what holds no message says so (counted
    /// by the caller), everything else is logged.
    #[test]
    fn bad_datagrams_are_logged_or_said_empty_never_a_panic() {
        for mode in MODES {
            assert!(pieces(mode, 100, b"", false).is_empty());
            assert!(pieces(mode, 100, b"\n\0\r\n\0", false).is_empty());
            assert_eq!(pieces(mode, 100, b"<999>", false), vec![whole(b"<999>")]);
            assert_eq!(pieces(mode, 100, b"<13>", false), vec![whole(b"<13>")]);
            let nul = b"a\0b\0\xff\xfe";
            assert_eq!(pieces(mode, 100, nul, false), vec![whole(nul)]);
            // 64 KiB: in pieces that fit, every byte kept, in order.
            let big: Vec<u8> = (0..65_507u32).map(|i| b'a' + (i % 26) as u8).collect();
            let got = pieces(mode, 4000, &big, false);
            assert!(got.len() > 16, "{}", got.len());
            assert_eq!(got.concat_bytes(), big);
            assert!(got.iter().all(|p| p.0.len() <= 4000));
            assert!(
                got[..got.len() - 1].iter().all(|p| p.2),
                "all continued but the last"
            );
        }
        // Garbage: every byte is logged (escaped by the entry), nothing is lost.
        let garbage: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
        for mode in [Framing::Raw, Framing::Syslog] {
            assert_eq!(
                pieces(mode, 10_000, &garbage, false),
                vec![whole(trim(&garbage))]
            );
        }
    }

    #[test]
    fn a_cut_datagram_keeps_its_end_and_marks_the_last_piece_partial() {
        for mode in [Framing::Raw, Framing::Syslog] {
            let got = pieces(mode, 100, b"<13>cut here\n", true);
            assert_eq!(got, vec![(b"<13>cut here\n".to_vec(), 0, false, true)]);
        }
        let got = pieces(Framing::Line, 100, b"one\ntwo", true);
        assert_eq!(got, vec![whole(b"one"), (b"two".to_vec(), 0, false, true)]);
    }

    trait Concat {
        fn concat_bytes(&self) -> Vec<u8>;
    }

    impl Concat for Vec<(Vec<u8>, u32, bool, bool)> {
        fn concat_bytes(&self) -> Vec<u8> {
            self.iter().flat_map(|p| p.0.clone()).collect()
        }
    }
}
