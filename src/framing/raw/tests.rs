//! Raw framing's tests: one piece per read, cut if too long.

use crate::config::Framing;
use crate::framing::test_support::*;

#[test]
fn a_read_whose_escaped_form_is_too_long_is_cut_in_raw_mode() {
    let got = pieces(Framing::Raw, 40, &[&[0u8; 20], b"short\r\n", &[b'y'; 41]]);
    assert_eq!(
        got,
        [
            (vec![0; 7], 1, true, false),
            (vec![0; 7], 2, true, false),
            (vec![0; 6], 3, false, false),
            (b"short".to_vec(), 0, false, false),
            (vec![b'y'; 28], 1, true, false),
            (vec![b'y'; 13], 2, false, false),
        ]
    );
}

#[test]
fn raw_mode_emits_one_piece_per_read() {
    assert_eq!(
        frames(Framing::Raw, 4096, &[b"abc\r\n", b"de\nf\n", b"\n"]),
        vec![whole("abc"), whole("de\nf"), whole("")]
    );
}
