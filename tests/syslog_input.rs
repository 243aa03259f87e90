//! `framing = "syslog"` end to end: real syslog senders (util-linux `logger`, a real `rsyslogd`
//! forwarding with omfwd) into the real daemon, read back from a real journald namespace.

#[macro_use]
mod common;

use std::io::Write;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::rsyslog::Rsyslogd;
use common::*;

/// The host name logger and rsyslog put in what they send (logger's RFC 3164 form stops at
/// the first dot).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

fn short_hostname() -> String {
    hostname().split('.').next().unwrap().to_string()
}

/// Runs util-linux `logger` against the daemon with `args`, `stdin` as its input.
fn logger(daemon: &Daemon, args: &[&str], stdin: Option<&[u8]>) {
    let port = daemon.addr.port().to_string();
    let mut cmd = Command::new("logger");
    cmd.args(["--tcp", "-n", "127.0.0.1", "-P", &port])
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run logger");
    if let Some(data) = stdin {
        child.stdin.take().unwrap().write_all(data).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "logger {args:?}: {out:?}");
}

/// The syslog message entries (line entries with a SYSLOG_TIMESTAMP or a parse error) once
/// `want` of them are in the journal.
fn messages(journal: &Journal, want: usize) -> Vec<Fields> {
    let entries = journal.wait_for(&format!("{want} line entries"), |e| {
        lines_of(e).len() >= want
    });
    entries
        .into_iter()
        .filter(|e| text(e, "LISTENER_EVENT") == "line")
        .collect()
}

/// The one entry whose MESSAGE holds `token`.
fn entry_with<'a>(entries: &'a [Fields], token: &str) -> &'a Fields {
    let found: Vec<&Fields> = entries
        .iter()
        .filter(|e| text(e, "MESSAGE").contains(token))
        .collect();
    assert_eq!(found.len(), 1, "{token}: {found:?}");
    found[0]
}

/// A field that must be there exactly once (journald shows a field sent twice as an array).
fn single(e: &Fields, key: &str) -> String {
    let v = e.get(key).unwrap_or_else(|| panic!("no {key} in {e:?}"));
    assert!(v.is_string(), "{key} is {v:?}, not one value");
    text(e, key)
}

/// What a sender's message must look like in the journal.
struct Want<'a> {
    token: &'a str,
    priority: u8,
    facility: u8,
    identifier: &'a str,
    pid: Option<&'a str>,
    host: &'a str,
}

fn check(e: &Fields, want: &Want<'_>) {
    let port = single(e, "REMOTE_PORT");
    assert_eq!(single(e, "REMOTE_ADDR"), "127.0.0.1");
    assert_eq!(single(e, "LISTENER_EVENT"), "line");
    assert!(!single(e, "CONNECTION_ID").is_empty());
    assert_eq!(single(e, "PRIORITY"), want.priority.to_string(), "{e:?}");
    assert_eq!(single(e, "SYSLOG_FACILITY"), want.facility.to_string());
    assert_eq!(single(e, "SYSLOG_IDENTIFIER"), want.identifier);
    assert_eq!(text(e, "SYSLOG_PID"), want.pid.unwrap_or(""));
    assert_eq!(single(e, "SYSLOG_HOSTNAME"), want.host);
    assert!(!single(e, "SYSLOG_TIMESTAMP").is_empty());
    assert_eq!(text(e, "SYSLOG_PARSE_ERROR"), "", "{e:?}");
    assert_eq!(
        single(e, "MESSAGE"),
        format!("127.0.0.1:{port} {}: {}", want.host, want.token)
    );
}

