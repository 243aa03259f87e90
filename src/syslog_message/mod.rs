//! The header of one syslog message (one frame of `framing = "syslog"`), and the journal
//! fields it becomes.
//!
//! [`parse`] reads a frame's bytes into a [`Header`] that borrows from them: no allocation,
//! one pass, each byte looked at a bounded number of times. It accepts what real senders
//! produce:
//!
//! - **RFC 5424**: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [MSG]`,
//!   each header field `-` (none) or printable ASCII; a UTF-8 BOM at the start of MSG is
//!   dropped, MSG is otherwise kept as sent. STRUCTURED-DATA is checked element by element
//!   (`[id name="value" …]…`), with `\"`, `\\` and `\]` escapes and `]` inside a quoted
//!   value handled. util-linux `logger` (its default for remote logging) and rsyslog's
//!   `RSYSLOG_SyslogProtocol23Format` send this.
//! - **RFC 3164** (BSD syslog), as rsyslog's parser reads it:
//!   `<PRI>TIMESTAMP [HOSTNAME] [TAG[\[PID\]][:]] MSG`. TIMESTAMP is `Mmm dd hh:mm:ss`
//!   (day space-padded or not, optional `.fraction`, optional year before the time) or an
//!   RFC 3339 timestamp (rsyslog's `RSYSLOG_ForwardFormat`). HOSTNAME is present when the
//!   next word is made of letters, digits, `.`, `_`, `-` (or is an IPv6 address), ends in a
//!   letter or digit and is followed by a space: `nas[42]:` and `tag:` are tags, not hosts.
//!   TAG runs to `:`, `[` or a space (rsyslog's rule; its own forwarding writes `host app msg`
//!   without a colon for messages that came in as RFC 5424) and may be up to
//!   [`MAX_FIELD`] bytes, not just RFC 3164's 32; a word running to the end of the frame is
//!   message, not tag. One space after the tag is the separator; MSG is the rest.
//! - **A TAG right after `<PRI>`**, no TIMESTAMP and no HOSTNAME: `<PRI>TAG[\[PID\]]: MSG`, as
//!   Python's `logging.handlers.SysLogHandler` sends it. rsyslog reads the same bytes as TAG
//!   `name[pid]:` (program `name`, pid `pid`) and no hostname; here the TAG counts only if
//!   `: ` (or `:` at the end) ends it and the text does not start with `{` or `[`
//!   ([`Format::Rfc3164`] without a timestamp).
//! - A valid `<PRI>` followed by none of these: [`Format::PriOnly`], PRI used, the rest is MSG.
//! - No valid `<PRI>` (`<` 1–3 digits `>`, at most 191): [`Format::Unparsed`], the whole
//!   frame is MSG and the caller logs it at the line priority with `SYSLOG_PARSE_ERROR`.
//!
//! Header fields longer than their bound ([`MAX_TIMESTAMP`], [`MAX_HOSTNAME`], [`MAX_FIELD`])
//! make the header not recognised (the frame falls to `PriOnly`: nothing is lost), which
//! bounds what a continuation piece must remember ([`Sticky`]).
//!
//! This module owns the [`Header`] and [`parse`], which reads `<PRI>` and dispatches to
//! [`rfc5424`] and [`rfc3164`], one file per header format. [`Sticky`] ([`sticky`]) keeps
//! what the pieces after the first of a long message need from its header. [`JournalFields`]
//! ([`journal`]) maps a header to journal fields (escaped with [`crate::escape`]), and
//! [`write_message`] writes the MESSAGE text.

use std::fmt;

mod journal;
mod rfc3164;
mod rfc5424;
mod sticky;

pub use journal::{continuation_extra, field, write_message, JournalFields};
pub use sticky::Sticky;

use rfc3164::{parse_3164, tag_after_pri};
use rfc5424::parse_5424;

/// The longest TIMESTAMP accepted (RFC 5424's longest is 32 bytes).
pub const MAX_TIMESTAMP: usize = 64;
/// The longest HOSTNAME accepted (RFC 5424's bound).
pub const MAX_HOSTNAME: usize = 255;
/// The longest APP-NAME, TAG, PROCID, pid or MSGID accepted. RFC 5424 allows 48 for APP-NAME,
/// 128 for PROCID and 32 for MSGID; RFC 3164's TAG is "32 characters" by convention only.
pub const MAX_FIELD: usize = 128;

/// Which header a frame had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Rfc5424,
    /// An RFC 3164 header: TIMESTAMP, perhaps HOSTNAME, perhaps TAG; or only a TAG right
    /// after `<PRI>` (Python's SysLogHandler).
    Rfc3164,
    /// A valid `<PRI>`, but no RFC 5424 or RFC 3164 header after it: the rest is the message.
    PriOnly,
    /// No valid `<PRI>` at the start: the whole frame is the message.
    Unparsed,
}

