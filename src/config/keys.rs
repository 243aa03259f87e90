//! Every configuration key's name, default and meaning, written once: the README's
//! Configuration table and the man page's key list are made from [`KEYS`] (tests/documents.rs
//! fails when they differ, and rewrites them with `UPDATE_DOCS=1`), and the same tests check
//! each default here against `Config::default()` and against the commented defaults of
//! config/tcp-listener.toml.
//!
//! Texts are in a small markup both documents can show: plain words, `code` in backticks (bold
//! in the man page). `meaning` is one paragraph (a README table cell); `details` adds to it in
//! the man page only, its paragraphs separated by an empty line.

/// A key's default as the documents show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyDefault {
    /// The value, written as TOML (`8888`, `"::"`, `[]`).
    Value(&'static str),
    /// No default: the key is unset unless given (its documents say "none").
    Unset,
    /// No default, and its section needs it (`tls.certificate`).
    Required,
}

/// One key of the configuration file.
#[derive(Debug, Clone, Copy)]
pub struct KeyDoc {
    /// As `--check-config` prints it, with its section: `port`, `log.target`.
    pub name: &'static str,
    pub default: KeyDefault,
    /// What it does, in one paragraph.
    pub meaning: &'static str,
    /// More for the man page: paragraphs separated by an empty line; may be empty.
    pub details: &'static str,
}

impl KeyDoc {
    /// The section (`log`, `tls`), or `None` for a top-level key.
    pub fn section(&self) -> Option<&'static str> {
        self.name.split_once('.').map(|(section, _)| section)
    }

    /// The name inside its section: `target` for `log.target`.
    pub fn leaf(&self) -> &'static str {
        self.name.rsplit('.').next().unwrap_or(self.name)
    }
}

/// What each section is for, as the man page introduces it.
pub const SECTIONS: &[(&str, &str)] = &[
    ("log", "where entries go."),
    (
        "tls",
        "optional; with it the port speaks TLS only, without it nothing changes.",
    ),
];

use KeyDefault::{Required, Unset, Value};