/// util-linux logger over TCP, LF-framed and octet-counted, RFC 3164 and RFC 5424, with
/// `-p` and `-t` (and `--id`, `--msgid`, structured data): PRIORITY, SYSLOG_FACILITY,
/// SYSLOG_IDENTIFIER and the other fields as sent, each once, and the MESSAGE naming the
/// peer and the host.
#[test]
fn logger_over_tcp_gives_the_fields_it_sent() {
    need_tools!("logger_over_tcp_gives_the_fields_it_sent", &["logger"]);
    let journal = Journal::start();
    let daemon = Daemon::start(&test_config(Some(&journal), "framing = \"syslog\"\n"));
    let (long, short) = (hostname(), short_hostname());
    let sd = ["--sd-id", "zoo@123", "--sd-param", "tiger=\"hungry\""];
    // (logger options, what the journal must say)
    let cases: Vec<(Vec<&str>, Want<'_>)> = vec![
        (
            [
                &["--rfc5424", "-p", "local0.err", "-t", "nas", "--id=4242"][..],
                &["--msgid", "ID47"],
                &sd,
            ]
            .concat(),
            Want {
                token: "lf-5424 disk failing",
                priority: 3,
                facility: 16,
                identifier: "nas",
                pid: Some("4242"),
                host: &long,
            },
        ),
        (
            [
                &[
                    "--octet-count",
                    "--rfc5424",
                    "-p",
                    "local0.err",
                    "-t",
                    "nas",
                    "--id=4242",
                ][..],
                &["--msgid", "ID47"],
                &sd,
            ]
            .concat(),
            Want {
                token: "oc-5424 disk failing",
                priority: 3,
                facility: 16,
                identifier: "nas",
                pid: Some("4242"),
                host: &long,
            },
        ),
        (
            vec!["--rfc3164", "-p", "local0.err", "-t", "nas", "--id=4242"],
            Want {
                token: "lf-3164 disk failing",
                priority: 3,
                facility: 16,
                identifier: "nas",
                pid: Some("4242"),
                host: &short,
            },
        ),
        (
            vec![
                "--octet-count",
                "--rfc3164",
                "-p",
                "local0.err",
                "-t",
                "nas",
                "--id=4242",
            ],
            Want {
                token: "oc-3164 disk failing",
                priority: 3,
                facility: 16,
                identifier: "nas",
                pid: Some("4242"),
                host: &short,
            },
        ),
        (
            vec!["--octet-count", "-p", "user.notice", "-t", "app"],
            Want {
                token: "oc-default notice",
                priority: 5,
                facility: 1,
                identifier: "app",
                pid: None,
                host: &long,
            },
        ),
        (
            vec!["--rfc3164", "-p", "daemon.debug", "-t", "cron"],
            Want {
                token: "lf-3164 debug",
                priority: 7,
                facility: 3,
                identifier: "cron",
                pid: None,
                host: &short,
            },
        ),
    ];
    for (args, want) in &cases {
        logger(&daemon, &[&args[..], &["--", want.token]].concat(), None);
    }
    let entries = messages(&journal, cases.len());
    assert_eq!(entries.len(), cases.len());
    for (args, want) in &cases {
        let e = entry_with(&entries, want.token);
        check(e, want);
        if args.contains(&"--msgid") {
            assert_eq!(single(e, "SYSLOG_MSGID"), "ID47");
            let sd = single(e, "SYSLOG_STRUCTURED_DATA");
            assert!(sd.contains("[zoo@123 tiger=\"hungry\"]"), "{sd}");
        }
    }
    // journalctl -t finds a sender's program; the default view shows it with the daemon's
    // _PID (the sender's pid is in SYSLOG_PID), then the MESSAGE.
    let nas = journal.matching(&["SYSLOG_IDENTIFIER=nas"]);
    assert_eq!(nas.len(), 4);
    let view = journal.short_view();
    let e = entry_with(&entries, "lf-3164 disk failing");
    let line = format!("nas[{}]: {}", daemon.pid(), text(e, "MESSAGE"));
    assert!(view.contains(&line), "no {line:?} in\n{view}");
}

