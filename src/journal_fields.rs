//! Every journal field the daemon writes, with its meaning, written once: the README's two
//! tables under "What reaches the journal" are made from [`FIELDS`] and [`SYSLOG_FIELDS`]
//! (tests/documents.rs fails when they differ, rewrites them with `UPDATE_DOCS=1`, and fails
//! when the code writes a field named in neither). Texts are markdown.

/// One row of a table: the fields it names and what they hold.
#[derive(Debug, Clone, Copy)]
pub struct FieldDoc {
    pub names: &'static [&'static str],
    pub meaning: &'static str,
}

const fn row(names: &'static [&'static str], meaning: &'static str) -> FieldDoc {
    FieldDoc { names, meaning }
}

/// The fields of every entry, and those of particular events.
pub const FIELDS: &[FieldDoc] = &[
    row(&["MESSAGE"], "`192.0.2.7:51234: the line` (the default `journalctl` view shows sender and line)"),
    row(&["PRIORITY"], "6 for lines and connections; 5 for reloads; 4 for refusals, drops and journald outages; 3 for errors and a stop that could not log everything (a syslog message's: its own, never above `max_remote_severity`, below)"),
    row(&["SYSLOG_IDENTIFIER", "SYSLOG_FACILITY"], "`tcp-listener`, 3 (daemon) (a syslog message's: its own, below)"),
    row(&["REMOTE_ADDR", "REMOTE_PORT"], "the client: IPv4 clients of a dual-stack socket as plain IPv4, a link-local IPv6 client with its zone (`fe80::1%eth0`)"),
    row(&["CONNECTION_ID"], "the daemon's number for the connection (0 in a `refused` entry and on every UDP entry: there is no connection)"),
    row(&["LISTENER_EVENT"], "`line`, `connected`, `disconnected`, `connections`, `refused`, `dropped`, `notice`"),
    row(&["LINE_NUMBER"], "the connection's lines counted from 1 (every piece of a long line has its line's number): tells a line sent again after a journald crash from a line sent twice; UDP: the UDP messages counted from 1 since the daemon started, all senders together"),
    row(&["LINE_PART", "LINE_CONTINUED", "LINE_PARTIAL"], "pieces of long lines (numbered from 1 within their line; `1` on every piece but the last); a line cut by a disconnect or a stop"),
    row(&["REDELIVERED"], "`1` on an entry sent again because journald may have lost it (it died before storing it)"),
    row(&["LINE_CARRIED"], "`1` on a partial line (or the partial end of a line in pieces) logged at a stop that handed its connection to systemd's file descriptor store: after a restart the rest of the line follows with the same `CONNECTION_ID` and `LINE_NUMBER`, from the same `LINE_PART`, and supersedes it"),
    row(&["BYTES_RECEIVED", "LINES_LOGGED", "DURATION_MS", "DISCONNECT_REASON"], "in `disconnected` (a line logged in pieces counts once)"),
    row(&["CONNECTED_COUNT", "DISCONNECTED_COUNT"], "in `connections`: one source's connection entries not logged one by one"),
    row(&["REFUSED_REASON", "REFUSED_COUNT"], "in `refused`: why; how many more were not logged one by one"),
    row(&["TLS_VERSION", "TLS_CIPHER"], "on every entry of a TLS connection: `TLSv1.3`, `TLS13_AES_256_GCM_SHA384`"),
    row(&["TLS_CLIENT_SUBJECT", "TLS_CLIENT_CN", "TLS_CLIENT_SAN"], "with `tls.client_ca`, on every entry of the connection: the certificate's subject (RFC 4514, `CN=sensor1,O=Example`), its common name, and one `TLS_CLIENT_SAN` per subject alternative name (`DNS:sensor1.example.org`, `IP:192.0.2.7`, `email:…`, `URI:…`), so `journalctl TLS_CLIENT_SAN=DNS:sensor1.example.org` shows one device's lines"),
    row(&["TLS_CLIENT_CN_OMITTED", "TLS_CLIENT_SAN_OMITTED", "TLS_FIELDS_OMITTED"], "a certificate can hold thousands of names, and journald silently drops an entry of more than 1,024 fields: the first 16 common names and the first 16 alternative names are logged, and these count the others (`allow_names` is matched against all of them); a subject longer than 1,024 bytes ends with `(N more attributes)`; an identity field that would still not fit within what journald stores (1,024 fields, 32 MiB) is left out and counted in `TLS_FIELDS_OMITTED`"),
    row(&["DROPPED_LINES"], "in `dropped` (`rate_limit_action = \"drop\"`): lines over the limit not logged"),
    row(&["TRANSPORT"], "`udp` on every entry of the UDP input (`udp = true`; absent on TCP entries): `journalctl TRANSPORT=udp`"),
    row(&["DATAGRAM_TRUNCATED"], "UDP: the length as sent of a datagram longer than `udp_max_datagram`, on the entries of the piece logged"),
    row(&["DROPPED_DATAGRAMS", "TRUNCATED_DATAGRAMS"], "in a UDP `dropped` entry: datagrams the kernel dropped for want of buffer or from senders not in `allow`; datagrams logged cut"),
    row(&["JOURNAL_STORAGE", "JOURNAL_MAX_USE", "JOURNAL_HOLDS_SEC"], "in the start `notice` that says the journal of the client lines holds little (below): `volatile`, `persistent` or `none`; its size limit in bytes; how long it holds one host at `max_lines_per_sec`, in seconds (absent without a limit)"),
];

