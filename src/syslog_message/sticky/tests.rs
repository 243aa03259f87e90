//! [`super::Sticky`]'s tests: continuation pieces carry the first piece's fields, also
//! after being carried to another process.

use crate::syslog_message::tests::TQ;
use crate::syslog_message::*;

#[test]
fn a_sticky_header_survives_being_carried_to_another_process() {
    for frame in [
        &format!("<131>1 2026-11-27T16:09:48.908392+00:00 vm nas 4242 ID9 {TQ} first")[..],
        "<131>Nov 27 16:09:49 vm nas[4242]: first",
        "<13>hello",
        "no pri",
    ] {
        let mut sticky = Sticky::new();
        sticky.remember(&parse(frame.as_bytes()));
        let carried = Sticky::restore(&sticky.save()).expect(frame);
        assert_eq!(
            carried.continuation(b"next"),
            sticky.continuation(b"next"),
            "{frame}"
        );
    }
    // Bytes no Sticky saved are refused, not trusted.
    assert!(Sticky::restore(b"").is_none());
    assert!(Sticky::restore(&[9; 13]).is_none(), "unknown format");
    let mut bad_end = Sticky::new().save();
    bad_end[3..5].copy_from_slice(&100u16.to_le_bytes());
    assert!(Sticky::restore(&bad_end).is_none(), "a field past the end");
}

#[test]
fn continuation_pieces_carry_the_first_pieces_fields() {
    let mut sticky = Sticky::new();
    for frame in [
        &format!("<131>1 2026-11-27T16:09:48.908392+00:00 vm nas 4242 ID9 {TQ} first")[..],
        "<131>Nov 27 16:09:49 vm nas[4242]: first",
        "<13>hello",
        "no pri",
        "<13>1 - - - - - - ",
    ] {
        let first = parse(frame.as_bytes());
        sticky.remember(&first);
        let next = sticky.continuation(b"second piece");
        assert_eq!(
            next,
            Header {
                structured_data: None,
                message: b"second piece",
                ..first
            },
            "{frame}"
        );
    }
    // The largest header a Sticky can be asked to keep.
    let max = format!(
        "<13>1 {} {} {} {} {} - x",
        "t".repeat(MAX_TIMESTAMP),
        "h".repeat(MAX_HOSTNAME),
        "a".repeat(MAX_FIELD),
        "p".repeat(MAX_FIELD),
        "m".repeat(MAX_FIELD)
    );
    let first = parse(max.as_bytes());
    assert_eq!(first.format, Format::Rfc5424);
    sticky.remember(&first);
    assert_eq!(sticky.bytes.len(), 703);
    assert_eq!(sticky.continuation(b"").hostname, first.hostname);
}