/// Issue 20: what a remote host claims cannot reach terminals. util-linux `logger` sends
/// `auth.emerg`, `alert`, `crit`, `err` and `warning` as `sshd`: by default nothing is logged
/// more severe than err (journald writes emerg to every terminal, `ForwardToWall=yes`,
/// `MaxLevelWall=emerg`; rsyslog's `*.emerg :omusrmsg:*` too), and REMOTE_PRIORITY keeps what
/// was sent. After a reload with `max_remote_severity = "emerg"` the sent priority is logged,
/// and with `remote_identifier_prefix = "remote-"` the program is `remote-sshd`.
#[test]
fn a_remote_emerg_is_logged_at_the_floor_and_keeps_its_severity() {
    need_tools!(
        "a_remote_emerg_is_logged_at_the_floor_and_keeps_its_severity",
        &["logger"]
    );
    let journal = Journal::start();
    let daemon = Daemon::start(&test_config(Some(&journal), "framing = \"syslog\"\n"));
    // (logger's -p, the severity sent, PRIORITY logged under the default floor)
    let cases = [
        ("auth.emerg", 0, 3),
        ("auth.alert", 1, 3),
        ("auth.crit", 2, 3),
        ("auth.err", 3, 3),
        ("auth.warning", 4, 4),
    ];
    for (priority, sent, _) in cases {
        let token = format!("floored-{sent} Accepted password for root");
        logger(&daemon, &["-p", priority, "-t", "sshd", "--", &token], None);
    }
    let entries = messages(&journal, cases.len());
    for (priority, sent, logged) in cases {
        let e = entry_with(&entries, &format!("floored-{sent} "));
        assert_eq!(
            single(e, "PRIORITY"),
            logged.to_string(),
            "{priority}: {e:?}"
        );
        assert_eq!(single(e, "REMOTE_PRIORITY"), sent.to_string(), "{priority}");
        assert_eq!(single(e, "SYSLOG_IDENTIFIER"), "sshd");
        assert_eq!(single(e, "SYSLOG_FACILITY"), "4", "auth");
        assert_eq!(single(e, "REMOTE_ADDR"), "127.0.0.1");
    }
    // `journalctl -p crit` (emerg to crit) finds none of them; REMOTE_PRIORITY=0 finds the
    // one sent as emerg.
    let severe = journal.json(&["--all", "-p", "crit"], &["LISTENER_EVENT=line"]);
    assert!(severe.is_empty(), "{severe:?}");
    let sent_emerg = journal.matching(&["REMOTE_PRIORITY=0"]);
    assert_eq!(sent_emerg.len(), 1, "{sent_emerg:?}");

    daemon.reload_with(&test_config(
        Some(&journal),
        "framing = \"syslog\"\nmax_remote_severity = \"emerg\"\n\
         remote_identifier_prefix = \"remote-\"\n",
    ));
    daemon.wait_stderr("configuration reloaded");
    logger(
        &daemon,
        &[
            "-p",
            "auth.emerg",
            "-t",
            "sshd",
            "--",
            "lifted-0 disk on fire",
        ],
        None,
    );
    let entries = messages(&journal, cases.len() + 1);
    let e = entry_with(&entries, "lifted-0 ");
    assert_eq!(single(e, "PRIORITY"), "0", "{e:?}");
    assert_eq!(single(e, "REMOTE_PRIORITY"), "0");
    assert_eq!(single(e, "SYSLOG_IDENTIFIER"), "remote-sshd");
    // `journalctl -t remote-sshd` finds the remote program's lines, `-t sshd` the others.
    assert_eq!(
        journal.matching(&["SYSLOG_IDENTIFIER=remote-sshd"]).len(),
        1
    );
    assert_eq!(
        journal.matching(&["SYSLOG_IDENTIFIER=sshd"]).len(),
        cases.len()
    );
}

/// A real Python 3 process logging through `logging.handlers.SysLogHandler` over TCP to the
/// daemon, with the formatter `%(name)s[%(process)d]: %(message)s`: `steps` in order (`info`:
/// an info line; `exception`: `logger.exception` of a ValueError whose text holds an LF, so
/// a traceback). Returns the process's pid.
fn python_sysloghandler(daemon: &Daemon, name: &str, steps: &str) -> u32 {
    const SCRIPT: &str = r#"
import logging, logging.handlers, socket, sys
host, port, name, steps = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
handler = logging.handlers.SysLogHandler(address=(host, port), socktype=socket.SOCK_STREAM)
handler.setFormatter(logging.Formatter("%(name)s[%(process)d]: %(message)s"))
log = logging.getLogger(name)
log.addHandler(handler)
log.setLevel(logging.INFO)
def exception():
    try:
        raise ValueError("boom\nsecond line of the error")
    except ValueError:
        log.exception("it failed")
for step in steps.split(","):
    {"info": lambda: log.info("hello from python"), "exception": exception}[step]()
handler.close()
"#;
    let port = daemon.addr.port().to_string();
    let child = Command::new("python3")
        .args(["-c", SCRIPT, "127.0.0.1", &port, name, steps])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3");
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "python3: {out:?}");
    pid
}

