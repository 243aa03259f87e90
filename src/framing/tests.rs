//! The outer framer's tests: a change of framing at a frame boundary, and save/restore.

use crate::config::Framing;
use crate::framing::test_support::*;
use crate::framing::{Frame, Framer};

#[test]
fn a_framer_carried_to_another_process_at_any_point_goes_on_the_same() {
    let mut rng = Rng(0x1357_9bdf_2468_ace0);
    for case in 0..3000 {
        let max = rng.pick(&[4, 16, 300, 4096]);
        let (stream, _) = syslog_stream(&mut rng);
        let reads = cut(&mut rng, &stream);
        let want = syslog_frames(max, &reads);
        let mut framer = Framer::new(Framing::Syslog, max);
        let mut got = Vec::new();
        let mut collect =
            |f: Frame<'_>| got.push((f.bytes.to_vec(), f.part, f.continued, f.partial));
        for read in &reads {
            framer.push(read, &mut collect);
            framer = Framer::restore(framer.save(), max).expect("a state it saved");
        }
        framer.finish(&mut collect);
        assert_eq!(got, want, "case {case}: {reads:?}");
    }
    // A state no framer can be in is refused.
    let mut state = Framer::new(Framing::Syslog, 64).save();
    state.syslog = (3, 2);
    assert!(Framer::restore(state, 64).is_err());
}

/// Pieces of `chunks` with `reconfigure(to)` called after the first chunk.
fn switched(from: Framing, to: Framing, chunks: &[&[u8]]) -> Vec<Vec<u8>> {
    let mut framer = Framer::new(from, 4096);
    let mut got = Vec::new();
    for (i, c) in chunks.iter().enumerate() {
        framer.push(c, |f| got.push(f.bytes.to_vec()));
        if i == 0 {
            framer.reconfigure(to, 4096);
        }
    }
    framer.finish(|f| got.push(f.bytes.to_vec()));
    got
}

#[test]
fn line_to_raw_and_back_in_mid_line_mixes_no_bytes_of_two_framings() {
    // Issue 9: this once produced "AAA-start-of-line-DDD line mode again", a line the
    // client never sent.
    let mut framer = Framer::new(Framing::Line, 4096);
    let mut got = Vec::new();
    let mut push = |framer: &mut Framer, data: &[u8]| {
        framer.push(data, |f| got.push((f.bytes.to_vec(), f.framing)))
    };
    push(&mut framer, b"AAA-start-of-line");
    framer.reconfigure(Framing::Raw, 4096);
    push(&mut framer, b"-end of the line\nBBB raw");
    push(&mut framer, b"CCC raw\n");
    framer.reconfigure(Framing::Line, 4096);
    push(&mut framer, b"DDD line mode again\n");
    assert_eq!(
        got,
        [
            (b"AAA-start-of-line-end of the line".to_vec(), Framing::Line),
            (b"BBB raw".to_vec(), Framing::Raw),
            (b"CCC raw".to_vec(), Framing::Raw),
            (b"DDD line mode again".to_vec(), Framing::Line),
        ]
    );
}

#[test]
fn a_new_framing_starts_at_the_next_frame_boundary() {
    // Line to syslog in mid-line: the line ends as a line (a lone CR ends it), then
    // syslog framing (an LF after a counted frame is noise there).
    assert_eq!(
        switched(
            Framing::Line,
            Framing::Syslog,
            &[b"half a ", b"line\r5 hello\n"]
        ),
        [&b"half a line"[..], b"hello"]
    );
    // A CR at the end of a read: its LF in the next read still belongs to the line.
    assert_eq!(
        switched(Framing::Line, Framing::Syslog, &[b"line\r", b"\n3 abc"]),
        [&b"line"[..], b"abc"]
    );
    // Syslog to line in mid-frame: the counted frame keeps its LF and its CR.
    assert_eq!(
        switched(
            Framing::Syslog,
            Framing::Line,
            &[b"9 a\r", b"b\ncdefghi\nj\n"]
        ),
        [&b"a\rb\ncdefg"[..], b"hi", b"j"]
    );
    // Syslog to raw after a count's digits: the count still frames.
    assert_eq!(
        switched(
            Framing::Syslog,
            Framing::Raw,
            &[b"5", b" abcdexyz\n", b"raw\n"]
        ),
        [&b"abcde"[..], b"xyz", b"raw"]
    );
    // Raw to syslog: at once, raw mode is always at a boundary.
    assert_eq!(
        switched(Framing::Raw, Framing::Syslog, &[b"5 hello", b"5 hello"]),
        [&b"5 hello"[..], b"hello"]
    );
    // Changed and changed back before a boundary: nothing changes.
    let mut framer = Framer::new(Framing::Line, 4096);
    let mut got = Vec::new();
    framer.push(b"3 ab", |f| got.push(f.bytes.to_vec()));
    framer.reconfigure(Framing::Syslog, 4096);
    framer.reconfigure(Framing::Line, 4096);
    framer.push(b"c\n3 abc", |f| got.push(f.bytes.to_vec()));
    assert_eq!(got, [b"3 abc"]);
}

#[test]
fn each_piece_says_which_framing_cut_it() {
    let mut framer = Framer::new(Framing::Line, 4096);
    let mut got = Vec::new();
    framer.push(b"a line in prog", |f| {
        got.push((f.bytes.to_vec(), f.framing))
    });
    framer.reconfigure(Framing::Syslog, 4096);
    framer.push(b"ress\n5 hello3 ab", |f| {
        got.push((f.bytes.to_vec(), f.framing))
    });
    framer.reconfigure(Framing::Raw, 4096);
    framer.push(b"c", |f| got.push((f.bytes.to_vec(), f.framing)));
    framer.push(b"raw read", |f| got.push((f.bytes.to_vec(), f.framing)));
    assert_eq!(
        got,
        [
            (b"a line in progress".to_vec(), Framing::Line),
            (b"hello".to_vec(), Framing::Syslog),
            (b"abc".to_vec(), Framing::Syslog),
            (b"raw read".to_vec(), Framing::Raw),
        ]
    );
}
