//! What the daemon logs: one typed constructor per `LISTENER_EVENT` a user filters on (`line`,
//! `connected`, `disconnected`, `refused`, `dropped`, `notice`), each writing its message and
//! fields the same way every time. Sinks only encode what these build.

use std::fmt::Write;
use std::net::SocketAddr;
use std::time::Duration;

use crate::escape::escape_into;
use crate::framing::{Frame, CONTINUED_MARK, MIN_PIECE, PARTIAL_MARK};
use crate::source::EventCounts;
use crate::syslog_message::{field, write_message, Header, JournalFields};

/// syslog priorities used by the daemon.
pub mod priority {
    pub const ERR: u8 = 3;
    pub const WARNING: u8 = 4;
    pub const NOTICE: u8 = 5;
    pub const INFO: u8 = 6;
}

/// What an entry records, as the `LISTENER_EVENT` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A line (or piece of one) a client sent.
    Line,
    Connected,
    Disconnected,
    Refused,
    /// Lines dropped by the per-client rate limit.
    Dropped,
    /// The daemon's own news: start, reload, stop, delivery problems.
    Notice,
    /// A source's connection events not logged one by one.
    Connections,
}

impl Event {
    /// Whether the entry is about a client connection: its lines and its life (`line`,
    /// `connected`, `disconnected`, `dropped`, `connections`), which `[log] namespace` sends
    /// to a journal of their own. The daemon's own news (`notice`: start, reload, stop,
    /// errors) and its admission decisions (`refused`, at most 5 per 10 s and a summary)
    /// stay in the main journal.
    pub fn is_client(self) -> bool {
        match self {
            Event::Line
            | Event::Connected
            | Event::Disconnected
            | Event::Dropped
            | Event::Connections => true,
            Event::Refused | Event::Notice => false,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Event::Line => "line",
            Event::Connected => "connected",
            Event::Disconnected => "disconnected",
            Event::Refused => "refused",
            Event::Dropped => "dropped",
            Event::Notice => "notice",
            Event::Connections => "connections",
        }
    }
}

/// A client: where it is and which connection of the daemon's it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub addr: SocketAddr,
    pub connection_id: u64,
}

/// The peer as shown in messages: `192.0.2.7:51234`, `[2001:db8::1]:51234`, or with the
/// interface of a link-local address `[fe80::1%eth0]:51234` (an IPv4 client of a dual-stack
/// socket as plain IPv4).
pub fn peer_label(addr: SocketAddr) -> String {
    match scoped_ip(addr) {
        Some(ip) => format!("[{ip}]:{}", addr.port()),
        None => canonical(addr).to_string(),
    }
}

/// An IPv4 client of a dual-stack socket (`[::ffff:192.0.2.7]:51234`) as plain IPv4; any
/// other address as it is (a link-local one keeps its zone).
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) if v6.ip().to_ipv4_mapped().is_some() => {
            SocketAddr::new(addr.ip().to_canonical(), addr.port())
        }
        addr => addr,
    }
}

/// An IPv6 address with its zone, `fe80::1%eth0`, when it has one (a link-local peer: the
/// address alone does not say which link). The interface's name, or its index if it has
/// none any more.
pub fn scoped_ip(addr: SocketAddr) -> Option<String> {
    let SocketAddr::V6(v6) = addr else {
        return None;
    };
    if v6.scope_id() == 0 {
        return None;
    }
    let zone = nix::net::if_::if_indextoname(v6.scope_id())
        .ok()
        .and_then(|name| name.into_string().ok())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| v6.scope_id().to_string());
    Some(format!("{}%{zone}", v6.ip()))
}

/// The bytes of a MESSAGE left for a piece's escaped text and its mark once the peer's
/// `label: ` prefix is written: what the framer of the peer's connection is given, so that no
/// MESSAGE is longer than `max_line_length` ([`crate::framing`]). At least
/// [`MIN_PIECE`]: a limit too small for the prefix still logs every byte.
pub fn text_room(max_line_length: usize, label: &str) -> usize {
    max_line_length
        .saturating_sub(label.len() + ": ".len())
        .max(MIN_PIECE)
}