/// Issue 17 item 3: Python's SysLogHandler sends `<PRI>name[pid]: text\0`, no timestamp, no
/// hostname, and a traceback's LFs inside the text. Each record is one entry, the traceback
/// first on its connection or after an info line: SYSLOG_IDENTIFIER and SYSLOG_PID from its
/// tag, PRIORITY and SYSLOG_FACILITY from its PRI, the traceback in MESSAGE with its LFs
/// escaped, no SYSLOG_PARSE_ERROR.
#[test]
fn python_sysloghandler_one_entry_per_record_with_its_identifier_and_traceback() {
    need_tools!(
        "python_sysloghandler_one_entry_per_record_with_its_identifier_and_traceback",
        &["python3"]
    );
    let journal = Journal::start();
    let daemon = Daemon::start(&test_config(Some(&journal), "framing = \"syslog\"\n"));
    let runs = [
        (
            "pyinfofirst",
            python_sysloghandler(&daemon, "pyinfofirst", "info,exception"),
        ),
        (
            "pyexcfirst",
            python_sysloghandler(&daemon, "pyexcfirst", "exception,info"),
        ),
    ];
    let entries = journal.wait_for("both processes' disconnects", |e| {
        e.iter()
            .filter(|e| text(e, "LISTENER_EVENT") == "disconnected")
            .count()
            == 2
    });
    // The processes ran one after the other: a connection each, in that order.
    let mut connections: Vec<String> = Vec::new();
    for e in entries
        .iter()
        .filter(|e| text(e, "LISTENER_EVENT") == "line")
    {
        let id = text(e, "CONNECTION_ID");
        if !connections.contains(&id) {
            connections.push(id);
        }
    }
    assert_eq!(connections.len(), 2);
    for ((name, pid), connection) in runs.into_iter().zip(&connections) {
        let mine: Vec<&Fields> = entries
            .iter()
            .filter(|e| text(e, "LISTENER_EVENT") == "line")
            .filter(|e| &text(e, "CONNECTION_ID") == connection)
            .collect();
        println!(
            "{name} (pid {pid}): {} line entries: {:?}",
            mine.len(),
            mine.iter()
                .map(|e| [text(e, "SYSLOG_IDENTIFIER"), text(e, "MESSAGE")])
                .collect::<Vec<_>>()
        );
        assert_eq!(mine.len(), 2, "{name}: one entry per record");
        let port = single(mine[0], "REMOTE_PORT");
        for e in &mine {
            assert_eq!(single(e, "SYSLOG_IDENTIFIER"), name);
            assert_eq!(single(e, "SYSLOG_PID"), pid.to_string());
            assert_eq!(single(e, "SYSLOG_FACILITY"), "1", "user, Python's default");
            assert_eq!(text(e, "SYSLOG_PARSE_ERROR"), "", "{e:?}");
            assert_eq!(text(e, "SYSLOG_HOSTNAME"), "");
            assert_eq!(text(e, "LINE_PART"), "");
        }
        let info = entry_with(&entries, &format!("{port}: hello from python"));
        assert_eq!(
            single(info, "MESSAGE"),
            format!("127.0.0.1:{port}: hello from python")
        );
        assert_eq!(single(info, "PRIORITY"), "6");
        let failed = mine
            .iter()
            .find(|e| text(e, "MESSAGE").contains("it failed"))
            .unwrap();
        assert_eq!(single(failed, "PRIORITY"), "3", "logging.ERROR is err");
        let message = single(failed, "MESSAGE");
        assert!(
            message.starts_with(&format!(
                "127.0.0.1:{port}: it failed\\x0aTraceback (most recent call last):\\x0a  File "
            )),
            "{message}"
        );
        assert!(
            message.ends_with("\\x0aValueError: boom\\x0asecond line of the error"),
            "{message}"
        );
        assert!(!message.contains('\n'));
    }
}

