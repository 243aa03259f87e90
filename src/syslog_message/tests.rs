//! Header parsing's tests: captures of logger, rsyslog and Python, the RFC examples, and
//! frames that are not (quite) syslog.

use super::*;

/// A header's fields as text, for compact expectations:
/// (format, facility.severity, timestamp, hostname, app, procid, msgid, sd, message).
type Parsed = (Format, Option<(u8, u8)>, [Option<String>; 6], String);

fn fields(frame: &[u8]) -> Parsed {
    let h = parse(frame);
    let s = |v: Option<&[u8]>| v.map(|v| String::from_utf8_lossy(v).into_owned());
    (
        h.format,
        h.pri.map(|p| (p.facility, p.severity)),
        [
            s(h.timestamp),
            s(h.hostname),
            s(h.app_name),
            s(h.procid),
            s(h.msgid),
            s(h.structured_data),
        ],
        String::from_utf8_lossy(h.message).into_owned(),
    )
}

fn some(v: &str) -> Option<String> {
    (v != "-").then(|| v.to_string())
}

/// Expected fields; `-` stands for none.
#[allow(clippy::too_many_arguments)]
fn want(
    format: Format,
    pri: (u8, u8),
    ts: &str,
    host: &str,
    app: &str,
    pid: &str,
    msgid: &str,
    sd: &str,
    msg: &str,
) -> Parsed {
    (
        format,
        Some(pri),
        [
            some(ts),
            some(host),
            some(app),
            some(pid),
            some(msgid),
            some(sd),
        ],
        msg.to_string(),
    )
}

pub(crate) const TQ: &str = r#"[timeQuality tzKnown="1" isSynced="0"]"#;

#[test]
fn logger_rfc5424_as_captured() {
    use Format::Rfc5424;
    assert_eq!(
        fields(format!("<13>1 2026-11-27T16:09:47.369342+00:00 vm root - - {TQ} hello").as_bytes()),
        want(
            Rfc5424,
            (1, 5),
            "2026-11-27T16:09:47.369342+00:00",
            "vm",
            "root",
            "-",
            "-",
            TQ,
            "hello"
        )
    );
    // -p local0.err -t nas --id=4242
    assert_eq!(
        fields(
            format!("<131>1 2026-11-27T16:09:48.908392+00:00 vm nas 4242 - {TQ} disk failing oc")
                .as_bytes()
        ),
        want(
            Rfc5424,
            (16, 3),
            "2026-11-27T16:09:48.908392+00:00",
            "vm",
            "nas",
            "4242",
            "-",
            TQ,
            "disk failing oc"
        )
    );
    // --msgid, and structured data with escaped `]` and `"` in values.
    let sd =
        r#"[timeQuality tzKnown="1" isSynced="0"][zoo@123 tiger="hun\]gry" zebra="run\"ning"]"#;
    assert_eq!(
        fields(
            format!("<13>1 2026-11-27T16:09:49.530246+00:00 vm root - ID47 {sd} with sd")
                .as_bytes()
        ),
        want(
            Rfc5424,
            (1, 5),
            "2026-11-27T16:09:49.530246+00:00",
            "vm",
            "root",
            "-",
            "ID47",
            sd,
            "with sd"
        )
    );
    // --rfc5424=notq,notime,nohost
    assert_eq!(
        fields(b"<13>1 - - root - - - bare"),
        want(Rfc5424, (1, 5), "-", "-", "root", "-", "-", "-", "bare")
    );
    // An LF inside an octet-counted message is data; a control character is kept here
    // (escaping is the field mapping's job).
    assert_eq!(
        fields(
            format!("<13>1 2026-11-27T16:09:51.069496+00:00 vm root - - {TQ} with\nnewline")
                .as_bytes()
        )
        .3,
        "with\nnewline"
    );
    // -t 'tag with space': logger sends three header fields, read as such.
    assert_eq!(
        fields(
            format!("<13>1 2026-11-27T16:09:51.376656+00:00 vm tag with space - - {TQ} x")
                .as_bytes()
        ),
        want(
            Rfc5424,
            (1, 5),
            "2026-11-27T16:09:51.376656+00:00",
            "vm",
            "tag",
            "with",
            "space",
            "-",
            &format!("- {TQ} x")
        )
    );
}

