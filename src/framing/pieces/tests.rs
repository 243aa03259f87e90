//! The piece cutter's tests: pieces fit the room with their mark, never split a character,
//! bounded memory, a lower room at once, the host's room in a syslog message's later pieces.

use crate::config::Framing;
use crate::framing::test_support::*;
use crate::framing::{Framer, CONTINUED_MARK};

#[test]
fn long_lines_are_split_into_marked_pieces_never_dropped() {
    assert_eq!(
        frames(Framing::Line, 4, &[b"abcdefghij\nxy\n"]),
        vec![
            ("abcd".into(), 1, true, false),
            ("efgh".into(), 2, true, false),
            ("ij".into(), 3, false, false),
            whole("xy"),
        ]
    );
    // The same line arriving a byte at a time gives the same pieces.
    let bytes: Vec<&[u8]> = b"abcdefghij\n".chunks(1).collect();
    assert_eq!(
        frames(Framing::Line, 4, &bytes),
        vec![
            ("abcd".into(), 1, true, false),
            ("efgh".into(), 2, true, false),
            ("ij".into(), 3, false, false),
        ]
    );
    // Exactly the limit is not split.
    assert_eq!(frames(Framing::Line, 4, &[b"abcd\n"]), vec![whole("abcd")]);
    assert_eq!(
        frames(Framing::Line, 4, &[b"abcdef"]),
        vec![
            ("abcd".into(), 1, true, false),
            ("ef".into(), 2, false, true)
        ]
    );
}

#[test]
fn pieces_never_split_a_utf8_character() {
    // "aé€" is 1 + 2 + 3 bytes; with a limit of 4 the euro sign must not be cut.
    let got = frames(Framing::Line, 4, &["aé€x\n".as_bytes()]);
    assert_eq!(got[0].0, "aé");
    assert_eq!(got[1].0, "€x");
}

#[test]
fn memory_is_bounded_by_the_line_limit() {
    let mut framer = Framer::new(Framing::Line, 100);
    let chunk = [b'z'; 1000];
    let mut pieces = 0;
    for _ in 0..1000 {
        framer.push(&chunk, |f| {
            // Followed by more: room for the text and " [continued]".
            assert_eq!(f.bytes.len(), 100 - CONTINUED_MARK.len());
            pieces += 1;
        });
        assert!(framer.buffered() <= 101);
    }
    assert_eq!(pieces * 88 + framer.buffered(), 1_000_000);
}

#[test]
fn a_lower_limit_applies_to_the_line_in_progress() {
    let mut framer = Framer::new(Framing::Line, 100);
    let mut got = Vec::new();
    framer.push(&[b'a'; 50], |f| got.push(f.bytes.len()));
    framer.reconfigure(Framing::Line, 8);
    framer.push(b"bb\n", |f| got.push(f.bytes.len()));
    // Continued pieces of MIN_PIECE (8 is too little room for the mark too), and a last
    // piece of 8.
    assert_eq!(got, [4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 8]);
    assert_eq!(framer.buffered(), 0);
}

#[test]
fn pieces_are_cut_so_that_their_escaped_text_and_mark_fit_the_room() {
    use crate::escape::escaped_len;
    // Plain text: as many bytes as the room holds with the mark.
    let line = [b'x'; 100];
    let got = pieces(Framing::Line, 40, &[&line, b"\n"]);
    let sizes: Vec<usize> = got.iter().map(|p| p.0.len()).collect();
    assert_eq!(sizes, [28, 28, 28, 16]);
    // A last piece needs no mark: a line of exactly the room is not cut, one more is.
    assert_eq!(pieces(Framing::Line, 40, &[&line[..40], b"\n"]).len(), 1);
    let got = pieces(Framing::Line, 40, &[&line[..41], b"\n"]);
    assert_eq!(got[0].0.len(), 28);
    assert_eq!(got[1].0.len(), 13);
    // Binary: 4 escaped bytes each, so a quarter as many raw bytes.
    let binary = [0xffu8; 100];
    let got = pieces(Framing::Line, 40, &[&binary, b"\n"]);
    let sizes: Vec<usize> = got.iter().map(|p| p.0.len()).collect();
    // The last 9 bytes are 36 escaped: a last piece needs no mark.
    assert_eq!(sizes, [7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 9]);
    // Partial: room for " [partial]".
    let got = pieces(Framing::Line, 40, &[&binary[..10]]);
    assert_eq!(
        got,
        [
            (vec![0xff; 7], 1, true, false),
            (vec![0xff; 3], 2, false, true)
        ]
    );
    for (bytes, _, continued, partial) in &got {
        assert!(escaped_len(bytes) <= limit_of(40, *continued, *partial));
    }
    // Characters are never cut, and their escapes count: é is 2 bytes, ESC escapes to 4.
    // Room 18: 6 for a continued piece (three é), 18 for the last (2 + 4 + 4 + 4 + 2).
    let text = "ééééé\x1b\x1bé".as_bytes();
    let got = pieces(Framing::Line, 18, &[text, b"\n"]);
    let texts: Vec<&[u8]> = got.iter().map(|p| &p.0[..]).collect();
    assert_eq!(texts, ["ééé".as_bytes(), "éé\x1b\x1bé".as_bytes()]);
    // Room 17: 5 for a continued piece; "abcd" and ESC (4) would be 8.
    let got = pieces(Framing::Line, 17, &[b"abcd\x1bxxxxxxxxxxxx\n"]);
    let texts: Vec<&[u8]> = got.iter().map(|p| &p.0[..]).collect();
    assert_eq!(texts, [&b"abcd"[..], b"\x1bxxxxxxxxxxxx"]);
}