/// RFC 5424 STRUCTURED-DATA as its section 6.3.3 reads it, written here apart from the
/// daemon's code: each element's SD-ID and its (PARAM-NAME, PARAM-VALUE) pairs, where inside a
/// value `\"`, `\\` and `\]` stand for the character and any other backslash for itself.
/// Panics on text that is not STRUCTURED-DATA.
fn rfc5424_sd(sd: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut elements = Vec::new();
    let mut chars = sd.chars().peekable();
    while let Some(open) = chars.next() {
        assert_eq!(open, '[', "{sd}");
        let mut id = String::new();
        while let Some(&c) = chars.peek().filter(|&&c| c != ' ' && c != ']') {
            id.push(c);
            chars.next();
        }
        let mut params = Vec::new();
        while chars.next() == Some(' ') {
            let name: String = chars.by_ref().take_while(|&c| c != '=').collect();
            assert_eq!(chars.next(), Some('"'), "{sd}");
            let mut value = String::new();
            loop {
                match chars.next().expect("an unterminated value") {
                    '"' => break,
                    '\\' => match chars.peek() {
                        Some(&e @ ('"' | '\\' | ']')) => {
                            value.push(e);
                            chars.next();
                        }
                        _ => value.push('\\'),
                    },
                    c => value.push(c),
                }
            }
            params.push((name, value));
        }
        elements.push((id, params));
    }
    elements
}