/// A field value: text (escaped already where it came from a client) or a number, which the
/// encoders write without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Text(&'a str),
    Number(u64),
}

/// The most further fields an entry has (a syslog message's piece: LINE_NUMBER, LINE_PART,
/// LINE_CONTINUED or LINE_PARTIAL, REMOTE_PRIORITY, six SYSLOG_* fields, and LINE_CARRIED
/// when carried; a datagram's, see `udp/`, TRANSPORT and DATAGRAM_TRUNCATED instead of
/// LINE_CARRIED).
pub const MAX_FIELDS: usize = 13;

/// Further fields of an entry beyond the ones every entry has, such as `LINE_PART`.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    items: [(&'static str, Value<'a>); MAX_FIELDS],
    len: usize,
}

impl<'a> Fields<'a> {
    pub const fn new() -> Fields<'a> {
        Fields {
            items: [("", Value::Number(0)); MAX_FIELDS],
            len: 0,
        }
    }

    pub fn push(&mut self, key: &'static str, value: Value<'a>) {
        self.items[self.len] = (key, value);
        self.len += 1;
    }

    pub fn with(mut self, key: &'static str, value: Value<'a>) -> Fields<'a> {
        self.push(key, value);
        self
    }

    pub fn iter(&self) -> impl Iterator<Item = &(&'static str, Value<'a>)> {
        self.items[..self.len].iter()
    }
}

impl Default for Fields<'_> {
    fn default() -> Self {
        Fields::new()
    }
}

/// Fields every entry of a TLS connection carries (`TLS_VERSION`, `TLS_CIPHER`, and with a
/// client certificate `TLS_CLIENT_SUBJECT`, `TLS_CLIENT_CN`, one `TLS_CLIENT_SAN` per
/// subject alternative name), built once when its handshake ends: the line path only copies
/// them. Values are escaped already.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFields {
    pub fields: Vec<(&'static str, String)>,
    /// For the `connected` message: `TLSv1.3, TLS13_AES_256_GCM_SHA384, client CN=…`.
    pub summary: String,
}

impl TlsFields {
    pub fn push(&mut self, key: &'static str, value: String) {
        self.fields.push((key, value));
    }
}

/// One entry to log. `message` is the whole human-readable text, peer included.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    pub priority: u8,
    pub event: Event,
    pub message: &'a str,
    pub peer: Option<Peer>,
    pub fields: Fields<'a>,
    /// The connection's TLS fields, on every entry of a TLS connection.
    pub tls: Option<&'a TlsFields>,
    /// Who the entry says logged it (SYSLOG_IDENTIFIER, SYSLOG_FACILITY): the daemon, except
    /// for a syslog message that names its own program or facility.
    pub origin: Author<'a>,
}

/// The daemon's SYSLOG_IDENTIFIER.
pub const IDENTIFIER: &str = "tcp-listener";
/// The daemon's SYSLOG_FACILITY: 3, `daemon`.
pub const FACILITY: u8 = 3;

/// SYSLOG_IDENTIFIER and SYSLOG_FACILITY of an entry; each `None` stands for the daemon's
/// own ([`IDENTIFIER`], [`FACILITY`]). journald keeps every value of a field sent twice, so an
/// entry carries one of each: a remote syslog message's, or the daemon's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Author<'a> {
    /// Escaped text (it came from a client).
    pub identifier: Option<&'a str>,
    /// 0–23.
    pub facility: Option<u8>,
}

impl Author<'_> {
    /// The daemon's own: `tcp-listener`, facility 3.
    pub const DAEMON: Author<'static> = Author {
        identifier: None,
        facility: None,
    };

    pub fn is_daemon(&self) -> bool {
        self.identifier.is_none() && self.facility.is_none()
    }
}

