//! journald's native protocol: an entry as `KEY=value\n` fields (the length-prefixed binary
//! form for a value holding a newline), `MESSAGE` first. Encoding allocates nothing once the
//! output buffer has grown: an entry is written per line a client sends.
//!
//! **What journald stores.** journald drops an entry it cannot take without a word to the
//! sender, so every entry is built within its limits (systemd's `journal-def.h` and
//! `journald-native.c`), whatever a client sends:
//!
//! - at most [`FIELDS_MAX`] fields (`ENTRY_FIELD_COUNT_MAX`, 1,024; systemd 252 counts
//!   before each field and takes 1,025). The daemon's own fields are at most 8 and those of
//!   [`crate::entry::Fields`] (a fixed array); a TLS connection's identity fields, which a
//!   client certificate chooses, are bounded where they are made (`tls.rs`: 16 names of each
//!   kind, then a count) and here again, the one place that sees the whole entry: a field
//!   that would take the entry over a limit is left out, and `TLS_FIELDS_OMITTED` counts it;
//! - at most [`ENTRY_BYTES_MAX`] bytes (`ENTRY_SIZE_UNPRIV_MAX`, 32 MiB, for an entry passed
//!   by an unprivileged sender, as the unit's `DynamicUser=` is, in recent systemd; 252 took
//!   64 MiB here). The largest entry the rest can make: a MESSAGE of `max_line_length` (at
//!   most 4 MiB) and STRUCTURED-DATA of at most 4 × as many bytes (each byte of a piece
//!   escaped as `\xNN` at worst), with bounded header fields: about 20 MiB, below it (the
//!   worst case is a test here);
//! - a field value of at most 768 MiB (`DATA_SIZE_MAX`): below the entry's bound;
//! - field names of `A`–`Z`, `0`–`9`, `_`, at most 64, not starting with `_` or a digit
//!   (`journal_field_valid`; another is dropped): the daemon's names are constants.

use std::borrow::Cow;
use std::io::Write;
use std::net::IpAddr;

use crate::entry::{self, Entry, Peer, Value};
use crate::sink::decimal_bytes;

/// The most fields journald stores in an entry (`ENTRY_FIELD_COUNT_MAX`).
pub const FIELDS_MAX: usize = 1024;

/// The largest entry recent journald takes from an unprivileged sender
/// (`ENTRY_SIZE_UNPRIV_MAX`).
pub const ENTRY_BYTES_MAX: usize = 32 << 20;

/// The bytes `TLS_FIELDS_OMITTED=N\n` may take.
const OMITTED_ROOM: usize = "TLS_FIELDS_OMITTED=".len() + 20 + 1;