#[test]
fn the_pieces_after_the_first_of_a_syslog_message_leave_room_for_its_host() {
    // The first piece is cut like a line's; the next ones name the host the first one
    // named (` myhost`, 7 bytes), so they hold 7 bytes less.
    let frame = [&b"<13>1 - myhost app - - - "[..], &[b'm'; 100]].concat();
    let counted = [format!("{} ", frame.len()).as_bytes(), &frame].concat();
    let lf = [&frame[..], b"\n"].concat();
    for stream in [counted, lf] {
        let got = syslog_frames(60, &[&stream]);
        let sizes: Vec<usize> = got.iter().map(|p| p.0.len()).collect();
        assert_eq!(sizes, [48, 41, 36], "{got:?}");
        assert_eq!(got.iter().map(|p| p.0.len()).sum::<usize>(), frame.len());
        // Cut anywhere, the same.
        for cut in 0..stream.len() {
            let (a, b) = stream.split_at(cut);
            assert_eq!(syslog_frames(60, &[a, b]), got, "cut at {cut}");
        }
    }
    // Without a host in the first piece, the pieces are a line's.
    let frame = [&b"<13>1 - - app - - - "[..], &[b'm'; 100]].concat();
    let got = syslog_frames(60, &[&[&frame[..], b"\n"].concat()]);
    let sizes: Vec<usize> = got.iter().map(|p| p.0.len()).collect();
    assert_eq!(sizes, [48, 48, 24]);
}

#[test]
fn any_bytes_cut_at_any_points_give_the_same_pieces_and_each_fits() {
    use crate::escape::escaped_len;
    let mut seed = 0x2545_f491_u32;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    let alphabet: [&[u8]; 12] = [
        b"a",
        b"z",
        b" ",
        b"\\",
        b"\x1b",
        b"\xff",
        "é".as_bytes(),
        "€".as_bytes(),
        "😀".as_bytes(),
        "\u{9b}".as_bytes(),
        "\u{202e}".as_bytes(),
        b"\n",
    ];
    for case in 0..3000 {
        let room = [4, 5, 9, 13, 17, 24, 40, 100][next() as usize % 8];
        let mode = [Framing::Line, Framing::Raw][case % 2];
        let mut stream = Vec::new();
        for _ in 0..next() % 120 {
            stream.extend_from_slice(alphabet[next() as usize % alphabet.len()]);
        }
        let whole = pieces(mode, room, &[&stream]);
        for (bytes, _, continued, partial) in &whole {
            let limit = limit_of(room, *continued, *partial);
            // One character is always taken, even if its escape is longer than the limit.
            let one_char = crate::escape::fitting_prefix(bytes, 0) == bytes.len();
            assert!(
                escaped_len(bytes) <= limit || one_char,
                "case {case}: {bytes:?} over {limit}"
            );
        }
        if mode == Framing::Line {
            let mut rest = &stream[..];
            let mut reads = Vec::new();
            while !rest.is_empty() {
                let n = (1 + next() as usize % 16).min(rest.len());
                reads.push(&rest[..n]);
                rest = &rest[n..];
            }
            assert_eq!(pieces(mode, room, &reads), whole, "case {case}: {reads:?}");
        }
    }
}