/// What the daemon makes of the priority and program a remote syslog message claims
/// (`max_remote_severity`, `remote_identifier_prefix`): what a remote host sends is data, and
/// a priority is what journald (and rsyslog behind it) acts on, writing `emerg` to every
/// terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// The most severe PRIORITY a remote message is logged at (0 = no floor).
    pub max_severity: u8,
    /// Put before the SYSLOG_IDENTIFIER the message names.
    pub identifier_prefix: String,
}

impl Remote {
    pub fn new(config: &crate::config::Config) -> Remote {
        Remote {
            max_severity: config.max_remote_severity.priority(),
            identifier_prefix: config.remote_identifier_prefix.clone(),
        }
    }

    /// The PRIORITY of a message sent with `severity`: never more severe than the floor.
    pub fn priority(&self, severity: u8) -> u8 {
        severity.max(self.max_severity)
    }
}

impl Default for Remote {
    fn default() -> Remote {
        Remote::new(&crate::config::Config::default())
    }
}

/// The field that keeps the severity a syslog message was sent with (0–7), whatever
/// PRIORITY the floor made of it.
pub const REMOTE_PRIORITY: &str = "REMOTE_PRIORITY";

impl<'a> Entry<'a> {
    /// The same entry, with the fields of its connection's TLS session.
    pub fn with_tls(mut self, tls: Option<&'a TlsFields>) -> Entry<'a> {
        self.tls = tls;
        self
    }

    /// An entry about the daemon itself.
    pub fn notice(priority: u8, message: &'a str) -> Entry<'a> {
        Entry {
            priority,
            event: Event::Notice,
            message,
            peer: None,
            fields: Fields::new(),
            tls: None,
            origin: Author::DAEMON,
        }
    }

    /// A line (or a piece of one) as `peer: text`, the text escaped. `number` counts the
    /// connection's lines from 1 (`LINE_NUMBER`), so a reader can tell a line sent again after
    /// a journald crash from a line sent twice.
    pub fn line(
        buf: &'a mut String,
        label: &str,
        peer: Peer,
        number: u64,
        frame: &Frame<'_>,
    ) -> Entry<'a> {
        buf.clear();
        buf.push_str(label);
        buf.push_str(": ");
        escape_into(buf, frame.bytes);
        let fields = piece_fields(buf, number, frame);
        Entry {
            priority: priority::INFO,
            event: Event::Line,
            message: buf,
            peer: Some(peer),
            fields,
            tls: None,
            origin: Author::DAEMON,
        }
    }

    /// A syslog message (or a piece of one) of a `framing = "syslog"` connection, with the
    /// `header` parsed from it (or, for a piece after the first, its first piece's): MESSAGE
    /// as [`write_message`] writes it (`peer host: text`); PRIORITY the message's severity,
    /// but never more severe than `remote`'s floor (the line priority if it had no valid
    /// `<PRI>`), and REMOTE_PRIORITY the severity as sent; SYSLOG_IDENTIFIER (with
    /// `remote`'s prefix) and SYSLOG_FACILITY the message's where it has them ([`Author`]);
    /// the other fields of [`JournalFields`]; and the fields of a line
    /// (`LISTENER_EVENT=line`, LINE_NUMBER, LINE_PART, …). `fields` holds the escaped values.
    #[allow(clippy::too_many_arguments)]
    pub fn syslog(
        buf: &'a mut String,
        fields: &'a mut JournalFields,
        label: &str,
        peer: Peer,
        number: u64,
        frame: &Frame<'_>,
        header: &Header<'_>,
        remote: &Remote,
    ) -> Entry<'a> {
        buf.clear();
        write_message(buf, label, header);
        let mut entry_fields = piece_fields(buf, number, frame);
        let priority = match header.pri {
            Some(pri) => {
                entry_fields.push(REMOTE_PRIORITY, Value::Number(pri.severity.into()));
                remote.priority(pri.severity)
            }
            None => priority::INFO,
        };
        fields.set_prefixed(header, &remote.identifier_prefix);
        let fields: &'a JournalFields = fields;
        let mut origin = Author::DAEMON;
        for (name, value) in fields.iter() {
            match name {
                field::IDENTIFIER => origin.identifier = Some(value),
                field::FACILITY => origin.facility = header.pri.map(|p| p.facility),
                _ => entry_fields.push(name, Value::Text(value)),
            }
        }
        Entry {
            priority,
            event: Event::Line,
            message: buf,
            peer: Some(peer),
            fields: entry_fields,
            tls: None,
            origin,
        }
    }

