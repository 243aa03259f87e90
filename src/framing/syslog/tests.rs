//! Syslog framing's tests: octet counting, its LF/NUL fallback and the terminator learned,
//! on captures of real senders and on random streams cut at random points.

use super::find_trailer;
use crate::config::Framing;
use crate::framing::test_support::*;
use crate::framing::Framer;

const LOGGER_LF: &[u8] = include_bytes!("../../../tests/data/syslog/logger-lf.bin");
const LOGGER_OCTETS: &[u8] = include_bytes!("../../../tests/data/syslog/logger-octet-count.bin");
const LOGGER_OVERSIZED: &[u8] =
    include_bytes!("../../../tests/data/syslog/logger-octet-count-oversized.bin");
const LOGGER_LF_LONG: &[u8] = include_bytes!("../../../tests/data/syslog/logger-lf-long.bin");
const RSYSLOG_TRAD_LF: &[u8] =
    include_bytes!("../../../tests/data/syslog/rsyslog-traditional-lf.bin");
const RSYSLOG_TRAD_OCTETS: &[u8] =
    include_bytes!("../../../tests/data/syslog/rsyslog-traditional-octet-counted.bin");
const RSYSLOG_5424_LF: &[u8] =
    include_bytes!("../../../tests/data/syslog/rsyslog-protocol23-lf.bin");
const RSYSLOG_5424_OCTETS: &[u8] =
    include_bytes!("../../../tests/data/syslog/rsyslog-protocol23-octet-counted.bin");

const PYTHON_INFO_FIRST: &[u8] =
    include_bytes!("../../../tests/data/syslog/python-info-then-exception.bin");
const PYTHON_EXCEPTION_FIRST: &[u8] =
    include_bytes!("../../../tests/data/syslog/python-exception-first.bin");

/// Every capture that gives the same pieces however it is cut (the Python capture whose
/// first message is a traceback does not: see its test).
const CAPTURES: [&[u8]; 9] = [
    PYTHON_INFO_FIRST,
    LOGGER_LF,
    LOGGER_OCTETS,
    LOGGER_OVERSIZED,
    LOGGER_LF_LONG,
    RSYSLOG_TRAD_LF,
    RSYSLOG_TRAD_OCTETS,
    RSYSLOG_5424_LF,
    RSYSLOG_5424_OCTETS,
];

#[test]
fn rsyslog_sends_the_same_messages_in_either_framing() {
    let want: Vec<&[u8]> = vec![
        b"<131>Nov 27 16:10:02 vm nas[4242]: disk failing",
        b"<13>Nov 27 16:10:02 vm app hello 5424",
        b"<13>Nov 27 16:10:02 vm root with sd",
        b"<13>Nov 27 16:10:03 vm tagonly: no pid",
        b"<13>Nov 27 16:10:03 vm root: ctrl #033[31m red",
        b"<13>Nov 27 16:10:03 vm root with#012newline",
    ];
    assert_eq!(syslog_texts(RSYSLOG_TRAD_LF), want);
    assert_eq!(syslog_texts(RSYSLOG_TRAD_OCTETS), want);
    // The RFC 5424 template ends in LF, counted in MSG-LEN: not part of the message.
    let lf = syslog_texts(RSYSLOG_5424_LF);
    assert_eq!(lf.len(), 6);
    assert_eq!(
        lf[0],
        b"<131>1 2026-11-27T16:10:02+00:00 vm nas 4242 - -  disk failing"
    );
    assert_eq!(syslog_texts(RSYSLOG_5424_OCTETS), lf);
}

#[test]
fn logger_octet_counted_frames_are_cut_exactly() {
    let got = syslog_texts(LOGGER_OCTETS);
    let tq = r#"[timeQuality tzKnown="1" isSynced="0"]"#;
    let want: Vec<Vec<u8>> = vec![
        format!("<13>1 2026-11-27T16:09:47.675999+00:00 vm root - - {tq} hello").into(),
        b"<13>Nov 27 16:09:48 vm root: hello 3164 oc".to_vec(),
        format!("<131>1 2026-11-27T16:09:48.908392+00:00 vm nas 4242 - {tq} disk failing oc")
            .into(),
        format!("<13>1 2026-11-27T16:09:49.838449+00:00 vm multi - - {tq} line one").into(),
        format!("<13>1 2026-11-27T16:09:49.838501+00:00 vm multi - - {tq} line two").into(),
        // An LF inside a counted frame is data.
        format!("<13>1 2026-11-27T16:09:51.069496+00:00 vm root - - {tq} with\nnewline inside oc")
            .into(),
        format!("<13>1 2026-11-27T16:09:51.376656+00:00 vm tag with space - - {tq} x").into(),
        format!("<13>1 2026-11-27T16:09:52.008057+00:00 vm root - - {tq} é ü \x1b[31m ctrl").into(),
    ];
    assert_eq!(got, want);
}