/// Appends one field: `KEY=value\n`, or the length-prefixed binary form when the value holds
/// a newline.
pub fn encode_field(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    out.extend_from_slice(key.as_bytes());
    if value.contains(&b'\n') {
        out.push(b'\n');
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        out.push(b'=');
    }
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// Appends `KEY=value\n` for a value that cannot hold a newline (a number, a constant).
fn encode_plain(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    debug_assert!(!value.contains(&b'\n'));
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// The daemon's own SYSLOG_IDENTIFIER and SYSLOG_FACILITY, as encoded.
const DAEMON_ORIGIN: &[u8] = b"SYSLOG_IDENTIFIER=tcp-listener\nSYSLOG_FACILITY=3\n";

/// Encodes a whole entry.
pub fn encode_entry(out: &mut Vec<u8>, entry: &Entry<'_>) {
    encode_entry_cached(out, entry, &mut PeerFields::default());
}

/// The encoded `REMOTE_ADDR`, `REMOTE_PORT` and `CONNECTION_ID` of the last peer: the lines
/// of one read all come from one client, so most entries reuse them as they are.
#[derive(Default)]
pub struct PeerFields {
    peer: Option<Peer>,
    encoded: Vec<u8>,
}

/// [`encode_entry`], with the peer's fields from `cache` when it is the same peer.
pub fn encode_entry_cached(out: &mut Vec<u8>, entry: &Entry<'_>, cache: &mut PeerFields) {
    let start = out.len();
    let mut num = [0; 20];
    encode_field(out, "MESSAGE", entry.message.as_bytes());
    encode_plain(
        out,
        "PRIORITY",
        decimal_bytes(&mut num, entry.priority.into()),
    );
    if entry.origin.is_daemon() {
        // Every entry but a remote syslog message's: constant bytes.
        out.extend_from_slice(DAEMON_ORIGIN);
    } else {
        let origin = entry.origin;
        encode_field(
            out,
            "SYSLOG_IDENTIFIER",
            origin.identifier.unwrap_or(entry::IDENTIFIER).as_bytes(),
        );
        let facility = origin.facility.unwrap_or(entry::FACILITY);
        encode_plain(
            out,
            "SYSLOG_FACILITY",
            decimal_bytes(&mut num, facility.into()),
        );
    }
    encode_plain(out, "LISTENER_EVENT", entry.event.as_str().as_bytes());
    if let Some(peer) = entry.peer {
        if cache.peer != Some(peer) {
            cache.encoded.clear();
            match crate::entry::scoped_ip(peer.addr) {
                Some(scoped) => encode_plain(&mut cache.encoded, "REMOTE_ADDR", scoped.as_bytes()),
                None => encode_ip(&mut cache.encoded, peer.addr.ip().to_canonical()),
            }
            encode_plain(
                &mut cache.encoded,
                "REMOTE_PORT",
                decimal_bytes(&mut num, peer.addr.port().into()),
            );
            encode_plain(
                &mut cache.encoded,
                "CONNECTION_ID",
                decimal_bytes(&mut num, peer.connection_id),
            );
            cache.peer = Some(peer);
        }
        out.extend_from_slice(&cache.encoded);
    }
    let mut fields = 5 + 3 * usize::from(entry.peer.is_some());
    for (key, value) in entry.fields.iter() {
        match value {
            Value::Text(text) => encode_field(out, key, text.as_bytes()),
            Value::Number(n) => encode_plain(out, key, decimal_bytes(&mut num, *n)),
        }
        fields += 1;
    }
    if let Some(tls) = entry.tls {
        // The fields a client certificate chose: each only if it leaves room within
        // journald's limits for itself and for the count of those left out.
        let mut omitted: u64 = 0;
        for (key, value) in &tls.fields {
            // The binary form's size, the larger: KEY\n, 8 bytes of length, value, \n.
            let size = key.len() + 1 + 8 + value.len() + 1;
            if fields + 2 > FIELDS_MAX || out.len() - start + size + OMITTED_ROOM > ENTRY_BYTES_MAX
            {
                omitted += 1;
                continue;
            }
            encode_field(out, key, value.as_bytes());
            fields += 1;
        }
        if omitted > 0 {
            encode_plain(out, "TLS_FIELDS_OMITTED", decimal_bytes(&mut num, omitted));
        }
    }
}

/// `REMOTE_ADDR=<ip>\n`, formatted in place: an entry per line must not cost an allocation.
fn encode_ip(out: &mut Vec<u8>, ip: IpAddr) {
    out.extend_from_slice(b"REMOTE_ADDR=");
    match ip {
        IpAddr::V4(v4) => {
            let mut num = [0; 20];
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                out.extend_from_slice(decimal_bytes(&mut num, octet.into()));
            }
        }
        // An address never holds a newline: the plain `KEY=value` form is right.
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
    out.push(b'\n');
}

/// The PRIORITY of an encoded entry.
pub fn priority_of(encoded: &[u8]) -> Option<u8> {
    let at = encoded
        .windows(b"\nPRIORITY=".len())
        .position(|w| w == b"\nPRIORITY=")?;
    let digit = *encoded.get(at + b"\nPRIORITY=".len())?;
    digit.is_ascii_digit().then(|| digit - b'0')
}

/// The MESSAGE of an encoded entry, for the stderr fallback.
pub fn message_of(encoded: &[u8]) -> Cow<'_, str> {
    if let Some(rest) = encoded.strip_prefix(b"MESSAGE=") {
        let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        return String::from_utf8_lossy(&rest[..end]);
    }
    if let Some(rest) = encoded.strip_prefix(b"MESSAGE\n") {
        if rest.len() >= 8 {
            let len = u64::from_le_bytes(rest[..8].try_into().expect("8 bytes")) as usize;
            return String::from_utf8_lossy(&rest[8..(8 + len).min(rest.len())]);
        }
    }
    String::from_utf8_lossy(encoded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{Author, Event, Fields};

    #[test]
    fn fields_use_the_binary_form_only_when_needed() {
        let mut out = Vec::new();
        encode_field(&mut out, "A", b"simple");
        encode_field(&mut out, "B", b"two\nlines");
        let mut want = b"A=simple\nB\n".to_vec();
        want.extend_from_slice(&9u64.to_le_bytes());
        want.extend_from_slice(b"two\nlines\n");
        assert_eq!(out, want);
    }

    #[test]
    fn a_line_entry_names_its_peer() {
        let entry = Entry {
            priority: 6,
            event: Event::Line,
            message: "192.0.2.7:51234: abcdefg!",
            peer: Some(Peer {
                addr: "[::ffff:192.0.2.7]:51234".parse().unwrap(),
                connection_id: 42,
            }),
            fields: Fields::new()
                .with("LINE_PART", Value::Number(2))
                .with("LINE_CONTINUED", Value::Text("1")),
            tls: None,
            origin: Author::DAEMON,
        };
        let mut out = Vec::new();
        encode_entry(&mut out, &entry);
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "MESSAGE=192.0.2.7:51234: abcdefg!\nPRIORITY=6\nSYSLOG_IDENTIFIER=tcp-listener\n\
             SYSLOG_FACILITY=3\nLISTENER_EVENT=line\nREMOTE_ADDR=192.0.2.7\nREMOTE_PORT=51234\n\
             CONNECTION_ID=42\nLINE_PART=2\nLINE_CONTINUED=1\n"
        );
        assert_eq!(message_of(&out), "192.0.2.7:51234: abcdefg!");
        assert_eq!(priority_of(&out), Some(6));
    }

    #[test]
    fn a_remote_origin_replaces_the_daemons_and_is_sent_once() {
        let encoded = |origin| {
            let mut out = Vec::new();
            encode_entry(
                &mut out,
                &Entry {
                    priority: 3,
                    event: Event::Line,
                    message: "m",
                    peer: None,
                    fields: Fields::new(),
                    tls: None,
                    origin,
                },
            );
            String::from_utf8(out).unwrap()
        };
        let fields = |text: &str| -> Vec<String> {
            text.lines()
                .filter(|l| l.starts_with("SYSLOG_"))
                .map(str::to_string)
                .collect()
        };
        assert_eq!(
            fields(&encoded(Author::DAEMON)),
            ["SYSLOG_IDENTIFIER=tcp-listener", "SYSLOG_FACILITY=3"]
        );
        let remote = Author {
            identifier: Some("nas"),
            facility: Some(16),
        };
        assert_eq!(
            fields(&encoded(remote)),
            ["SYSLOG_IDENTIFIER=nas", "SYSLOG_FACILITY=16"]
        );
        // What the message does not name stays the daemon's.
        let facility_only = Author {
            identifier: None,
            facility: Some(0),
        };
        assert_eq!(
            fields(&encoded(facility_only)),
            ["SYSLOG_IDENTIFIER=tcp-listener", "SYSLOG_FACILITY=0"]
        );
    }

    #[test]
    fn cached_peer_fields_follow_the_peer() {
        let peer = |addr: &str, id| {
            Some(Peer {
                addr: addr.parse().unwrap(),
                connection_id: id,
            })
        };
        let mut cache = PeerFields::default();
        for p in [
            peer("192.0.2.7:51234", 1),
            peer("192.0.2.7:51234", 1),
            peer("192.0.2.7:51235", 1),
            peer("192.0.2.7:51235", 2),
            None,
            peer("[2001:db8::1]:80", 3),
            peer("192.0.2.7:51234", 1),
        ] {
            let entry = Entry {
                priority: 6,
                event: Event::Line,
                message: "m",
                peer: p,
                fields: Fields::new(),
                tls: None,
                origin: Author::DAEMON,
            };
            let (mut plain, mut cached) = (Vec::new(), Vec::new());
            encode_entry(&mut plain, &entry);
            encode_entry_cached(&mut cached, &entry, &mut cache);
            assert_eq!(cached, plain, "{p:?}");
        }
    }

    #[test]
    fn addresses_are_encoded_in_place() {
        for ip in [
            "192.0.2.7",
            "0.0.0.0",
            "255.255.255.255",
            "2001:db8::1",
            "::1",
        ] {
            let mut out = Vec::new();
            encode_ip(&mut out, ip.parse().unwrap());
            assert_eq!(out, format!("REMOTE_ADDR={ip}\n").into_bytes());
        }
    }

    #[test]
    fn a_message_with_a_newline_is_read_back_from_the_binary_form() {
        let mut out = Vec::new();
        encode_entry(&mut out, &Entry::notice(6, "two\nlines"));
        assert_eq!(message_of(&out), "two\nlines");
    }

    /// The fields of an encoded entry, as journald reads them: (name, value length).
    fn parse_native(mut data: &[u8]) -> Vec<(String, usize)> {
        let mut fields = Vec::new();
        while !data.is_empty() {
            let end = data.iter().position(|&b| b == b'=' || b == b'\n').unwrap();
            let name = String::from_utf8(data[..end].to_vec()).unwrap();
            if data[end] == b'=' {
                let nl = data[end..].iter().position(|&b| b == b'\n').unwrap();
                fields.push((name, nl - 1));
                data = &data[end + nl + 1..];
            } else {
                let len = u64::from_le_bytes(data[end + 1..end + 9].try_into().unwrap()) as usize;
                assert_eq!(data[end + 9 + len], b'\n');
                fields.push((name, len));
                data = &data[end + 9 + len + 1..];
            }
        }
        fields
    }

    /// journald's `journal_field_valid` for a field a client may send.
    fn journald_takes_name(name: &str) -> bool {
        !name.is_empty()
            && name.len() <= 64
            && !name.starts_with(|c: char| c == '_' || c.is_ascii_digit())
            && name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    }

    /// The largest entry anything can make: a MESSAGE of the largest `max_line_length`,
    /// every further field (STRUCTURED-DATA of 4 × a piece of the largest line, the other
    /// header fields at their bound, escaped 4 ×), and a TLS identity of more fields and
    /// bytes than journald takes. It stays within journald's limits; what is left out of
    /// the identity is counted; the rest is whole.
    #[test]
    fn the_largest_entry_stays_within_what_journald_stores() {
        use crate::config::MAX_LINE_LENGTH_MAX;
        use crate::entry::{TlsFields, MAX_FIELDS};
        use crate::syslog_message::{MAX_FIELD, MAX_HOSTNAME};
        let message = "m".repeat(MAX_LINE_LENGTH_MAX);
        let sd = "\\x00".repeat(MAX_LINE_LENGTH_MAX + 2);
        let header = "h".repeat(4 * MAX_HOSTNAME.max(MAX_FIELD));
        let names = [
            "SYSLOG_STRUCTURED_DATA",
            "SYSLOG_HOSTNAME",
            "SYSLOG_PID",
            "SYSLOG_TIMESTAMP",
            "SYSLOG_MSGID",
            "SYSLOG_PARSE_ERROR",
            "LINE_CONTINUED",
            "LINE_PARTIAL",
            "LINE_CARRIED",
            "REDELIVERED",
            "REMOTE_PRIORITY",
            "TRANSPORT",
            "DATAGRAM_TRUNCATED",
        ];
        assert_eq!(names.len(), MAX_FIELDS);
        let mut fields = Fields::new();
        for (i, name) in names.iter().enumerate() {
            fields.push(name, Value::Text(if i == 0 { &sd } else { &header }));
        }
        let origin = Author {
            identifier: Some(&header),
            facility: Some(23),
        };
        // Many names (2,000 fields), then few but large ones (40 of 1 MiB).
        let many = TlsFields {
            fields: (0..2000)
                .map(|i| ("TLS_CLIENT_SAN", format!("DNS:n{i}.example.org")))
                .collect(),
            summary: String::new(),
        };
        let large = TlsFields {
            fields: (0..40)
                .map(|_| ("TLS_CLIENT_SUBJECT", "s".repeat(1 << 20)))
                .collect(),
            summary: String::new(),
        };
        for (tls, name) in [(&many, "many"), (&large, "large")] {
            let entry = Entry {
                priority: 3,
                event: Event::Line,
                message: &message,
                peer: Some(Peer {
                    addr: "[2001:db8::1]:65535".parse().unwrap(),
                    connection_id: u64::MAX,
                }),
                fields,
                tls: Some(tls),
                origin,
            };
            let mut out = Vec::new();
            encode_entry(&mut out, &entry);
            let parsed = parse_native(&out);
            println!(
                "{name}: {} fields, {} bytes ({:.1} MiB)",
                parsed.len(),
                out.len(),
                out.len() as f64 / f64::from(1 << 20)
            );
            assert!(
                parsed.len() <= FIELDS_MAX,
                "{name}: {} fields",
                parsed.len()
            );
            assert!(out.len() <= ENTRY_BYTES_MAX, "{name}: {} bytes", out.len());
            for (field, _) in &parsed {
                assert!(journald_takes_name(field), "{field}");
            }
            assert_eq!(parsed[0], ("MESSAGE".to_string(), message.len()));
            let sd_len = parsed
                .iter()
                .find(|(f, _)| f == "SYSLOG_STRUCTURED_DATA")
                .map(|(_, len)| *len);
            assert_eq!(sd_len, Some(sd.len()), "{name}");
            let kept = parsed
                .iter()
                .filter(|(f, _)| f.starts_with("TLS_CLIENT"))
                .count();
            let omitted = String::from_utf8_lossy(&out)
                .lines()
                .find_map(|l| l.strip_prefix("TLS_FIELDS_OMITTED="))
                .map(|n| n.parse::<usize>().unwrap())
                .unwrap_or(0);
            assert!(omitted > 0, "{name}: the identity is more than fits");
            assert_eq!(kept + omitted, tls.fields.len(), "{name}");
        }
        // An identity that fits is sent whole, without a count.
        let small = TlsFields {
            fields: vec![("TLS_VERSION", "TLSv1.3".into())],
            summary: String::new(),
        };
        let mut out = Vec::new();
        encode_entry(&mut out, &Entry::notice(6, "m").with_tls(Some(&small)));
        assert!(!String::from_utf8_lossy(&out).contains("OMITTED"));
    }
}