    /// The same line entry ([`Entry::line`] or [`Entry::syslog`]) as the unfinished line of a
    /// connection handed to systemd's file descriptor store, logged as partial at the stop
    /// (`LINE_CARRIED=1`): if the next process takes the connection back, the whole line
    /// follows with the same `LINE_NUMBER`, superseding this one.
    pub fn carried(mut self) -> Entry<'a> {
        self.fields.push("LINE_CARRIED", Value::Text("1"));
        self
    }

    /// A new client; a TLS client once its handshake is over (`(TLSv1.3, …, client CN=…)`).
    pub fn connected(
        buf: &'a mut String,
        label: &str,
        peer: Peer,
        tls: Option<&'a TlsFields>,
    ) -> Entry<'a> {
        buf.clear();
        let _ = write!(buf, "{label}: connected");
        if let Some(tls) = tls {
            buf.push_str(" (");
            buf.push_str(&tls.summary);
            buf.push(')');
        }
        Entry {
            priority: priority::INFO,
            event: Event::Connected,
            message: buf,
            peer: Some(peer),
            fields: Fields::new(),
            tls,
            origin: Author::DAEMON,
        }
    }

    /// The end of a connection, with what it sent.
    pub fn disconnected(
        buf: &'a mut String,
        label: &str,
        peer: Peer,
        reason: &'a str,
        totals: Totals,
    ) -> Entry<'a> {
        buf.clear();
        let _ = write!(
            buf,
            "{label}: disconnected ({reason}) after {:.1} s: {} bytes, {} lines",
            totals.duration.as_secs_f64(),
            totals.bytes,
            totals.lines
        );
        Entry {
            priority: priority::INFO,
            event: Event::Disconnected,
            message: buf,
            peer: Some(peer),
            fields: Fields::new()
                .with("BYTES_RECEIVED", Value::Number(totals.bytes))
                .with("LINES_LOGGED", Value::Number(totals.lines))
                .with(
                    "DURATION_MS",
                    Value::Number(totals.duration.as_millis() as u64),
                )
                .with("DISCONNECT_REASON", Value::Text(reason)),
            tls: None,
            origin: Author::DAEMON,
        }
    }

    /// A client turned away (`REFUSED_REASON`); its `CONNECTION_ID` is 0, it never got one.
    pub fn refused(buf: &'a mut String, addr: SocketAddr, reason: &'a str) -> Entry<'a> {
        buf.clear();
        let _ = write!(buf, "{}: refused: {reason}", peer_label(addr));
        Entry {
            priority: priority::WARNING,
            event: Event::Refused,
            message: buf,
            peer: Some(Peer {
                addr,
                connection_id: 0,
            }),
            fields: Fields::new().with("REFUSED_REASON", Value::Text(reason)),
            tls: None,
            origin: Author::DAEMON,
        }
    }

    /// Refusals not logged one by one in the last `window` (`REFUSED_COUNT`).
    pub fn refused_summary(buf: &'a mut String, count: u64, window: Duration) -> Entry<'a> {
        buf.clear();
        let _ = write!(
            buf,
            "refused {count} more connections in the last {} s (not logged one by one)",
            window.as_secs()
        );
        Entry {
            priority: priority::WARNING,
            event: Event::Refused,
            message: buf,
            peer: None,
            fields: Fields::new().with("REFUSED_COUNT", Value::Number(count)),
            tls: None,
            origin: Author::DAEMON,
        }
    }

    /// Lines of one client over its rate limit, not logged (`DROPPED_LINES`).
    pub fn dropped(
        buf: &'a mut String,
        label: &str,
        peer: Peer,
        count: u64,
        limit: (u32, u32),
        total: u64,
    ) -> Entry<'a> {
        buf.clear();
        let _ = write!(
            buf,
            "{label}: dropped {count} lines over the limit of {} lines/s (burst {}); {total} dropped in all",
            limit.0, limit.1
        );
        Entry {
            priority: priority::WARNING,
            event: Event::Dropped,
            message: buf,
            peer: Some(peer),
            fields: Fields::new().with("DROPPED_LINES", Value::Number(count)),
            tls: None,
            origin: Author::DAEMON,
        }
    }
}