/// The `<PRI>` of a message: facility (0–23) and severity (0–7, journald's PRIORITY).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pri {
    pub facility: u8,
    pub severity: u8,
}

/// One message's header, borrowing from the frame. Fields the message does not have (or
/// has as RFC 5424's `-`) are `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    pub format: Format,
    /// `None` only for [`Format::Unparsed`].
    pub pri: Option<Pri>,
    /// As sent (no conversion: `2026-11-27T16:09:47.369342+00:00`, `Nov 27 16:09:47`).
    pub timestamp: Option<&'a [u8]>,
    /// The sender's claim; the peer address is what TCP verified.
    pub hostname: Option<&'a [u8]>,
    /// RFC 5424 APP-NAME or RFC 3164 TAG (without `[pid]` and `:`).
    pub app_name: Option<&'a [u8]>,
    /// RFC 5424 PROCID or the RFC 3164 `[pid]`; any printable text, not always a number.
    pub procid: Option<&'a [u8]>,
    /// RFC 5424 MSGID.
    pub msgid: Option<&'a [u8]>,
    /// RFC 5424 STRUCTURED-DATA, all elements as sent (`[a x="1"][b]`).
    pub structured_data: Option<&'a [u8]>,
    /// The message text (RFC 5424 MSG without a BOM; for `Unparsed` the whole frame).
    pub message: &'a [u8],
}

impl<'a> Header<'a> {
    pub(super) fn unparsed(frame: &'a [u8]) -> Header<'a> {
        Header {
            format: Format::Unparsed,
            pri: None,
            timestamp: None,
            hostname: None,
            app_name: None,
            procid: None,
            msgid: None,
            structured_data: None,
            message: frame,
        }
    }

    /// Why the header was not recognised, as the `SYSLOG_PARSE_ERROR` value; `None` for an
    /// RFC 5424 or RFC 3164 header.
    pub fn parse_error(&self) -> Option<&'static str> {
        match self.format {
            Format::Rfc5424 | Format::Rfc3164 => None,
            Format::PriOnly => Some("no RFC 5424 or RFC 3164 header after <PRI>"),
            Format::Unparsed => Some("no valid <PRI> at the start"),
        }
    }

    /// The journald PRIORITY: the severity, or `line_priority` (what plain lines are logged
    /// at) for an unparsed frame.
    pub fn priority(&self, line_priority: u8) -> u8 {
        self.pri.map_or(line_priority, |p| p.severity)
    }
}

/// Parses one frame (its trailer already removed by the framer).
pub fn parse(frame: &[u8]) -> Header<'_> {
    let Some((pri, rest)) = parse_pri(frame) else {
        return Header::unparsed(frame);
    };
    let mut header = Header {
        format: Format::PriOnly,
        pri: Some(pri),
        ..Header::unparsed(rest)
    };
    if let Some(rest5424) = rest.strip_prefix(b"1 ") {
        if parse_5424(rest5424, &mut header).is_some() {
            header.format = Format::Rfc5424;
            return header;
        }
    } else if parse_3164(rest, &mut header).is_some() {
        header.format = Format::Rfc3164;
        return header;
    } else if let Some(tag) = tag_after_pri(rest) {
        header.format = Format::Rfc3164;
        header.app_name = Some(tag.name);
        header.procid = tag.pid;
        header.message = tag.message;
        return header;
    }
    // Not recognised: forget what a failed attempt filled in.
    Header {
        format: Format::PriOnly,
        pri: Some(pri),
        ..Header::unparsed(rest)
    }
}

/// `<` 1–3 digits `>`, at most 191 (leading zeros accepted, as rsyslog does).
fn parse_pri(frame: &[u8]) -> Option<(Pri, &[u8])> {
    let rest = frame.strip_prefix(b"<")?;
    let digits = rest
        .iter()
        .take(4)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if !(1..=3).contains(&digits) || rest.get(digits) != Some(&b'>') {
        return None;
    }
    let value = rest[..digits]
        .iter()
        .fold(0u16, |v, &d| v * 10 + u16::from(d - b'0'));
    if value > 191 {
        return None;
    }
    let pri = Pri {
        facility: (value / 8) as u8,
        severity: (value % 8) as u8,
    };
    Some((pri, &rest[digits + 1..]))
}

/// A byte RFC 5424 allows in a header field (PRINTUSASCII).
pub(super) fn printable(b: u8) -> bool {
    (33..=126).contains(&b)
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Rfc5424 => "RFC 5424",
            Format::Rfc3164 => "RFC 3164",
            Format::PriOnly => "PRI only",
            Format::Unparsed => "unparsed",
        })
    }
}

#[cfg(test)]
mod tests;