#[test]
fn logger_and_rsyslog_rfc3164_as_captured() {
    use Format::Rfc3164;
    assert_eq!(
        fields(b"<13>Nov 27 16:09:47 vm root: hello 3164"),
        want(
            Rfc3164,
            (1, 5),
            "Nov 27 16:09:47",
            "vm",
            "root",
            "-",
            "-",
            "-",
            "hello 3164"
        )
    );
    assert_eq!(
        fields(b"<131>Nov 27 16:09:49 vm nas[4242]: disk failing 3164"),
        want(
            Rfc3164,
            (16, 3),
            "Nov 27 16:09:49",
            "vm",
            "nas",
            "4242",
            "-",
            "-",
            "disk failing 3164"
        )
    );
    // A tag longer than RFC 3164's 32 characters.
    let tag = "verylongtagname_abcdefghijklmnopqrstuvwxyz0123456789";
    assert_eq!(
        fields(format!("<13>Nov 27 16:09:51 vm {tag}: long tag").as_bytes()),
        want(
            Rfc3164,
            (1, 5),
            "Nov 27 16:09:51",
            "vm",
            tag,
            "-",
            "-",
            "-",
            "long tag"
        )
    );
    // rsyslog's traditional forwarding of a message that came in as RFC 5424: no colon.
    assert_eq!(
        fields(b"<13>Nov 27 16:10:02 vm app hello 5424"),
        want(
            Rfc3164,
            (1, 5),
            "Nov 27 16:10:02",
            "vm",
            "app",
            "-",
            "-",
            "-",
            "hello 5424"
        )
    );
    assert_eq!(
        fields(b"<13>Nov 27 16:10:03 vm root: ctrl #033[31m red"),
        want(
            Rfc3164,
            (1, 5),
            "Nov 27 16:10:03",
            "vm",
            "root",
            "-",
            "-",
            "-",
            "ctrl #033[31m red"
        )
    );
}

#[test]
fn rsyslog_rfc5424_as_captured() {
    use Format::Rfc5424;
    // The space after `nas[4242]:` in the RFC 3164 original stays in MSG.
    assert_eq!(
        fields(b"<131>1 2026-11-27T16:10:02+00:00 vm nas 4242 - -  disk failing"),
        want(
            Rfc5424,
            (16, 3),
            "2026-11-27T16:10:02+00:00",
            "vm",
            "nas",
            "4242",
            "-",
            "-",
            " disk failing"
        )
    );
    assert_eq!(
        fields(b"<13>1 2026-11-27T16:10:03+00:00 vm tagonly - - -  no pid"),
        want(
            Rfc5424,
            (1, 5),
            "2026-11-27T16:10:03+00:00",
            "vm",
            "tagonly",
            "-",
            "-",
            "-",
            " no pid"
        )
    );
}