impl<'a> Entry<'a> {
    /// Connection events of one source not logged one by one in the last `window`
    /// (`CONNECTED_COUNT`, `DISCONNECTED_COUNT`); `REMOTE_ADDR` says which source.
    pub fn connections_summary(
        buf: &'a mut String,
        ip: &'a str,
        counts: EventCounts,
        window: Duration,
    ) -> Entry<'a> {
        buf.clear();
        let _ = write!(
            buf,
            "{ip}: {} connects and {} disconnects in the last {} s not logged one by one",
            counts.connected,
            counts.disconnected,
            window.as_secs()
        );
        Entry {
            priority: priority::INFO,
            event: Event::Connections,
            message: buf,
            peer: None,
            fields: Fields::new()
                .with("REMOTE_ADDR", Value::Text(ip))
                .with("CONNECTED_COUNT", Value::Number(counts.connected))
                .with("DISCONNECTED_COUNT", Value::Number(counts.disconnected)),
            tls: None,
            origin: Author::DAEMON,
        }
    }
}

/// The fields of a line or syslog message piece (LINE_NUMBER, and LINE_PART, LINE_CONTINUED,
/// LINE_PARTIAL for pieces), its mark appended to its MESSAGE in `buf`.
fn piece_fields<'a>(buf: &mut String, number: u64, frame: &Frame<'_>) -> Fields<'a> {
    let mut fields = Fields::new().with("LINE_NUMBER", Value::Number(number));
    if frame.part > 0 {
        fields.push("LINE_PART", Value::Number(frame.part.into()));
    }
    if frame.continued {
        buf.push_str(CONTINUED_MARK);
        fields.push("LINE_CONTINUED", Value::Text("1"));
    }
    if frame.partial {
        buf.push_str(PARTIAL_MARK);
        fields.push("LINE_PARTIAL", Value::Text("1"));
    }
    fields
}