#[test]
fn logger_lf_frames_end_at_each_lf() {
    let got = syslog_texts(LOGGER_LF);
    assert_eq!(got.len(), 11);
    assert_eq!(got[1], b"<13>Nov 27 16:09:47 vm root: hello 3164");
    assert_eq!(
        got[3],
        b"<131>Nov 27 16:09:49 vm nas[4242]: disk failing 3164"
    );
    assert_eq!(got[7], b"<13>1 - - root - - - bare");
    // LF framing cannot carry an LF: logger's message is cut there (as RFC 6587 says).
    assert!(got[8].ends_with(b"] with"));
    assert_eq!(got[9], b"newline inside");
    assert!(got
        .iter()
        .all(|f| !f.contains(&b'\n') && f.starts_with(b"<") || f == b"newline inside"));
}

#[test]
fn every_capture_gives_the_same_pieces_however_it_is_cut() {
    for capture in CAPTURES {
        let whole = syslog_frames(4096, &[capture]);
        let bytes: Vec<&[u8]> = capture.chunks(1).collect();
        assert_eq!(syslog_frames(4096, &bytes), whole);
        for size in [2, 3, 7, 64, 1000] {
            let chunks: Vec<&[u8]> = capture.chunks(size).collect();
            assert_eq!(syslog_frames(4096, &chunks), whole, "reads of {size}");
        }
    }
}

#[test]
fn python_sysloghandler_messages_end_at_their_nul_with_their_lfs() {
    // Issue 17: `<11>pyapp[pid]: it failed\nTraceback …\0`, each line of which was an
    // entry. Each record is one message, its LFs inside, in either order.
    for capture in [PYTHON_INFO_FIRST, PYTHON_EXCEPTION_FIRST] {
        let want: Vec<&[u8]> = capture
            .split(|&b| b == 0)
            .filter(|m| !m.is_empty())
            .collect();
        assert_eq!(want.len(), 2);
        let traceback = want.iter().find(|m| m.starts_with(b"<11>")).unwrap();
        assert_eq!(traceback.iter().filter(|&&b| b == b'\n').count(), 4);
        assert_eq!(syslog_texts(capture), want);
    }
    // The info message first: its NUL says NUL framing before any LF comes, so every
    // cut gives the same (CAPTURES). The traceback first: the same however it is cut,
    // except right after one of its LFs (the read ends there and the daemon cannot wait,
    // so that LF ends a message): then it is two messages, the rest from that LF on
    // (without a header) ended by the NUL, and the next message is whole.
    let whole = syslog_frames(4096, &[PYTHON_EXCEPTION_FIRST]);
    let first = &whole[0].0;
    let nul = PYTHON_EXCEPTION_FIRST.iter().position(|&b| b == 0).unwrap();
    let mut cut_after_lf = 0;
    for cut in 1..PYTHON_EXCEPTION_FIRST.len() {
        let (a, b) = PYTHON_EXCEPTION_FIRST.split_at(cut);
        let got = syslog_frames(4096, &[a, b]);
        if a.ends_with(b"\n") && cut < nul {
            cut_after_lf += 1;
            assert_eq!(got.len(), 3, "cut at {cut}");
            assert_eq!(got[0].0, &first[..cut - 1]);
            assert_eq!(got[1].0, &first[cut..], "the LF ended the first");
            assert_eq!(got[2], whole[1]);
        } else {
            assert_eq!(got, whole, "cut at {cut}");
        }
    }
    assert_eq!(cut_after_lf, 4);
}

