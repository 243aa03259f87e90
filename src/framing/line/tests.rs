//! Line framing's tests: line ends, reads joined, partial lines, the fast line-end search.

use crate::config::Framing;
use crate::framing::test_support::*;

#[test]
fn the_fast_line_end_search_agrees_with_the_byte_by_byte_one() {
    let slow = |d: &[u8]| d.iter().position(|&b| b == b'\n' || b == b'\r');
    // With another end after the byte: it must not hide it.
    crate::swar::check_scan(
        super::find_eol,
        slow,
        Some(b'\n'),
        Some((
            0x9e37_79b9,
            [b'x', b'\n', b'\r', 0, 0x0b, 0x8a, 0x8d, 0xff, 0x0c],
        )),
    );
}

#[test]
fn the_classroom_client_message_is_one_line() {
    assert_eq!(
        frames(Framing::Line, 4096, &[b"abcdefg!\n"]),
        vec![whole("abcdefg!")]
    );
}

#[test]
fn lines_split_across_reads_are_joined() {
    assert_eq!(texts(&[b"hel", b"lo\nwor", b"ld\n"]), ["hello", "world"]);
    assert_eq!(texts(&[b"a\nb\nc\n"]), ["a", "b", "c"]);
}

#[test]
fn crlf_lf_and_lone_cr_all_end_a_line() {
    assert_eq!(texts(&[b"a\r\nb\nc\rd\n"]), ["a", "b", "c", "d"]);
    // CR at the end of one read, LF at the start of the next: one line end, not two.
    assert_eq!(texts(&[b"a\r", b"\nb\n"]), ["a", "b"]);
    assert_eq!(texts(&[b"a\r", b"b\r"]), ["a", "b"]);
    assert_eq!(texts(&[b"\r\r\n"]), ["", ""]);
}

#[test]
fn empty_lines_are_kept() {
    assert_eq!(texts(&[b"\n\nx\n"]), ["", "", "x"]);
}

#[test]
fn a_partial_final_line_is_marked() {
    assert_eq!(
        frames(Framing::Line, 4096, &[b"done\nhalf"]),
        vec![whole("done"), ("half".into(), 0, false, true)]
    );
    assert_eq!(
        frames(Framing::Line, 4096, &[b"done\n"]),
        vec![whole("done")]
    );
}