/// What one connection sent, for its `disconnected` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub bytes: u64,
    /// Lines logged (`LINES_LOGGED`; a line logged in pieces counts once).
    pub lines: u64,
    pub duration: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> Peer {
        Peer {
            addr: "[::ffff:192.0.2.7]:51234".parse().unwrap(),
            connection_id: 9,
        }
    }

    fn fields_of<'a>(e: &Entry<'a>) -> Vec<(&'static str, Value<'a>)> {
        e.fields.iter().copied().collect()
    }

    #[test]
    fn a_line_is_escaped_and_its_pieces_are_marked() {
        let mut buf = String::new();
        let frame = Frame {
            bytes: b"a\x1bb",
            part: 2,
            continued: true,
            partial: false,
            framing: crate::config::Framing::Line,
        };
        let e = Entry::line(&mut buf, &peer_label(peer().addr), peer(), 7, &frame);
        assert_eq!(e.message, "192.0.2.7:51234: a\\x1bb [continued]");
        assert_eq!(e.event, Event::Line);
        assert_eq!(
            fields_of(&e),
            [
                ("LINE_NUMBER", Value::Number(7)),
                ("LINE_PART", Value::Number(2)),
                ("LINE_CONTINUED", Value::Text("1")),
            ]
        );
        let frame = Frame {
            bytes: b"end",
            part: 0,
            continued: false,
            partial: true,
            framing: crate::config::Framing::Line,
        };
        let e = Entry::line(&mut buf, "x", peer(), 8, &frame);
        assert_eq!(e.message, "x: end [partial]");
        assert_eq!(fields_of(&e)[1], ("LINE_PARTIAL", Value::Text("1")));
    }

    #[test]
    fn a_syslog_message_carries_the_senders_fields_and_origin() {
        let mut buf = String::new();
        let mut fields = JournalFields::new();
        let bytes = b"<131>1 2026-11-27T16:09:48+00:00 vm nas 4242 ID9 [a x=\"1\"] disk \x1b";
        let frame = Frame {
            bytes,
            part: 1,
            continued: true,
            partial: false,
            framing: crate::config::Framing::Syslog,
        };
        let header = crate::syslog_message::parse(bytes);
        let e = Entry::syslog(
            &mut buf,
            &mut fields,
            "192.0.2.7:51234",
            peer(),
            4,
            &frame,
            &header,
            &Remote::default(),
        );
        assert_eq!(e.message, "192.0.2.7:51234 vm: disk \\x1b [continued]");
        assert_eq!(e.priority, 3, "local0.err");
        assert_eq!(e.event, Event::Line);
        assert_eq!(
            e.origin,
            Author {
                identifier: Some("nas"),
                facility: Some(16)
            }
        );
        assert_eq!(
            fields_of(&e),
            [
                ("LINE_NUMBER", Value::Number(4)),
                ("LINE_PART", Value::Number(1)),
                ("LINE_CONTINUED", Value::Text("1")),
                ("REMOTE_PRIORITY", Value::Number(3)),
                ("SYSLOG_PID", Value::Text("4242")),
                ("SYSLOG_HOSTNAME", Value::Text("vm")),
                ("SYSLOG_TIMESTAMP", Value::Text("2026-11-27T16:09:48+00:00")),
                ("SYSLOG_MSGID", Value::Text("ID9")),
                ("SYSLOG_STRUCTURED_DATA", Value::Text("[a x=\"1\"]")),
            ]
        );
        // No valid PRI: the line priority, the daemon's origin, and the reason.
        let bytes = b"just text";
        let frame = Frame {
            bytes,
            part: 0,
            continued: false,
            partial: true,
            framing: crate::config::Framing::Syslog,
        };
        let header = crate::syslog_message::parse(bytes);
        let remote = Remote::default();
        let e = Entry::syslog(
            &mut buf,
            &mut fields,
            "p",
            peer(),
            5,
            &frame,
            &header,
            &remote,
        );
        assert_eq!(e.message, "p: just text [partial]");
        assert_eq!((e.priority, e.origin), (priority::INFO, Author::DAEMON));
        assert_eq!(
            fields_of(&e),
            [
                ("LINE_NUMBER", Value::Number(5)),
                ("LINE_PARTIAL", Value::Text("1")),
                (
                    "SYSLOG_PARSE_ERROR",
                    Value::Text("no valid <PRI> at the start")
                ),
            ]
        );
    }

    #[test]
    fn a_remote_priority_is_never_above_the_floor_and_the_sent_one_is_kept() {
        let mut buf = String::new();
        let mut fields = JournalFields::new();
        let frame = |bytes| Frame {
            bytes,
            part: 0,
            continued: false,
            partial: false,
            framing: crate::config::Framing::Syslog,
        };
        fn remote_priority(e: &Entry<'_>) -> Option<u64> {
            e.fields.iter().find_map(|&(k, v)| match v {
                Value::Number(n) if k == REMOTE_PRIORITY => Some(n),
                _ => None,
            })
        }
        let floor = Remote::default();
        assert_eq!(floor.max_severity, 3, "err by default");
        let lifted = Remote {
            max_severity: 0,
            identifier_prefix: "remote-".into(),
        };
        // (severity sent, PRIORITY under the default floor)
        let texts: Vec<String> = (0..8)
            .map(|sent| format!("<{}>Nov 27 16:09:47 pi sshd[1]: x", 32 + sent))
            .collect();
        for (sent, floored) in [(0, 3), (1, 3), (2, 3), (3, 3), (4, 4), (6, 6), (7, 7)] {
            let bytes = &texts[usize::from(sent)];
            let header = crate::syslog_message::parse(bytes.as_bytes());
            let f = frame(bytes.as_bytes());
            let e = Entry::syslog(&mut buf, &mut fields, "p", peer(), 1, &f, &header, &floor);
            assert_eq!(e.priority, floored, "sent {sent}");
            assert_eq!(remote_priority(&e), Some(sent.into()));
            assert_eq!(e.origin.identifier, Some("sshd"));
            let e = Entry::syslog(&mut buf, &mut fields, "p", peer(), 1, &f, &header, &lifted);
            assert_eq!(e.priority, sent, "with the floor lifted");
            assert_eq!(remote_priority(&e), Some(sent.into()));
            assert_eq!(e.origin.identifier, Some("remote-sshd"));
        }
        // No <PRI>: nothing was claimed; the line priority, no REMOTE_PRIORITY.
        let header = crate::syslog_message::parse(b"x");
        let e = Entry::syslog(
            &mut buf,
            &mut fields,
            "p",
            peer(),
            1,
            &frame(b"x"),
            &header,
            &floor,
        );
        assert_eq!((e.priority, remote_priority(&e)), (priority::INFO, None));
    }

    #[test]
    fn client_entries_are_the_lines_and_the_connections_life() {
        let client = [
            Event::Line,
            Event::Connected,
            Event::Disconnected,
            Event::Dropped,
            Event::Connections,
        ];
        for event in client {
            assert!(event.is_client(), "{event:?}");
        }
        assert!(!Event::Notice.is_client());
        assert!(!Event::Refused.is_client());
    }

    #[test]
    fn a_link_local_peer_keeps_its_zone() {
        use std::net::SocketAddrV6;
        let ip = "fe80::1".parse().unwrap();
        // Interface 1 is the loopback, `lo`.
        let scoped = SocketAddr::V6(SocketAddrV6::new(ip, 80, 0, 1));
        assert_eq!(peer_label(scoped), "[fe80::1%lo]:80");
        assert_eq!(scoped_ip(scoped).as_deref(), Some("fe80::1%lo"));
        let plain = SocketAddr::V6(SocketAddrV6::new(ip, 80, 0, 0));
        assert_eq!(peer_label(plain), "[fe80::1]:80");
        assert_eq!(scoped_ip(plain), None);
        let gone = SocketAddr::V6(SocketAddrV6::new(ip, 80, 0, 999_999));
        assert_eq!(peer_label(gone), "[fe80::1%999999]:80");
    }

    #[test]
    fn connection_events_say_who_and_what() {
        let mut buf = String::new();
        let e = Entry::disconnected(
            &mut buf,
            "192.0.2.7:51234",
            peer(),
            "closed by the client",
            Totals {
                bytes: 10,
                lines: 2,
                duration: Duration::from_millis(1500),
            },
        );
        assert_eq!(
            e.message,
            "192.0.2.7:51234: disconnected (closed by the client) after 1.5 s: 10 bytes, 2 lines"
        );
        assert_eq!(fields_of(&e)[2], ("DURATION_MS", Value::Number(1500)));
        let e = Entry::refused(
            &mut buf,
            "[::1]:80".parse().unwrap(),
            "not in the allow list",
        );
        assert_eq!(e.message, "[::1]:80: refused: not in the allow list");
        assert_eq!(e.peer.unwrap().connection_id, 0);
        assert_eq!(e.priority, priority::WARNING);
        let e = Entry::refused_summary(&mut buf, 12, Duration::from_secs(10));
        assert_eq!(
            e.message,
            "refused 12 more connections in the last 10 s (not logged one by one)"
        );
        let e = Entry::dropped(&mut buf, "p", peer(), 3, (10, 20), 5);
        assert_eq!(
            e.message,
            "p: dropped 3 lines over the limit of 10 lines/s (burst 20); 5 dropped in all"
        );
        assert_eq!(fields_of(&e), [("DROPPED_LINES", Value::Number(3))]);
    }
}