#[test]
fn the_terminator_is_learned_from_the_stream() {
    // A NUL that ends a message: NUL framing; an LF is message from then on.
    assert_eq!(
        syslog_texts(b"<14>a\0<14>b\nc\n<14>d\0"),
        [&b"<14>a"[..], b"<14>b\nc\n<14>d"]
    );
    // An LF followed by the start of a message (`<`, a count's digit): LF framing; an LF
    // ends every message from then on, one that starts with `<` too.
    assert_eq!(
        syslog_texts(b"<14>a\n<14>b\nc\n"),
        [&b"<14>a"[..], b"<14>b", b"c"]
    );
    assert_eq!(
        syslog_texts(b"<14>a\n5 hello<14>b\nc\0"),
        [&b"<14>a"[..], b"hello", b"<14>b", b"c"]
    );
    // Known only once the byte after the LF has come, in the same read or the next.
    assert_eq!(
        syslog_frames(4096, &[b"<14>a\n", b"<14>b\nc\n"]),
        syslog_frames(4096, &[b"<14>a\n<14>b\nc\n"])
    );
    // Not known yet: an LF in a message starting with `<` followed by anything else is
    // message (a NUL-terminated sender's first message), one followed by nothing yet
    // ends it; in a message that does not start with `<`, an LF ends it.
    assert_eq!(syslog_texts(b"<14>a\nb\nc"), [b"<14>a\nb\nc"]);
    assert_eq!(
        syslog_frames(4096, &[b"<14>a\n", b"b\nc\0", b"<14>d\ne\0"]),
        vec![bwhole(b"<14>a"), bwhole(b"b\nc"), bwhole(b"<14>d\ne")],
        "the rest of a message cut after an LF may hold LFs too"
    );
    assert_eq!(syslog_texts(b"plain\ntext\n"), [&b"plain"[..], b"text"]);
    // Empty frames (noise) say nothing.
    assert_eq!(
        syslog_texts(b"3 abc\0\n<14>a\nb\0"),
        [&b"abc"[..], b"<14>a\nb"]
    );
}

#[test]
fn a_count_split_in_its_length_or_its_body_still_frames_exactly() {
    let want = vec![bwhole(b"hello world"), bwhole(b"x")];
    assert_eq!(syslog_frames(4096, &[b"1", b"1 hello world1 x"]), want);
    assert_eq!(
        syslog_frames(4096, &[b"11", b" hello", b" world", b"1 x"]),
        want
    );
    assert_eq!(
        syslog_frames(4096, &[b"11 ", b"hello world1", b" ", b"x"]),
        want
    );
    // A count and its frame all in one read, twice.
    assert_eq!(syslog_frames(4096, &[b"11 hello world1 x"]), want);
}

#[test]
fn one_connection_may_mix_counted_and_lf_frames() {
    assert_eq!(
        syslog_texts(b"11 hello world<13>an lf frame\n5 abcde<14>another\n3 end"),
        [
            &b"hello world"[..],
            b"<13>an lf frame",
            b"abcde",
            b"<14>another",
            b"end"
        ]
    );
}

#[test]
fn a_malformed_length_falls_back_to_lf_framing_with_its_bytes_as_sent() {
    // A non-digit before the space.
    assert_eq!(
        syslog_texts(b"12a <13>x\n5 abcde"),
        [&b"12a <13>x"[..], b"abcde"]
    );
    // No space: digits then the LF.
    assert_eq!(syslog_texts(b"123\n5 abcde"), [&b"123"[..], b"abcde"]);
    assert_eq!(syslog_texts(b"42<13>x\n"), [b"42<13>x"]);
    // A leading zero, and zero.
    assert_eq!(syslog_texts(b"05 hello\n"), [b"05 hello"]);
    assert_eq!(syslog_texts(b"0 \n2 ab"), [&b"0 "[..], b"ab"]);
    // Oversized: over MAX_FRAME (decided at the digit that passes it).
    assert_eq!(
        syslog_frames(4096, &[b"200001 hello\n2 ab"]),
        vec![bwhole(b"200001 hello"), bwhole(b"ab")]
    );
    assert_eq!(
        syslog_frames(4096, &[b"99999999999999999999 x\n"]),
        vec![bwhole(b"99999999999999999999 x")]
    );
    // MAX_FRAME itself is a count: the connection ends before its bytes do.
    assert_eq!(
        syslog_frames(4096, &[b"200000 hello\n"]),
        vec![(b"hello\n".to_vec(), 0, false, true)]
    );
    // The same, cut at every point.
    let stream = b"12a <13>x\n123\n05 hello\n11 hello world0 \n999999 y\n2 ab";
    let whole = syslog_frames(4096, &[stream]);
    for cut in 0..stream.len() {
        let (a, b) = stream.split_at(cut);
        assert_eq!(syslog_frames(4096, &[a, b]), whole, "cut at {cut}");
    }
    assert_eq!(whole.len(), 7);
}

