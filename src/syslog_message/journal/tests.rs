//! The journal fields' and MESSAGE's tests.

use crate::syslog_message::tests::{journal_fields, TQ};
use crate::syslog_message::*;

#[test]
fn fields_are_named_and_escaped() {
    assert_eq!(
        journal_fields(
            format!("<131>1 2026-11-27T16:09:48.908392+00:00 vm nas 4242 ID9 {TQ} disk").as_bytes()
        ),
        [
            ("SYSLOG_FACILITY", "16".to_string()),
            ("SYSLOG_IDENTIFIER", "nas".into()),
            ("SYSLOG_PID", "4242".into()),
            ("SYSLOG_HOSTNAME", "vm".into()),
            (
                "SYSLOG_TIMESTAMP",
                "2026-11-27T16:09:48.908392+00:00".into()
            ),
            ("SYSLOG_MSGID", "ID9".into()),
            ("SYSLOG_STRUCTURED_DATA", TQ.into()),
        ]
    );
    assert_eq!(
        journal_fields(b"<13>Nov 27 16:09:47 vm root: hello"),
        [
            ("SYSLOG_FACILITY", "1".to_string()),
            ("SYSLOG_IDENTIFIER", "root".into()),
            ("SYSLOG_HOSTNAME", "vm".into()),
            ("SYSLOG_TIMESTAMP", "Nov 27 16:09:47".into()),
        ]
    );
    assert_eq!(
        journal_fields(b"<191>x"),
        [
            ("SYSLOG_FACILITY", "23".to_string()),
            (
                "SYSLOG_PARSE_ERROR",
                "no RFC 5424 or RFC 3164 header after <PRI>".into()
            ),
        ]
    );
    assert_eq!(
        journal_fields(b"plain"),
        [(
            "SYSLOG_PARSE_ERROR",
            "no valid <PRI> at the start".to_string()
        )]
    );
    // Client bytes in values are escaped: control characters, invalid UTF-8, backslash.
    let got = journal_fields(b"<13>Nov 27 16:09:47 h t\xff\xfe[1]: x");
    assert_eq!(got[1], ("SYSLOG_IDENTIFIER", "t\\xff\\xfe".into()));
    let got = journal_fields(b"<13>1 - h a - - [x@1 v=\"\x1b[2J\nMESSAGE=forged\\\\\"] m");
    assert_eq!(
        got.last().unwrap(),
        &(
            "SYSLOG_STRUCTURED_DATA",
            "[x@1 v=\"\\x1b[2J\\x0aMESSAGE=forged\\\\\"]".into()
        )
    );
    // Issue 17: STRUCTURED-DATA reads back as the same parameters (its `\"`, `\]` and
    // `\\` are RFC 5424's escapes, not backslashes to double).
    let sd = r#"[a@1 p="x\"y\]z" q="C:\\dir" r="C:\dir"]"#;
    let got = journal_fields(format!("<13>1 - h a - - {sd} m").as_bytes());
    assert_eq!(
        got.last().unwrap(),
        &(
            "SYSLOG_STRUCTURED_DATA",
            r#"[a@1 p="x\"y\]z" q="C:\\dir" r="C:\\dir"]"#.into()
        )
    );
    // A reused JournalFields holds only the last message's fields.
    let mut f = JournalFields::new();
    f.set(&parse(
        format!("<131>1 - vm nas 4242 ID9 {TQ} disk").as_bytes(),
    ));
    f.set(&parse(b"<13>x"));
    assert_eq!(f.len(), 2);
    assert_eq!(f.get("SYSLOG_FACILITY"), Some("1"));
    assert_eq!(f.get("SYSLOG_PID"), None);
}

#[test]
fn a_prefix_goes_before_the_identifier_sent_and_only_there() {
    let mut f = JournalFields::new();
    f.set_prefixed(
        &parse(b"<38>Nov 27 16:09:47 pi sshd[1]: Accepted\x1b"),
        "remote-",
    );
    assert_eq!(f.get("SYSLOG_IDENTIFIER"), Some("remote-sshd"));
    assert_eq!(f.get("SYSLOG_HOSTNAME"), Some("pi"));
    assert_eq!(f.get("SYSLOG_PID"), Some("1"));
    // The sender's bytes after it are escaped as always.
    f.set_prefixed(&parse(b"<38>Nov 27 16:09:47 pi s\xff: x"), "remote-");
    assert_eq!(f.get("SYSLOG_IDENTIFIER"), Some("remote-s\\xff"));
    // No identifier sent: none made up (the entry stays the daemon's, tcp-listener).
    f.set_prefixed(&parse(b"<38>x"), "remote-");
    assert_eq!(f.get("SYSLOG_IDENTIFIER"), None);
}

#[test]
fn the_message_names_the_peer_then_the_claimed_host() {
    let msg = |frame: &[u8]| {
        let mut out = String::new();
        write_message(&mut out, "192.0.2.7:51234", &parse(frame));
        out
    };
    assert_eq!(
        msg(b"<131>Nov 27 16:09:49 nas nas[4242]: disk failing"),
        "192.0.2.7:51234 nas: disk failing"
    );
    assert_eq!(msg(b"<13>1 - - root - - - bare"), "192.0.2.7:51234: bare");
    assert_eq!(msg(b"<13>hello"), "192.0.2.7:51234: hello");
    assert_eq!(msg(b"no pri \x1b[2J"), "192.0.2.7:51234: no pri \\x1b[2J");
    assert_eq!(
        msg(b"<13>1 - vm app - - - with\nnewline"),
        "192.0.2.7:51234 vm: with\\x0anewline"
    );
}