/// What a syslog message's entry (`framing = "syslog"`) holds where it differs from a line's.
pub const SYSLOG_FIELDS: &[FieldDoc] = &[
    row(&["MESSAGE"], "`192.0.2.7:51234 nas: disk failing`: the peer, the HOSTNAME the message names, and its text (`192.0.2.7:51234: text` without a HOSTNAME)"),
    row(&["PRIORITY"], "the message's severity (`local0.err` → 3), but never more severe than `max_remote_severity` (err by default: `auth.emerg` → 3)"),
    row(&["REMOTE_PRIORITY"], "the severity as sent, 0–7, on every message with a valid `<PRI>` (`journalctl REMOTE_PRIORITY=0` finds what was sent as emerg)"),
    row(&["SYSLOG_FACILITY"], "the message's facility, 0–23 (`local0` → 16)"),
    row(&["SYSLOG_IDENTIFIER"], "RFC 5424 APP-NAME or RFC 3164 TAG (`journalctl -t nas`), after `remote_identifier_prefix`"),
    row(&["SYSLOG_PID"], "RFC 5424 PROCID or the RFC 3164 `[pid]`, as sent"),
    row(&["SYSLOG_HOSTNAME", "SYSLOG_TIMESTAMP"], "HOSTNAME and TIMESTAMP as sent (the HOSTNAME is the sender's claim; `REMOTE_ADDR` is what TCP saw)"),
    row(&["SYSLOG_MSGID", "SYSLOG_STRUCTURED_DATA"], "RFC 5424 MSGID and STRUCTURED-DATA (all elements, read back by an RFC 5424 parser as the parameters sent: below)"),
    row(&["SYSLOG_PARSE_ERROR"], "only when the header was not recognised: the message is then logged whole, at the line priority (6) if it has no valid `<PRI>`"),
];

/// The last row of the syslog table: the fields a syslog message's entry has as a line's.
const AS_FOR_LINES: &str = "| `REMOTE_ADDR`, `REMOTE_PORT`, `CONNECTION_ID`, `LINE_NUMBER`, \
                            `LISTENER_EVENT=line`, `LINE_PART`… | as for lines |\n";

/// The README's table of the fields of every entry.
pub fn lines_table() -> String {
    table(FIELDS)
}

/// The README's table of a syslog message's fields; it ends with those it shares with lines.
pub fn syslog_table() -> String {
    table(SYSLOG_FIELDS) + AS_FOR_LINES
}

fn table(rows: &[FieldDoc]) -> String {
    let mut out = String::from("| field | value |\n| --- | --- |\n");
    for row in rows {
        let names: Vec<String> = row.names.iter().map(|n| format!("`{n}`")).collect();
        out += &format!("| {} | {} |\n", names.join(", "), row.meaning);
    }
    out
}

/// Every field name the two tables document.
pub fn documented() -> impl Iterator<Item = &'static str> {
    FIELDS
        .iter()
        .chain(SYSLOG_FIELDS)
        .flat_map(|row| row.names.iter().copied())
}