#[test]
fn the_rfc5424_examples() {
    use Format::Rfc5424;
    assert_eq!(
        fields(b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xef\xbb\xbf'su root' failed for lonvick on /dev/pts/8"),
        want(Rfc5424, (4, 2), "2003-10-11T22:14:15.003Z", "mymachine.example.com", "su", "-", "ID47", "-", "'su root' failed for lonvick on /dev/pts/8")
    );
    assert_eq!(
        fields(b"<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts."),
        want(Rfc5424, (20, 5), "2003-08-24T05:14:15.000003-07:00", "192.0.2.1", "myproc", "8710", "-", "-", "%% It's time to make the do-nuts.")
    );
    let sd = r#"[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"]"#;
    assert_eq!(
        fields(format!("<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 {sd} \u{feff}An application event log entry...").as_bytes()),
        want(Rfc5424, (20, 5), "2003-10-11T22:14:15.003Z", "mymachine.example.com", "evntslog", "-", "ID47", sd, "An application event log entry...")
    );
    // Two elements and no MSG at all.
    let sd2 = format!(r#"{sd}[examplePriority@32473 class="high"]"#);
    assert_eq!(
        fields(
            format!("<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 {sd2}")
                .as_bytes()
        ),
        want(
            Rfc5424,
            (20, 5),
            "2003-10-11T22:14:15.003Z",
            "mymachine.example.com",
            "evntslog",
            "-",
            "ID47",
            &sd2,
            ""
        )
    );
}

#[test]
fn structured_data_values_may_hold_escapes_brackets_and_utf8() {
    let sd = "[a x=\"]\" y=\"\\\\\" z=\"\\\"]\\]\" w=\"é \\n\"][b]";
    let frame = format!("<13>1 - h app - - {sd} msg");
    let h = parse(frame.as_bytes());
    assert_eq!(h.format, Format::Rfc5424);
    assert_eq!(h.structured_data, Some(sd.as_bytes()));
    assert_eq!(h.message, b"msg");
    // Not structured data: the header is not RFC 5424, PRI is still used.
    for bad in [
        "[a x=\"unterminated] msg",
        "[a x=unquoted] msg",
        "[] msg",
        "[a x=\"1\"]junk msg",
        "[a  x=\"1\"] msg",
        "[a=b] msg",
        "[a",
        "x",
        "[0123456789012345678901234567890123] msg",
    ] {
        let frame = format!("<13>1 - h app - - {bad}");
        let h = parse(frame.as_bytes());
        assert_eq!(h.format, Format::PriOnly, "{bad}");
        assert_eq!(h.message, &frame.as_bytes()[4..], "{bad}");
        assert_eq!(h.app_name, None);
    }
}

#[test]
fn rfc3164_as_other_senders_write_it() {
    use Format::Rfc3164;
    // No hostname: the first word is a tag (followed by `[` or `:`).
    assert_eq!(
        fields(b"<30>Nov 27 16:09:47 sshd[812]: Accepted key"),
        want(
            Rfc3164,
            (3, 6),
            "Nov 27 16:09:47",
            "-",
            "sshd",
            "812",
            "-",
            "-",
            "Accepted key"
        )
    );
    assert_eq!(
        fields(b"<30>Nov 27 16:09:47 cron: job done"),
        want(
            Rfc3164,
            (3, 6),
            "Nov 27 16:09:47",
            "-",
            "cron",
            "-",
            "-",
            "-",
            "job done"
        )
    );
    // A space-padded day, an unpadded one, a fraction, a year (as some devices send).
    for ts in [
        "Nov  7 16:09:47",
        "Nov 7 16:09:47",
        "Nov 27 16:09:47.123",
        "Nov 27 2026 16:09:47",
    ] {
        assert_eq!(
            fields(format!("<13>{ts} pi.local app[1]: x").as_bytes()),
            want(Rfc3164, (1, 5), ts, "pi.local", "app", "1", "-", "-", "x"),
        );
    }
    // An RFC 3339 timestamp (rsyslog's RSYSLOG_ForwardFormat), an IPv6 host.
    assert_eq!(
        fields(b"<13>2026-11-27T16:10:02.123456+01:00 2001:db8::7 app: x"),
        want(
            Rfc3164,
            (1, 5),
            "2026-11-27T16:10:02.123456+01:00",
            "2001:db8::7",
            "app",
            "-",
            "-",
            "-",
            "x"
        )
    );
    // `tag[pid]` without a colon, a tag with nothing after it, only a timestamp.
    assert_eq!(
        fields(b"<13>Nov 27 16:09:47 h app[9] x"),
        want(
            Rfc3164,
            (1, 5),
            "Nov 27 16:09:47",
            "h",
            "app",
            "9",
            "-",
            "-",
            "x"
        )
    );
    assert_eq!(
        fields(b"<13>Nov 27 16:09:47 h app:"),
        want(
            Rfc3164,
            (1, 5),
            "Nov 27 16:09:47",
            "h",
            "app",
            "-",
            "-",
            "-",
            ""
        )
    );
    assert_eq!(
        fields(b"<13>Nov 27 16:09:47"),
        want(
            Rfc3164,
            (1, 5),
            "Nov 27 16:09:47",
            "-",
            "-",
            "-",
            "-",
            "-",
            ""
        )
    );
    // A lone word after the host is the message; so is text whose first word cannot be
    // a tag (a bad `[pid]`, a control character, too long).
    assert_eq!(
        fields(b"<13>Nov 27 16:09:47 h hello"),
        want(
            Rfc3164,
            (1, 5),
            "Nov 27 16:09:47",
            "h",
            "-",
            "-",
            "-",
            "-",
            "hello"
        )
    );
    assert_eq!(
        fields(b"<13>Nov 27 16:09:47 h app[1 2]: x").3,
        "app[1 2]: x"
    );
    assert_eq!(fields(b"<13>Nov 27 16:09:47 h a\tb").3, "a\tb");
    let long = "t".repeat(MAX_FIELD + 1);
    assert_eq!(
        fields(format!("<13>Nov 27 16:09:47 h {long}: x").as_bytes()).2[2],
        None
    );
    // Leniency: more spaces after the colon are message.
    assert_eq!(
        fields(b"<13>Nov 27 16:09:47 h app:   indented").3,
        "  indented"
    );
    // A word ending in `.` or `-` is not a hostname (rsyslog's rule): it is the tag.
    assert_eq!(
        fields(b"<13>Nov 27 16:09:47 host. app: x").2[..3],
        [some("Nov 27 16:09:47"), None, some("host.")]
    );
}

#[test]
fn a_tag_right_after_pri_is_read_as_python_sends_it() {
    use Format::{PriOnly, Rfc3164};
    // Python 3.11's SysLogHandler with `%(name)s[%(process)d]: %(message)s`, as captured
    // with nc: no timestamp, no hostname (the NUL after it is the framer's).
    assert_eq!(
        fields(b"<14>pyapp[24007]: hello info"),
        want(
            Rfc3164,
            (1, 6),
            "-",
            "-",
            "pyapp",
            "24007",
            "-",
            "-",
            "hello info"
        )
    );
    let traceback = "it failed\nTraceback (most recent call last):\n  File \"<stdin>\", \
                     line 7, in <module>\nValueError: boom";
    assert_eq!(
        fields(format!("<11>pyapp[24007]: {traceback}").as_bytes()),
        want(
            Rfc3164,
            (1, 3),
            "-",
            "-",
            "pyapp",
            "24007",
            "-",
            "-",
            traceback
        )
    );
    assert_eq!(
        journal_fields(b"<11>pyapp[24007]: x"),
        [
            ("SYSLOG_FACILITY", "1".to_string()),
            ("SYSLOG_IDENTIFIER", "pyapp".into()),
            ("SYSLOG_PID", "24007".into()),
        ],
        "no SYSLOG_PARSE_ERROR, no hostname"
    );
    // A tag without a pid; a tag and nothing after it; more spaces are message.
    assert_eq!(
        fields(b"<14>app: x"),
        want(Rfc3164, (1, 6), "-", "-", "app", "-", "-", "-", "x")
    );
    assert_eq!(
        fields(b"<14>app[7]:"),
        want(Rfc3164, (1, 6), "-", "-", "app", "7", "-", "-", "")
    );
    assert_eq!(fields(b"<14>app:   x").3, "  x");
    // Not a tag without a timestamp to say a header follows: a colon not followed by a
    // space (a URL, Python's default `LEVEL:name:message`), JSON, no colon, two words,
    // a bad pid, a control character.
    for frame in [
        &b"<14>http://example.org/x"[..],
        b"<14>ERROR:root:boom",
        b"<14>{\"a\": 1}",
        b"<14>[a]: b",
        b"<14>only text",
        b"<14>two words: x",
        b"<14>app[1 2]: x",
        b"<14>app\x1b: x",
        b"<14>app[1] x",
    ] {
        let h = parse(frame);
        assert_eq!((h.format, h.app_name), (PriOnly, None), "{frame:?}");
        assert_eq!(h.message, &frame[4..]);
    }
}

#[test]
fn a_valid_pri_without_a_header_keeps_the_rest_as_message() {
    for (frame, rest) in [
        (&b"<13>hello"[..], &b"hello"[..]),
        (b"<13>", b""),
        (b"<13>Nov 27 16:09 x", b"Nov 27 16:09 x"),
        (b"<13>Foo 27 16:09:47 x", b"Foo 27 16:09:47 x"),
        (b"<13>Nov 27 16:09:47x", b"Nov 27 16:09:47x"),
        (b"<13>1 bad", b"1 bad"),
        (b"<13>2 - - - - - - x", b"2 - - - - - - x"),
        (b"<13>1 - h app - -", b"1 - h app - -"),
        (b"<13>1 - h \xc3\xa9 - - - x", b"1 - h \xc3\xa9 - - - x"),
    ] {
        let h = parse(frame);
        assert_eq!(h.format, Format::PriOnly, "{frame:?}");
        assert_eq!(
            h.pri,
            Some(Pri {
                facility: 1,
                severity: 5
            })
        );
        assert_eq!(h.message, rest, "{frame:?}");
        assert_eq!(
            (h.timestamp, h.hostname, h.app_name, h.procid),
            (None, None, None, None)
        );
    }
    // A field over its bound.
    let host = "h".repeat(MAX_HOSTNAME + 1);
    assert_eq!(
        parse(format!("<13>1 - {host} a - - - x").as_bytes()).format,
        Format::PriOnly
    );
    let host = "h".repeat(MAX_HOSTNAME);
    assert_eq!(
        parse(format!("<13>1 - {host} a - - - x").as_bytes()).format,
        Format::Rfc5424
    );
}

#[test]
fn without_a_valid_pri_the_frame_is_unparsed_and_kept_whole() {
    for frame in [
        &b"newline inside"[..],
        b"",
        b"<",
        b"<>x",
        b"<192>x",
        b"<1234>x",
        b"<13 x",
        b"<1a>x",
        b" <13>x",
        b"<-1>x",
    ] {
        let h = parse(frame);
        assert_eq!(h, Header::unparsed(frame), "{frame:?}");
        assert_eq!(h.priority(6), 6);
        assert_eq!(h.parse_error(), Some("no valid <PRI> at the start"));
    }
    assert_eq!(
        parse(b"<0>x").pri,
        Some(Pri {
            facility: 0,
            severity: 0
        })
    );
    assert_eq!(
        parse(b"<191>x").pri,
        Some(Pri {
            facility: 23,
            severity: 7
        })
    );
    assert_eq!(
        parse(b"<013>x").pri,
        Some(Pri {
            facility: 1,
            severity: 5
        })
    );
    assert_eq!(parse(b"<131>x").priority(6), 3);
}

/// The journal fields of `frame`, as (name, value).
pub(crate) fn journal_fields(frame: &[u8]) -> Vec<(&'static str, String)> {
    let mut f = JournalFields::new();
    f.set(&parse(frame));
    f.iter().map(|(k, v)| (k, v.to_string())).collect()
}
