//! The journal fields of a syslog message's entry and its MESSAGE text. Owns the field names
//! ([`field`]), [`JournalFields`], [`write_message`] and the room a long message's later
//! pieces need for the host ([`continuation_extra`]).

use super::{parse, Header};
use crate::escape::{escape_into, escape_structured_data_into, escaped_len};

/// Journal field names of a syslog message's entry, besides MESSAGE, PRIORITY and the
/// fields every line has (REMOTE_ADDR, REMOTE_PORT, CONNECTION_ID, LISTENER_EVENT, …).
pub mod field {
    /// The facility number, 0–23, as journald records it for local syslog messages.
    pub const FACILITY: &str = "SYSLOG_FACILITY";
    /// RFC 5424 APP-NAME or RFC 3164 TAG (`journalctl -t NAME` finds it).
    pub const IDENTIFIER: &str = "SYSLOG_IDENTIFIER";
    /// RFC 5424 PROCID or RFC 3164 `[pid]`: the sender's process, as sent.
    pub const PID: &str = "SYSLOG_PID";
    /// The HOSTNAME the sender claims (the verified peer is REMOTE_ADDR).
    pub const HOSTNAME: &str = "SYSLOG_HOSTNAME";
    /// The TIMESTAMP as sent (journald's own field of that name means the same).
    pub const TIMESTAMP: &str = "SYSLOG_TIMESTAMP";
    /// RFC 5424 MSGID.
    pub const MSGID: &str = "SYSLOG_MSGID";
    /// RFC 5424 STRUCTURED-DATA, all elements, stored so that it reads back as the same
    /// parameters ([`crate::escape::escape_structured_data_into`]).
    pub const STRUCTURED_DATA: &str = "SYSLOG_STRUCTURED_DATA";
    /// Why the header was not recognised ([`super::Header::parse_error`]); absent when it was.
    pub const PARSE_ERROR: &str = "SYSLOG_PARSE_ERROR";
}

/// The journal fields of one message, escaped ([`crate::escape`]: no control character,
/// invalid UTF-8 as `\xNN`; STRUCTURED-DATA keeps its own escapes), so a value is always text
/// without a newline. Reused from
/// message to message (the values live in one `String`), so mapping allocates nothing once
/// it has grown to the largest message.
#[derive(Debug, Default)]
pub struct JournalFields {
    text: String,
    /// Name, and where the value starts and ends in `text`.
    fields: [(&'static str, usize, usize); JournalFields::MAX],
    len: usize,
}

impl JournalFields {
    /// The most fields one message gives.
    pub const MAX: usize = 8;

    pub fn new() -> JournalFields {
        JournalFields::default()
    }

    /// Replaces the fields with those of `header` (of a whole message, a first piece, or a
    /// continuation piece from [`Sticky::continuation`]).
    pub fn set(&mut self, header: &Header<'_>) {
        self.set_prefixed(header, "");
    }

    /// [`JournalFields::set`], with `identifier_prefix` (plain text, checked by the
    /// configuration) before the SYSLOG_IDENTIFIER the message names: `remote-sshd`.
    pub fn set_prefixed(&mut self, header: &Header<'_>, identifier_prefix: &str) {
        self.text.clear();
        self.len = 0;
        if let Some(pri) = header.pri {
            // 0..=23: one or two digits, written here (no allocation, no formatter).
            let f = pri.facility;
            let digits = [b'0' + f / 10, b'0' + f % 10];
            let facility = &digits[usize::from(f < 10)..];
            self.push_str(
                field::FACILITY,
                std::str::from_utf8(facility).expect("digits"),
            );
        }
        let values = [
            (field::IDENTIFIER, header.app_name),
            (field::PID, header.procid),
            (field::HOSTNAME, header.hostname),
            (field::TIMESTAMP, header.timestamp),
            (field::MSGID, header.msgid),
            (field::STRUCTURED_DATA, header.structured_data),
        ];
        for (name, value) in values {
            if let Some(value) = value {
                let start = self.text.len();
                if name == field::IDENTIFIER {
                    self.text.push_str(identifier_prefix);
                }
                if name == field::STRUCTURED_DATA {
                    escape_structured_data_into(&mut self.text, value);
                } else {
                    escape_into(&mut self.text, value);
                }
                self.fields[self.len] = (name, start, self.text.len());
                self.len += 1;
            }
        }
        if let Some(error) = header.parse_error() {
            self.push_str(field::PARSE_ERROR, error);
        }
    }

    fn push_str(&mut self, name: &'static str, value: &str) {
        let start = self.text.len();
        self.text.push_str(value);
        self.fields[self.len] = (name, start, self.text.len());
        self.len += 1;
    }

    /// The fields, in a fixed order: SYSLOG_FACILITY, SYSLOG_IDENTIFIER, SYSLOG_PID,
    /// SYSLOG_HOSTNAME, SYSLOG_TIMESTAMP, SYSLOG_MSGID, SYSLOG_STRUCTURED_DATA,
    /// SYSLOG_PARSE_ERROR, each only if the message has it.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> + '_ {
        self.fields[..self.len]
            .iter()
            .map(|&(name, start, end)| (name, &self.text[start..end]))
    }

    /// The value of one field, if the message has it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter().find(|&(n, _)| n == name).map(|(_, v)| v)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Appends the MESSAGE of a syslog entry to `out`: `LABEL HOSTNAME: MSG`, or `LABEL: MSG`
/// when the message names no host (RFC 5424 `-`, RFC 3164 without one, unparsed frames).
/// `label` is the peer as line entries show it (`192.0.2.7:51234`, `[2001:db8::1]:51234`);
/// the hostname and message are escaped.
///
/// Why this form: the peer address comes first, as for lines, because TCP verified it; the
/// HOSTNAME is the sender's claim, but it is what names the original host when a relay
/// (another rsyslog) forwards for many hosts, so it follows. The identifier is not repeated:
/// journalctl's default view already prints SYSLOG_IDENTIFIER before the message.
pub fn write_message(out: &mut String, label: &str, header: &Header<'_>) {
    out.push_str(label);
    if let Some(host) = header.hostname {
        out.push(' ');
        escape_into(out, host);
    }
    out.push_str(": ");
    escape_into(out, header.message);
}

/// How many bytes longer than a line's the MESSAGE of the pieces after the first of a long
/// message is, given that first piece: those pieces carry the first one's HOSTNAME
/// ([`Sticky`]), written as ` HOST` after the label, while the piece's own bytes hold no
/// header. (The first piece, and a whole message, are never longer than a line's MESSAGE of
/// the same bytes: the header they drop is longer than the ` HOST` they add.) The framer
/// makes those pieces shorter by as much, so that every MESSAGE fits `max_line_length`.
pub fn continuation_extra(first_piece: &[u8]) -> usize {
    parse(first_piece)
        .hostname
        .map_or(0, |host| 1 + escaped_len(host))
}

#[cfg(test)]
mod tests;