/// Issue 17: SYSLOG_STRUCTURED_DATA holds what logger sent in a form an RFC 5424 parser reads
/// as the same parameters (`\"`, `\]`, `\\` kept as the escapes they are); a lone backslash
/// is stored as `\\` (the same backslash to RFC 5424), a control character as `\xNN`.
#[test]
fn structured_data_reads_back_as_the_parameters_logger_sent() {
    need_tools!(
        "structured_data_reads_back_as_the_parameters_logger_sent",
        &["logger"]
    );
    let journal = Journal::start();
    let daemon = Daemon::start(&test_config(Some(&journal), "framing = \"syslog\"\n"));
    logger(
        &daemon,
        &[
            "--octet-count",
            "--sd-id",
            "a@1",
            "--sd-param",
            r#"p="x\"y\]z""#,
            "--sd-param",
            r#"q="C:\\dir""#,
            "--",
            "sd from logger",
        ],
        None,
    );
    // logger refuses a lone backslash and control characters: sent as a sender might.
    let mut s = daemon.connect();
    send(
        &mut s,
        b"<13>1 - h app - - [b@1 r=\"C:\\dir\" c=\"red \x1b[31m\"] sd by hand\n",
    );
    let entries = messages(&journal, 2);
    let sd = single(
        entry_with(&entries, "sd from logger"),
        "SYSLOG_STRUCTURED_DATA",
    );
    println!("logger's structured data as stored: {sd}");
    assert!(sd.ends_with(r#"[a@1 p="x\"y\]z" q="C:\\dir"]"#), "{sd}");
    let elements = rfc5424_sd(&sd);
    assert_eq!(elements[0].0, "timeQuality", "logger's own element first");
    assert_eq!(
        elements.last().unwrap(),
        &(
            "a@1".to_string(),
            vec![
                ("p".to_string(), r#"x"y]z"#.to_string()),
                ("q".to_string(), r"C:\dir".to_string()),
            ]
        )
    );
    let sd = single(entry_with(&entries, "sd by hand"), "SYSLOG_STRUCTURED_DATA");
    assert_eq!(sd, r#"[b@1 r="C:\\dir" c="red \x1b[31m"]"#);
    assert_eq!(
        rfc5424_sd(&sd),
        [(
            "b@1".to_string(),
            vec![
                ("r".to_string(), r"C:\dir".to_string()),
                // The escape character, as text a terminal shows.
                ("c".to_string(), r"red \x1b[31m".to_string()),
            ]
        )]
    );
}

/// Frames that are not syslog messages are logged whole at the line priority, under the
/// daemon's identifier, with SYSLOG_PARSE_ERROR saying why.
#[test]
fn a_frame_without_a_header_is_logged_whole_with_the_reason() {
    need_journald!("a_frame_without_a_header_is_logged_whole_with_the_reason");
    let journal = Journal::start();
    let daemon = Daemon::start(&test_config(Some(&journal), "framing = \"syslog\"\n"));
    let mut s = daemon.connect();
    let port = s.local_addr().unwrap().port();
    send(&mut s, b"no header \x1b[31m here\n<13>only a pri\n");
    let entries = messages(&journal, 2);
    let e = entry_with(&entries, "no header");
    assert_eq!(
        single(e, "MESSAGE"),
        format!("127.0.0.1:{port}: no header \\x1b[31m here")
    );
    assert_eq!(single(e, "PRIORITY"), "6");
    assert_eq!(single(e, "SYSLOG_IDENTIFIER"), "tcp-listener");
    assert_eq!(single(e, "SYSLOG_FACILITY"), "3");
    assert_eq!(
        single(e, "SYSLOG_PARSE_ERROR"),
        "no valid <PRI> at the start"
    );
    let e = entry_with(&entries, "only a pri");
    assert_eq!(
        single(e, "MESSAGE"),
        format!("127.0.0.1:{port}: only a pri")
    );
    assert_eq!(single(e, "PRIORITY"), "5");
    assert_eq!(single(e, "SYSLOG_FACILITY"), "1");
    assert_eq!(single(e, "SYSLOG_IDENTIFIER"), "tcp-listener");
    assert_eq!(
        single(e, "SYSLOG_PARSE_ERROR"),
        "no RFC 5424 or RFC 3164 header after <PRI>"
    );
}

/// The daemon's side of a TCP connection: bytes in its receive queue, not read yet (from
/// /proc/net/tcp, matched by the two ports).
fn daemon_unread(daemon_port: u16, client_port: u16) -> Option<usize> {
    let want = (format!(":{daemon_port:04X}"), format!(":{client_port:04X}"));
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f[1].ends_with(&want.0) && f[2].ends_with(&want.1) {
            let rx = f[4].split(':').nth(1)?;
            usize::from_str_radix(rx, 16).ok()
        } else {
            None
        }
    })
}

/// Sends `data` and waits until the daemon has read it: its next read starts after it.
fn send_segment(s: &mut TcpStream, daemon: &Daemon, data: &[u8]) {
    s.write_all(data).unwrap();
    let port = s.local_addr().unwrap().port();
    wait_until(
        Duration::from_secs(10),
        "the daemon to read a segment",
        || (daemon_unread(daemon.addr.port(), port) == Some(0)).then_some(()),
    );
}

/// An octet-counted frame arriving in TCP segments cut in the middle of its length and of its
/// body is one message, and the frame after it is read in sync.
#[test]
fn an_octet_counted_frame_split_across_segments_is_one_message() {
    need_journald!("an_octet_counted_frame_split_across_segments_is_one_message");
    let journal = Journal::start();
    let daemon = Daemon::start(&test_config(Some(&journal), "framing = \"syslog\"\n"));
    let first = b"<131>1 2026-11-27T16:09:48.908392+00:00 pi nas 4242 - - split in two";
    let second = b"<14>Nov 27 16:09:49 pi app: the next one";
    let mut stream = format!("{} ", first.len()).into_bytes();
    assert_eq!(stream.len(), 3, "a two-digit length");
    stream.extend_from_slice(first);
    stream.extend_from_slice(format!("{} ", second.len()).as_bytes());
    stream.extend_from_slice(second);
    let mut s = daemon.connect();
    s.set_nodelay(true).unwrap();
    let port = s.local_addr().unwrap().port();
    // Between the two digits of the length; in the middle of the body; the rest.
    let body_middle = 3 + first.len() / 2;
    send_segment(&mut s, &daemon, &stream[..1]);
    send_segment(&mut s, &daemon, &stream[1..body_middle]);
    send_segment(&mut s, &daemon, &stream[body_middle..]);
    let entries = messages(&journal, 2);
    assert_eq!(entries.len(), 2);
    let e = entry_with(&entries, "split in two");
    assert_eq!(
        single(e, "MESSAGE"),
        format!("127.0.0.1:{port} pi: split in two")
    );
    assert_eq!(text(e, "LINE_PART"), "", "one entry, not pieces");
    assert_eq!(single(e, "SYSLOG_IDENTIFIER"), "nas");
    assert_eq!(single(e, "SYSLOG_PID"), "4242");
    assert_eq!(single(e, "PRIORITY"), "3");
    let e = entry_with(&entries, "the next one");
    assert_eq!(single(e, "SYSLOG_IDENTIFIER"), "app");
    assert_eq!(single(e, "PRIORITY"), "6");
}

/// logger --octet-count --size 6000 sends a message longer than the line limit, counted, and
/// the next one right after it with no LF between: the long one is logged in [continued]
/// pieces that all carry its fields and its LINE_NUMBER and fit max_line_length, and the next
/// one is whole, the next LINE_NUMBER; `disconnected` counts 2 lines (issue 17 item 5).
#[test]
fn a_counted_message_over_the_line_limit_is_logged_in_pieces_and_the_next_stays_whole() {
    need_tools!(
        "a_counted_message_over_the_line_limit_is_logged_in_pieces_and_the_next_stays_whole",
        &["logger"]
    );
    let journal = Journal::start();
    let daemon = Daemon::start(&test_config(Some(&journal), "framing = \"syslog\"\n"));
    let long = "A".repeat(5000);
    let stdin = format!("{long}\nshort after long\n");
    logger(
        &daemon,
        &[
            "--octet-count",
            "--size",
            "6000",
            "-p",
            "local0.warning",
            "-t",
            "big",
        ],
        Some(stdin.as_bytes()),
    );
    let entries = journal.wait_for("the short message and the disconnect", |e| {
        lines_of(e)
            .iter()
            .any(|l| l.ends_with(": short after long"))
            && e.iter()
                .any(|e| text(e, "LISTENER_EVENT") == "disconnected")
    });
    let lines: Vec<&Fields> = entries
        .iter()
        .filter(|e| text(e, "LISTENER_EVENT") == "line")
        .collect();
    let host = hostname();
    let (last, pieces) = lines.split_last().unwrap();
    assert!(pieces.len() >= 2, "{pieces:?}");
    let mut joined = String::new();
    for (i, e) in pieces.iter().enumerate() {
        let port = single(e, "REMOTE_PORT");
        assert_eq!(single(e, "LINE_PART"), (i + 1).to_string());
        assert_eq!(single(e, "LINE_NUMBER"), "1", "piece {}", i + 1);
        assert_eq!(single(e, "SYSLOG_IDENTIFIER"), "big");
        assert_eq!(single(e, "PRIORITY"), "4");
        assert_eq!(single(e, "SYSLOG_FACILITY"), "16");
        assert_eq!(single(e, "SYSLOG_HOSTNAME"), host);
        let message = single(e, "MESSAGE");
        assert!(message.len() <= 4087, "{} bytes", message.len());
        let prefix = format!("127.0.0.1:{port} {host}: ");
        let mut text_ = message
            .strip_prefix(&prefix)
            .expect("the peer and host")
            .to_string();
        if text(e, "LINE_CONTINUED") == "1" {
            text_ = text_.strip_suffix(" [continued]").unwrap().to_string();
        } else {
            assert_eq!(i, pieces.len() - 1);
        }
        joined.push_str(&text_);
    }
    assert_eq!(joined, long, "the pieces join to the message");
    assert_eq!(single(last, "SYSLOG_IDENTIFIER"), "big");
    assert_eq!(text(last, "LINE_PART"), "");
    assert_eq!(single(last, "LINE_NUMBER"), "2");
    let bye = entries
        .iter()
        .find(|e| text(e, "LISTENER_EVENT") == "disconnected")
        .unwrap();
    println!(
        "{} pieces and a short message: LINES_LOGGED {}",
        pieces.len(),
        text(bye, "LINES_LOGGED")
    );
    assert_eq!(single(bye, "LINES_LOGGED"), "2");
    assert!(single(last, "MESSAGE").ends_with(&format!(" {host}: short after long")));
}

/// A real rsyslogd that takes messages from `logger` over TCP (imtcp) on `port` and
/// forwards them with omfwd over TCP to the daemon. Killed on drop.
struct Rsyslog {
    _rsyslogd: Rsyslogd,
    port: u16,
}

impl Rsyslog {
    fn start(daemon_port: u16, forward: &str) -> Rsyslog {
        let port = free_port();
        let rsyslogd = Rsyslogd::start(|work| {
            format!(
                r#"global(workDirectory="{work}" net.enableDNS="off")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="{port}" ruleset="forward")
ruleset(name="forward") {{
  action(type="omfwd" target="127.0.0.1" port="{daemon_port}" protocol="tcp" {forward})
}}
"#,
                work = work.display()
            )
        });
        rsyslogd.wait_listening(port);
        Rsyslog {
            _rsyslogd: rsyslogd,
            port,
        }
    }
}

/// rsyslogd forwarding with omfwd over TCP, once octet-counted with the RFC 5424 template
/// and once LF-framed with its default (traditional) template: every message arrives once,
/// with its priority, facility, program, pid and host.
#[test]
fn rsyslog_forwarding_over_tcp_every_message_once_fields_right() {
    need_tools!(
        "rsyslog_forwarding_over_tcp_every_message_once_fields_right",
        &["logger", "rsyslogd"]
    );
    let host = short_hostname();
    for (name, forward) in [
        (
            "octet-counted",
            r#"TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format""#,
        ),
        ("LF-framed", ""),
    ] {
        let journal = Journal::start();
        let daemon = Daemon::start(&test_config(Some(&journal), "framing = \"syslog\"\n"));
        let rsyslog = Rsyslog::start(daemon.addr.port(), forward);
        let sent: Vec<(String, Vec<&str>, Want<'_>)> = (0..10)
            .map(|i| {
                let (args, priority, facility, tag, pid): (Vec<&str>, u8, u8, &str, Option<&str>) =
                    match i % 3 {
                        0 => (
                            vec!["-p", "local0.err", "-t", "nas", "--id=4242"],
                            3,
                            16,
                            "nas",
                            Some("4242"),
                        ),
                        1 => (vec!["-p", "user.notice", "-t", "app"], 5, 1, "app", None),
                        _ => (
                            vec!["--rfc3164", "-p", "mail.info", "-t", "postfix", "--id=77"],
                            6,
                            2,
                            "postfix",
                            Some("77"),
                        ),
                    };
                let token = format!("{name} message {i}");
                (
                    token,
                    args,
                    Want {
                        token: "",
                        priority,
                        facility,
                        identifier: tag,
                        pid,
                        host: &host,
                    },
                )
            })
            .collect();
        let port = rsyslog.port.to_string();
        for (token, args, _) in &sent {
            let out = Command::new("logger")
                .args(["--tcp", "-n", "127.0.0.1", "-P", &port])
                .args(args)
                .args(["--", token])
                .output()
                .unwrap();
            assert!(out.status.success(), "logger: {out:?}");
        }
        let entries = messages(&journal, sent.len());
        println!(
            "rsyslog {name}: {} messages sent through rsyslogd, {} entries in the journal",
            sent.len(),
            entries.len()
        );
        assert_eq!(entries.len(), sent.len(), "{name}: every message once");
        for (token, args, want) in &sent {
            let e = entry_with(&entries, token);
            // rsyslog's RFC 5424 template keeps the space that followed `tag:` in an RFC 3164
            // message it received: the MSG it sends starts with it (as its capture in
            // tests/data/syslog shows), and MESSAGE shows the MSG as sent.
            let text = if name == "octet-counted" && args.contains(&"--rfc3164") {
                format!(" {token}")
            } else {
                token.clone()
            };
            check(
                e,
                &Want {
                    token: &text,
                    ..*want
                },
            );
        }
        drop(rsyslog);
    }
}