/// Every key, in the order of `--check-config` (top-level keys, then `[log]`, then `[tls]`).
pub const KEYS: &[KeyDoc] = &[
    KeyDoc {
        name: "port",
        default: Value("8888"),
        meaning: "TCP port to listen on (1 to 65535).",
        details: "Ports below 1024 need extra setup: see PORTS BELOW 1024.",
    },
    KeyDoc {
        name: "buffer_size",
        default: Value("1024"),
        meaning: "Bytes read from a client at a time (1 to 1048576).",
        details: r#"With `framing = "raw"` this is also the most one entry holds (a read whose MESSAGE would be longer than `max_line_length` is cut into pieces like a long line)."#,
    },
    KeyDoc {
        name: "bind",
        default: Value(r#""::""#),
        meaning: r#"Address to listen on: `"::"` accepts IPv6 and IPv4 clients (dual-stack) and falls back to `0.0.0.0` on a host without IPv6; `"127.0.0.1"` accepts local clients only."#,
        details: "",
    },
    KeyDoc {
        name: "backlog",
        default: Value("3"),
        meaning: "The listen(2) backlog: connections the kernel queues before the daemon accepts them (1 to 65535).",
        details: "",
    },
    KeyDoc {
        name: "max_connections",
        default: Value("64"),
        meaning: "Clients served at once (1 to 1048576); the next one is refused and a warning is logged (`LISTENER_EVENT=refused`, at most 5 per 10 seconds, then one summary).",
        details: "",
    },
    KeyDoc {
        name: "max_connections_per_source",
        default: Value("16"),
        meaning: "Clients from one address served at once (1 to 1048576); the next one from it is refused the same way.",
        details: "",
    },
    KeyDoc {
        name: "max_line_length",
        default: Value("4087"),
        meaning: "The longest `MESSAGE`, in bytes as stored (4 to 4194304, 4 MiB): a line whose `MESSAGE` would be longer is logged in pieces marked `[continued]`, each `MESSAGE` within it; nothing is dropped.",
        details: r#"As stored: the `peer: ` prefix, the escaped text (a byte written as `\xNN` takes 4) and the mark count. Every piece but the last is marked `[continued]` (fields `LINE_PART` and `LINE_CONTINUED`), and no piece ends inside a UTF-8 character. The default is the longest `MESSAGE` that `journalctl -o json` prints without `--all` (it prints `null` for a field of 4096 bytes or more, `MESSAGE=` included). A limit too small for the prefix and the mark still gives pieces of 4 bytes of text."#,
    },
    KeyDoc {
        name: "idle_timeout_secs",
        default: Value("300"),
        meaning: "Close a client that has sent nothing for this many seconds; 0 = never.",
        details: "",
    },
    KeyDoc {
        name: "framing",
        default: Value(r#""line""#),
        meaning: r#"`"line"`: one entry per line (LF, CR LF or CR ends it); `"raw"`: one entry per read, whatever it holds; `"syslog"`: one entry per syslog message, with the fields of its header (see syslog messages)."#,
        details: "",
    },
    KeyDoc {
        name: "allow",
        default: Value("[]"),
        meaning: r#"Networks allowed to connect, as CIDRs or single addresses (`["192.168.0.0/16", "::1"]`); empty = everyone."#,
        details: "IPv4 entries also match IPv4 clients on the dual-stack socket (`::ffff:a.b.c.d`). Other clients are refused and logged with `LISTENER_EVENT=refused`.",
    },
    KeyDoc {
        name: "max_lines_per_sec",
        default: Value("1000"),
        meaning: "Rate limit per source address: lines per second on average, all its connections together (reconnecting does not refill it; the pieces of a long line count as one line); 0 = no limit.",
        details: "",
    },
    KeyDoc {
        name: "max_lines_burst",
        default: Value("5000"),
        meaning: "Lines a source may send in a burst above `max_lines_per_sec`.",
        details: "",
    },
    KeyDoc {
        name: "rate_limit_action",
        default: Value(r#""throttle""#),
        meaning: r#"What happens to a source over its limit: `"throttle"` stops reading its connections until it has budget again (TCP flow control slows the sender down; nothing is lost); `"drop"` reads on and drops the lines over the limit, counted in a warning (`LISTENER_EVENT=dropped`, `DROPPED_LINES=`) at most once per client and second."#,
        details: "",
    },
    KeyDoc {
        name: "stop_timeout_secs",
        default: Value("10"),
        meaning: "On SIGTERM, the time (1 to 25 seconds) the daemon may take to read and log what it had received before it exits.",
        details: "The unit's `TimeoutStopSec=30s` stays above it.",
    },
    KeyDoc {
        name: "metrics_listen",
        default: Unset,
        meaning: r#"An address and port (`"127.0.0.1:9188"`) where the daemon serves its counters for Prometheus (`GET /metrics`, text format); unset: not served."#,
        details: r#"Counters: connections accepted, refused (by reason), carried across restarts; lines and bytes received; lines dropped (by reason); entries delivered, written to stderr, undelivered; journal outages; TLS handshakes failed; and the clients connected now. No label names a source (per-source detail is in the journal). Keep it on loopback (or behind `IPAddressAllow=`): it answers anyone who can reach it. Applied at reload too."#,
    },
    KeyDoc {
        name: "max_remote_severity",
        default: Value(r#""err""#),
        meaning: r#"The most severe `PRIORITY` a remote syslog message is logged at (`emerg`, `alert`, `crit`, `err`, `warning`, `notice`, `info` or `debug`; `"emerg"` = no floor): one sent more severe is logged at this one, and the severity sent is kept in `REMOTE_PRIORITY`."#,
        details: "So no remote host can make journald write to every terminal (`ForwardToWall=yes`, `MaxLevelWall=emerg` by default), or rsyslog's `*.emerg :omusrmsg:*` do it.",
    },
    KeyDoc {
        name: "remote_identifier_prefix",
        default: Value(r#""""#),
        meaning: r#"Put before the `SYSLOG_IDENTIFIER` a remote syslog message names (`"remote-"` logs a remote `sshd` as `remote-sshd`); `""` = as sent."#,
        details: "So that `journalctl -t sshd` shows only the host's own. At most 32 letters, digits, `-`, `_`, `.` or `:`.",
    },
    KeyDoc {
        name: "udp",
        default: Value("false"),
        meaning: "`true`: a UDP socket on the same `bind` and `port` as well (TCP stays on): one datagram, one message (RFC 5426), framed by `framing`; its entries carry `TRANSPORT=udp` (see syslog over UDP).",
        details: r#"`"syslog"` parses its header as over TCP, `"line"` logs each of its lines, `"raw"` the datagram; a trailing LF, CR or NUL is not part of it. Entries carry `CONNECTION_ID` 0 and a `LINE_NUMBER` counting the UDP messages from 1 since the start. The allow list applies (other senders' datagrams are dropped and counted); a message over its source's budget is dropped and counted (a datagram cannot be slowed down); datagrams the kernel dropped for want of buffer are counted (SO_RXQ_OVFL); all reported in `dropped` entries (at most once a second) and in the stop summary. With the socket unit, a `ListenDatagram=` socket systemd passes is used; at a stop or restart the socket goes to the file descriptor store with the listener, so datagrams sent meanwhile wait in the kernel for the next process. A reload turns it on or off."#,
    },
    KeyDoc {
        name: "udp_receive_buffer",
        default: Value("212992"),
        meaning: "The UDP socket's receive buffer (SO_RCVBUF), in bytes (4096 to 268435456): what the kernel queues while the daemon is busy or journald is slow.",
        details: "`net.core.rmem_max` caps what it grants; a warning at start says what was granted and the sysctl that raises the cap. A reload applies a changed size.",
    },
    KeyDoc {
        name: "udp_hold_buffer",
        default: Value("2097152"),
        meaning: "While journald takes no entries, datagrams are still read and held in memory, up to this many bytes (0 to 1073741824; each datagram takes its length and 36 bytes), and logged in order when it takes them again; only then does the kernel queue them (`udp_receive_buffer`), and count what it drops. 0 = none held.",
        details: "UDP cannot be slowed down: this is what stands in for TCP's flow control while journald pauses. The memory is taken only while datagrams are held (the default, 2 MiB, holds about 10,000 datagrams of 160 bytes) and given back when the hold empties. A reload applies a new size (what is held stays). At a stop, what is held is logged before the daemon exits.",
    },
    KeyDoc {
        name: "udp_max_datagram",
        default: Value("65535"),
        meaning: "The longest datagram read whole (64 to 65535); a longer one is logged cut, its last piece marked `[partial]`, with `DATAGRAM_TRUNCATED=` its length as sent, and counted.",
        details: "",
    },
    KeyDoc {
        name: "log.target",
        default: Value(r#""journald""#),
        meaning: r#"`"journald"` (its native protocol, with every journal field), `"syslog"` (RFC 3164 messages to `syslog_server`, no extra fields) or `"stderr"` (a line per entry)."#,
        details: r#"When the journal socket cannot be used (it does not exist, is not a socket, or is a stream socket) `"journald"` writes to standard error meanwhile, says so, and looks at the socket again every 5 seconds."#,
    },
    KeyDoc {
        name: "log.journal_socket",
        default: Value(r#""/run/systemd/journal/socket""#),
        meaning: "The journal socket, an absolute path; change it only for a journal namespace or a test. With `namespace`, the daemon's own entries go here.",
        details: "",
    },
    KeyDoc {
        name: "log.syslog_server",
        default: Value(r#""""#),
        meaning: r#"With `target = "syslog"`: `""` = the local `/dev/log`, or `"udp://host:514"`, `"tcp://host:514"` (no other scheme)."#,
        details: r#"A remote syslog message goes on under its sender's facility, severity (as sent, not floored by `max_remote_severity`), tag and hostname (the sender's address when it sent none), as RFC 3164 asks of a relay; the daemon's own entries and plain lines go as `tcp-listener[PID]`, facility daemon."#,
    },
    KeyDoc {
        name: "log.namespace",
        default: Unset,
        meaning: r#"With `target = "journald"`: the journal namespace client entries go to (every `line`, and the `connected`, `disconnected`, `dropped` and `connections` entries), at `/run/systemd/journal.NAME/socket`; the daemon's own entries (start, stop, reloads, errors, journald outages, `refused` connections) stay in the journal of `journal_socket`. Unset: everything in that one journal."#,
        details: r#"`"tcp-listener"` is the namespace the package configures (`/etc/systemd/journald@tcp-listener.conf`: on disk, at most 500 MB) and the unit pulls in (`Wants=systemd-journald@tcp-listener.socket`); read it with `journalctl --namespace=tcp-listener`. Another name needs its own `journald@NAME.conf` and a drop-in with `Wants=systemd-journald@NAME.socket`. While the namespace's socket cannot be used (it does not exist: its socket unit is not started), client entries go to the main journal, a notice says so, and the socket is looked at again every 5 seconds; its journald gone or stalled is handled as for the main journal (entries held, sent again, the outage told in the main journal). 1 to 64 letters, digits, `-`, `_` and dots (not first).

At start, when the journal client lines go to (this namespace, or the journal of `journal_socket`) is in RAM, keeps nothing, or holds less than a day of one host sending at `max_lines_per_sec`, one notice says so: how long it holds (its size, read from journald's configuration as journald reads it, over `max_lines_per_sec` times about 700 bytes an entry) and the setting that keeps more (with fields `JOURNAL_STORAGE`, `JOURNAL_MAX_USE`, `JOURNAL_HOLDS_SEC`)."#,
    },
    KeyDoc {
        name: "tls.certificate",
        default: Required,
        meaning: "PEM: the daemon's certificate, then any intermediates; with a `[tls]` section the port speaks TLS only. An absolute path, or `${CREDENTIALS_DIRECTORY}/NAME` for a file systemd passes with `LoadCredential=NAME:PATH`.",
        details: "The service's dynamic user cannot read `/etc/ssl/private` itself (see EXAMPLES). `--check-config` says whether certificate and key match and when the certificate expires.",
    },
    KeyDoc {
        name: "tls.private_key",
        default: Required,
        meaning: "PEM: the certificate's private key (PKCS#8, PKCS#1 or SEC1); a path as for `certificate`.",
        details: "",
    },
    KeyDoc {
        name: "tls.client_ca",
        default: Unset,
        meaning: "PEM: the CAs that sign client certificates. Set: every client must present a certificate one of them signed, not expired; unset: none is asked for.",
        details: "Its subject, common name and subject alternative names go into every entry of the connection. The certificate must be X.509 v3 (an extendedKeyUsage, if it has one, must include `clientAuth`): `openssl x509 -req` makes a v1 certificate unless `-extfile` gives it extensions, and a client presenting one is refused with a reason that says so (packaging/README.md has a recipe).",
    },
    KeyDoc {
        name: "tls.min_version",
        default: Value(r#""1.2""#),
        meaning: r#"The lowest protocol version accepted: `"1.2"` or `"1.3"`."#,
        details: "",
    },
    KeyDoc {
        name: "tls.allow_names",
        default: Value("[]"),
        meaning: "With `client_ca`: the certificate names allowed (a DNS subject alternative name or the common name; `*.example.org` matches one label); empty = any certificate `client_ca` signed.",
        details: "",
    },
    KeyDoc {
        name: "tls.handshake_timeout_secs",
        default: Value("10"),
        meaning: "A client that has not finished its handshake this long after connecting, in seconds, is refused (1 to 60).",
        details: "",
    },
    KeyDoc {
        name: "tls.max_handshakes",
        default: Value("16"),
        meaning: "Handshakes in progress at once (1 to 1048576); the next client is refused until one ends.",
        details: "",
    },
];

/// The README's Configuration table.
pub fn markdown_table() -> String {
    let mut out = String::from("| key | default | meaning |\n| --- | --- | --- |\n");
    for key in KEYS {
        let default = match key.default {
            Value(v) => format!("`{v}`"),
            Unset => "none".into(),
            Required => "required".into(),
        };
        let cell = key.meaning.replace('|', "\\|");
        out += &format!("| `{}` | {default} | {cell} |\n", key.name);
    }
    out
}

/// The man page's key list (troff, `-man` macros): a `.TP` per key, under its section.
pub fn man_list() -> String {
    let mut out = String::new();
    let mut section = None;
    for key in KEYS {
        if key.section() != section {
            section = key.section();
            let name = section.expect("top-level keys come first");
            let text = SECTIONS.iter().find(|(s, _)| *s == name).map(|(_, t)| *t);
            out += &format!(
                ".PP\nSection\n.BR [{name}] :\n{}\n",
                troff(text.expect("every section is described"))
            );
        }
        out += ".TP\n";
        out += &match key.default {
            Value(v) => format!(".BR {} \" = {}\"\n", key.leaf(), troff_plain(v)),
            Unset => format!(".BR {} \" (none)\"\n", key.leaf()),
            Required => format!(".B {}\n", key.leaf()),
        };
        out += &troff(key.meaning);
        out.push('\n');
        // The first paragraph of the details goes on with the meaning's.
        for (i, paragraph) in key
            .details
            .split("\n\n")
            .filter(|p| !p.is_empty())
            .enumerate()
        {
            if i > 0 {
                out += ".IP\n";
            }
            out += &troff(paragraph);
            out.push('\n');
        }
    }
    out
}

/// Text with troff's special characters escaped: a backslash, a minus, a double quote.
fn troff_plain(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        match c {
            '\\' => out += "\\e",
            '-' => out += "\\-",
            '"' => out += "\\(dq",
            '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A paragraph of the markup as one troff text line: `code` in bold.
fn troff(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in text.split('`').enumerate() {
        if i % 2 == 1 {
            out += &format!("\\fB{}\\fR", troff_plain(part));
        } else {
            out += &troff_plain(part);
        }
    }
    // A text line must not start with a control character.
    if out.starts_with('.') || out.starts_with('\'') {
        out.insert_str(0, "\\&");
    }
    out
}