#[test]
fn a_logger_frame_over_the_line_limit_is_cut_into_pieces_and_the_next_stands_alone() {
    // logger --octet-count --size 6000: a 5089-byte frame, then a 105-byte one, no LF.
    let body = &LOGGER_OVERSIZED[b"5089 ".len()..][..5089];
    let next = &LOGGER_OVERSIZED[b"5089 ".len() + 5089 + b"105 ".len()..];
    assert!(next.ends_with(b"short after long"));
    let got = syslog_frames(4096, &[LOGGER_OVERSIZED]);
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!((got[0].1, got[0].2, got[0].3), (1, true, false));
    assert_eq!((got[1].1, got[1].2, got[1].3), (2, false, false));
    assert_eq!([&got[0].0[..], &got[1].0[..]].concat(), body);
    assert_eq!(got[2], bwhole(next), "in sync: the next frame is whole");
    // The same message LF-framed is cut into pieces the same way.
    let lf = syslog_frames(4096, &[LOGGER_LF_LONG]);
    assert_eq!(lf.len(), 3);
    assert_eq!((lf[1].1, lf[1].2), (2, false));
    assert!(lf[2].0.ends_with(b"short after long"));
    assert_eq!(lf[2].1, 0);
}

#[test]
fn a_counted_frame_up_to_max_frame_is_cut_as_it_arrives_in_bounded_memory() {
    let body: Vec<u8> = (0..150_000).map(|i| b'a' + (i % 26) as u8).collect();
    let mut stream = format!("{} ", body.len() + 2).into_bytes();
    stream.extend_from_slice(&body);
    stream.extend_from_slice(b"\r\n5 hello");
    for read in [1, 7, 1000, 4097, stream.len()] {
        let chunks: Vec<&[u8]> = stream.chunks(read).collect();
        let got = syslog_frames(4096, &chunks);
        let (last, pieces) = got.split_last().unwrap();
        assert_eq!(last, &bwhole(b"hello"), "reads of {read}");
        let joined: Vec<u8> = pieces.iter().flat_map(|p| p.0.clone()).collect();
        assert_eq!(
            joined, body,
            "reads of {read}: the CRLF trailer is not message"
        );
        assert!(pieces.iter().all(|p| p.0.len() <= 4096 && !p.3));
        assert_eq!(pieces.len(), 37);
        assert_eq!(got, syslog_frames(4096, &[&stream]), "reads of {read}");
    }
    // A counted frame's CRLF trailer cut by a read: the same pieces as in one read.
    for (stream, want) in [
        (&b"6 abcd\r\n"[..], vec![bwhole(b"abcd")]),
        (
            b"7 abcde\r\n",
            vec![
                (b"abcd".to_vec(), 1, true, false),
                (b"e".to_vec(), 2, false, false),
            ],
        ),
        (
            b"6 abcde\r",
            vec![
                (b"abcd".to_vec(), 1, true, false),
                (b"e".to_vec(), 2, true, false),
                // A CR is escaped as \x0d: 4 bytes.
                (b"\r".to_vec(), 3, false, false),
            ],
        ),
    ] {
        for cut in 0..stream.len() {
            let (a, b) = stream.split_at(cut);
            assert_eq!(syslog_frames(4, &[a, b]), want, "{stream:?} cut at {cut}");
        }
    }
}

#[test]
fn trailers_are_not_part_of_the_message() {
    // Inside the count: LF, CRLF or NUL at the very end.
    assert_eq!(
        syslog_texts(b"6 hello\n7 hello\r\n6 hello\x004 a\nb"),
        [&b"hello"[..], b"hello", b"hello", b"a\nb"]
    );
    // LF framing: CR right before the LF is dropped, a CR elsewhere is data.
    assert_eq!(
        syslog_texts(b"<13>a\r\n<13>b\rc\n"),
        [&b"<13>a"[..], b"<13>b\rc"]
    );
    // ... also when the CR and the LF come in different reads.
    assert_eq!(
        syslog_frames(4096, &[b"<13>a\r", b"\n<13>b\r", b"x\n"]),
        vec![bwhole(b"<13>a"), bwhole(b"<13>b\rx")]
    );
    // NUL ends a frame as LF does (RFC 6587 3.4.2); a CR before it is dropped too.
    assert_eq!(
        syslog_texts(b"<13>a\x00<13>b\r\x00"),
        [&b"<13>a"[..], b"<13>b"]
    );
    // Once LF framing is known, a NUL still ends a message.
    assert_eq!(syslog_texts(b"<13>a\n<13>b\x00"), [&b"<13>a"[..], b"<13>b"]);
}

#[test]
fn empty_frames_are_noise_and_produce_nothing() {
    // An LF (or CRLF, NUL) after a counted frame; blank lines; a counted trailer alone.
    assert_eq!(
        syslog_texts(b"5 hello\n5 world\r\n\n\n\x001 \n2 \r\n<13>x\n"),
        [&b"hello"[..], b"world", b"<13>x"]
    );
    assert_eq!(syslog_frames(4096, &[b"\n\n", b"\r\n"]), vec![]);
    // A frame of one space is not empty.
    assert_eq!(syslog_texts(b" \n1  "), [b" ", b" "]);
}

#[test]
fn long_lf_frames_are_split_like_lines_and_counted_frames_never_are() {
    assert_eq!(
        syslog_frames(4, &[b"<1>abcdefg\n4 wxyz"]),
        vec![
            (b"<1>a".to_vec(), 1, true, false),
            (b"bcde".to_vec(), 2, true, false),
            (b"fg".to_vec(), 3, false, false),
            bwhole(b"wxyz"),
        ]
    );
    // A CR after a piece boundary is still dropped; the last piece may be empty then.
    assert_eq!(
        syslog_frames(4, &[b"<1>a", b"\r", b"\n"]),
        vec![bwhole(b"<1>a")]
    );
    assert_eq!(
        syslog_frames(4, &[b"<1>ab", b"\r", b"\n"]),
        vec![
            (b"<1>a".to_vec(), 1, true, false),
            (b"b".to_vec(), 2, false, false)
        ]
    );
    assert_eq!(
        syslog_frames(4, &[b"<1>ab\r", b"\n"]),
        vec![
            (b"<1>a".to_vec(), 1, true, false),
            (b"b".to_vec(), 2, false, false)
        ]
    );
}

#[test]
fn a_cut_connection_logs_what_it_had_as_partial() {
    assert_eq!(
        syslog_frames(4096, &[b"5 hello11 hello"]),
        vec![bwhole(b"hello"), (b"hello".to_vec(), 0, false, true)]
    );
    assert_eq!(
        syslog_frames(4096, &[b"12"]),
        vec![(b"12".to_vec(), 0, false, true)]
    );
    assert_eq!(
        syslog_frames(4096, &[b"<13>x"]),
        vec![(b"<13>x".to_vec(), 0, false, true)]
    );
    // A CR held back at the end of a read is part of the cut frame.
    assert_eq!(
        syslog_frames(4096, &[b"<13>x\r"]),
        vec![(b"<13>x\r".to_vec(), 0, false, true)]
    );
    // A count with nothing of its frame yet: no bytes of a message to log.
    assert_eq!(syslog_frames(4096, &[b"12 "]), vec![]);
}

#[test]
fn syslog_memory_is_bounded_by_the_line_limit() {
    let mut framer = Framer::new(Framing::Syslog, 100);
    let mut seed = 0x2545_f491_u32;
    for _ in 0..20_000 {
        let chunk: Vec<u8> = (0..(seed % 300) as usize)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                b"0123456789 <>\nx\r\0"[seed as usize % 17]
            })
            .collect();
        framer.push(&chunk, |f| assert!(f.bytes.len() <= 100));
        assert!(framer.buffered() <= 102, "{}", framer.buffered());
    }
}

#[test]
fn a_lower_limit_applies_to_a_counted_frame_in_progress() {
    let mut framer = Framer::new(Framing::Syslog, 100);
    let mut got = Vec::new();
    framer.push(b"20 0123456789", |f| got.push(f.bytes.to_vec()));
    framer.reconfigure(Framing::Syslog, 4);
    framer.push(b"abcdefghij", |f| got.push(f.bytes.to_vec()));
    let want: Vec<&[u8]> = vec![b"0123", b"4567", b"89ab", b"cdef", b"ghij"];
    assert_eq!(got, want);
}

#[test]
fn the_fast_trailer_search_agrees_with_the_byte_by_byte_one() {
    let slow = |d: &[u8]| d.iter().position(|&b| b == b'\n' || b == 0);
    crate::swar::check_scan(find_trailer, slow, Some(0), None);
}

/// What the daemon logs for each piece, as the lead's server is to do it: the header of
/// a whole message or a first piece is parsed, later pieces take the first one's fields.
fn entries(pieces: &[(Vec<u8>, u32, bool, bool)]) -> Vec<(u8, String, String)> {
    use crate::syslog_message::{parse, write_message, JournalFields, Sticky};
    let mut sticky = Sticky::new();
    let mut fields = JournalFields::new();
    pieces
        .iter()
        .map(|(bytes, part, _, _)| {
            let header = if *part <= 1 {
                let h = parse(bytes);
                if *part == 1 {
                    sticky.remember(&h);
                }
                h
            } else {
                sticky.continuation(bytes)
            };
            fields.set(&header);
            let mut message = String::new();
            write_message(&mut message, "192.0.2.7:51234", &header);
            let fields: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
            (header.priority(6), fields.join("\n"), message)
        })
        .collect()
}

#[test]
fn any_frames_cut_at_any_points_give_the_same_pieces_and_entries() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut messages = 0;
    let mut split = 0;
    for case in 0..4000 {
        let max = rng.pick(&[4, 5, 7, 16, 64, 300, 4096]);
        let (stream, want) = syslog_stream(&mut rng);
        let whole = syslog_frames(max, &[&stream]);
        // Joining each message's pieces gives the messages sent, in order.
        let mut got: Vec<Vec<u8>> = Vec::new();
        let mut cur = Vec::new();
        for (bytes, part, continued, partial) in &whole {
            assert!(bytes.len() <= max, "case {case}");
            assert!(!partial, "case {case}: every frame was complete");
            cur.extend_from_slice(bytes);
            if *part > 0 {
                split += 1;
            }
            if !continued {
                got.push(std::mem::take(&mut cur));
            }
        }
        assert_eq!(got, want, "case {case}: {stream:?}");
        messages += want.len();
        // Any cuts, and a byte at a time, give the same pieces and so the same entries.
        let reads = cut(&mut rng, &stream);
        assert_eq!(syslog_frames(max, &reads), whole, "case {case}: {reads:?}");
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(syslog_frames(max, &bytes), whole, "case {case}");
        // An unsplit message's entry is its own parse.
        let entries = entries(&whole);
        for ((bytes, part, _, _), entry) in whole.iter().zip(&entries) {
            if *part == 0 {
                assert_eq!(
                    entry,
                    &super::tests::entries(&[(bytes.clone(), 0, false, false)])[0]
                );
            }
        }
    }
    assert!(
        messages > 10_000 && split > 1_000,
        "{messages} messages, {split} pieces"
    );
}

#[test]
fn any_bytes_cut_at_any_points_give_the_same_pieces() {
    // Not only well-formed streams: malformed counts, stray digits, CRs, NULs, LFs. Once
    // the terminator is known (a first message ended by NUL, or by an LF the next message
    // follows), cut anywhere, they give the pieces of the stream fed whole; before, cut
    // anywhere but right after an LF (which must then end a message: no more has come).
    // No byte is gained.
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    for case in 0..30_000 {
        let max = rng.pick(&[4, 5, 9, 12, 100]);
        let len = rng.below(120);
        let known: &[u8] = rng.pick(&[b"", b"<1>p\0", b"<1>p\n<1>q\n"]);
        let mut stream = known.to_vec();
        stream.extend((0..len).map(|_| rng.pick(b"0123456789  \n\n\r\0<<>ax\xc3\xa9")));
        let whole = syslog_frames(max, &[&stream]);
        let mut reads = cut(&mut rng, &stream);
        if known.is_empty() {
            // Join each read that ends in an LF to the next.
            let mut joined: Vec<&[u8]> = Vec::new();
            let mut start = 0;
            let mut end = 0;
            for r in &reads {
                end += r.len();
                if !r.ends_with(b"\n") || end == stream.len() {
                    joined.push(&stream[start..end]);
                    start = end;
                }
            }
            reads = joined;
        }
        assert_eq!(syslog_frames(max, &reads), whole, "case {case}: {reads:?}");
        let logged: usize = whole.iter().map(|f| f.0.len()).sum();
        assert!(logged <= stream.len());
    }
}
