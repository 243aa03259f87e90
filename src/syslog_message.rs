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
//! [`JournalFields`] maps a header to journal fields (escaped with [`crate::escape`]), and
//! [`write_message`] writes the MESSAGE text.

use std::fmt;

use crate::escape::{escape_into, escape_structured_data_into, escaped_len};

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
    fn unparsed(frame: &'a [u8]) -> Header<'a> {
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
fn printable(b: u8) -> bool {
    (33..=126).contains(&b)
}

/// An RFC 5424 header field of 1..=`max` printable bytes and the space after it; `-` is
/// `None`.
fn field_5424(data: &[u8], max: usize) -> Option<(Option<&[u8]>, &[u8])> {
    let len = data
        .iter()
        .take(max + 1)
        .take_while(|&&b| printable(b))
        .count();
    if len == 0 || len > max || data.get(len) != Some(&b' ') {
        return None;
    }
    let value = &data[..len];
    Some(((value != b"-").then_some(value), &data[len + 1..]))
}

/// The header after `<PRI>1 `; fills `header` and returns `Some` if it is RFC 5424.
fn parse_5424<'a>(data: &'a [u8], header: &mut Header<'a>) -> Option<()> {
    let (timestamp, data) = field_5424(data, MAX_TIMESTAMP)?;
    let (hostname, data) = field_5424(data, MAX_HOSTNAME)?;
    let (app_name, data) = field_5424(data, MAX_FIELD)?;
    let (procid, data) = field_5424(data, MAX_FIELD)?;
    let (msgid, data) = field_5424(data, MAX_FIELD)?;
    let sd_len = structured_data_len(data)?;
    let (sd, rest) = data.split_at(sd_len);
    let message = match rest {
        [] => rest,
        [b' ', msg @ ..] => msg,
        _ => return None,
    };
    header.timestamp = timestamp;
    header.hostname = hostname;
    header.app_name = app_name;
    header.procid = procid;
    header.msgid = msgid;
    header.structured_data = (sd != b"-").then_some(sd);
    header.message = message.strip_prefix(b"\xef\xbb\xbf").unwrap_or(message);
    Some(())
}

/// A byte of an SD-NAME (SD-ID or PARAM-NAME).
fn sd_name_byte(b: u8) -> bool {
    printable(b) && !matches!(b, b'=' | b']' | b'"')
}

/// The length of the STRUCTURED-DATA at the start of `data`: `-`, or one or more
/// `[SD-ID *(SP PARAM-NAME="PARAM-VALUE")]`. `None` if it is neither.
fn structured_data_len(data: &[u8]) -> Option<usize> {
    if data.first() == Some(&b'-') {
        return Some(1);
    }
    let name = |i: usize| {
        let n = data[i..].iter().take_while(|&&b| sd_name_byte(b)).count();
        (1..=32).contains(&n).then_some(i + n)
    };
    let mut i = 0;
    while data.get(i) == Some(&b'[') {
        i = name(i + 1)?;
        loop {
            match data.get(i)? {
                b']' => {
                    i += 1;
                    break;
                }
                b' ' => {
                    i = name(i + 1)?;
                    if data.get(i..i + 2)? != b"=\"" {
                        return None;
                    }
                    i += 2;
                    // PARAM-VALUE: any bytes up to an unescaped quote; `\` escapes the next.
                    loop {
                        match data.get(i)? {
                            b'"' => break,
                            b'\\' => i += 2,
                            _ => i += 1,
                        }
                    }
                    i += 1;
                }
                _ => return None,
            }
        }
    }
    (i > 0).then_some(i)
}

/// The header after `<PRI>`; fills `header` and returns `Some` if it is RFC 3164.
fn parse_3164<'a>(data: &'a [u8], header: &mut Header<'a>) -> Option<()> {
    let ts_len = timestamp_3164_len(data).or_else(|| timestamp_3339_len(data))?;
    let (timestamp, mut rest) = data.split_at(ts_len);
    match rest {
        [] => {}
        [b' ', more @ ..] => rest = more,
        _ => return None,
    }
    header.timestamp = Some(timestamp);
    let host_len = hostname_len(rest);
    if host_len > 0 {
        header.hostname = Some(&rest[..host_len]);
        rest = &rest[host_len + 1..];
    }
    header.message = rest;
    // TAG, then `[pid]`, then `:`, then one space; without them, all of it is the message.
    if let Some(tag) = tag_3164(rest) {
        header.app_name = Some(tag.name);
        header.procid = tag.pid;
        header.message = tag.message;
    }
    Some(())
}

/// An RFC 3164 TAG, as [`tag_3164`] reads it.
struct Tag<'a> {
    name: &'a [u8],
    pid: Option<&'a [u8]>,
    /// A `:` ended it (after the name or the `[pid]`).
    colon: bool,
    /// What follows, less one space.
    message: &'a [u8],
}

/// The TAG at the start of `rest`: a name (up to `:`, `[` or a space, rsyslog's rule; at
/// most [`MAX_FIELD`] bytes), an optional `[pid]`, an optional `:`, then one space, which is
/// not message. `None` if `rest` does not start with one (a lone word running to the end is
/// a message, not a tag; so is a word with a control byte or a bad `[pid]`).
fn tag_3164(rest: &[u8]) -> Option<Tag<'_>> {
    let name_len = rest
        .iter()
        .take(MAX_FIELD + 1)
        .take_while(|&&b| tag_byte(b))
        .count();
    if name_len == 0 || name_len > MAX_FIELD {
        return None;
    }
    let (name, after) = rest.split_at(name_len);
    let (pid, colon, after) = match after {
        [b'[', more @ ..] => {
            let pid_len = more
                .iter()
                .take(MAX_FIELD + 1)
                .take_while(|&&b| printable(b) && b != b']')
                .count();
            if pid_len == 0 || pid_len > MAX_FIELD || more.get(pid_len) != Some(&b']') {
                return None;
            }
            let after = &more[pid_len + 1..];
            match after.strip_prefix(b":") {
                Some(after) => (Some(&more[..pid_len]), true, after),
                None => (Some(&more[..pid_len]), false, after),
            }
        }
        [b':', more @ ..] => (None, true, more),
        // `host app msg`: a tag ended by a space (rsyslog's rule).
        [b' ', ..] => (None, false, after),
        _ => return None,
    };
    Some(Tag {
        name,
        pid,
        colon,
        message: after.strip_prefix(b" ").unwrap_or(after),
    })
}

/// The TAG of a message with neither an RFC 5424 version nor an RFC 3164 TIMESTAMP after its
/// `<PRI>`: what Python's `logging.handlers.SysLogHandler` sends (`<11>name[pid]: text`, no
/// timestamp, no hostname). rsyslog reads a TAG there too; here, without a timestamp to say
/// that a header follows, the TAG counts only if a `:` ends it and a space or the end of the
/// message follows (`<14>http://x` and `<14>ERROR:root:x` are not tags), and not in text that
/// starts with `{` or `[` (JSON; rsyslog calls that headerless too). No hostname is read.
fn tag_after_pri(rest: &[u8]) -> Option<Tag<'_>> {
    if matches!(rest.first(), Some(b'{' | b'[')) {
        return None;
    }
    let tag = tag_3164(rest).filter(|t| t.colon)?;
    // The `: ` separator: one space, already left out of the message, or nothing at all.
    let separated =
        tag.message.is_empty() || rest[..rest.len() - tag.message.len()].ends_with(b": ");
    separated.then_some(tag)
}

/// A byte of an RFC 3164 TAG: anything printable or non-ASCII but the tag's terminators.
fn tag_byte(b: u8) -> bool {
    (printable(b) || b >= 0x80) && !matches!(b, b':' | b'[')
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// The length of `n` ASCII digits at `data[i..]`, if they are there.
fn digits_at(data: &[u8], i: usize, n: usize) -> Option<usize> {
    let d = data.get(i..i + n)?;
    d.iter().all(u8::is_ascii_digit).then_some(i + n)
}

/// `Mmm dd hh:mm:ss` (day `dd`, ` d` or `d`; optional `yyyy ` before the time, optional
/// `.fraction` after it): the length, if `data` starts with one.
fn timestamp_3164_len(data: &[u8]) -> Option<usize> {
    let month = data.get(..3)?;
    if !MONTHS.iter().any(|m| month.eq_ignore_ascii_case(&m[..])) || data.get(3) != Some(&b' ') {
        return None;
    }
    let mut i = 4;
    if data.get(i) == Some(&b' ') {
        i += 1; // a space-padded day
    }
    let day = data[i..]
        .iter()
        .take(3)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if !(1..=2).contains(&day) || data.get(i + day) != Some(&b' ') {
        return None;
    }
    i += day + 1;
    if let Some(end) = digits_at(data, i, 4) {
        if data.get(end) == Some(&b' ') {
            i = end + 1; // a year: `Nov 27 2026 16:09:47`
        }
    }
    i = time_len(data, i)?;
    Some(i)
}

/// `hh:mm:ss` with an optional `.fraction` at `data[i..]`: where it ends.
fn time_len(data: &[u8], i: usize) -> Option<usize> {
    let mut i = digits_at(data, i, 2)?;
    for _ in 0..2 {
        if data.get(i) != Some(&b':') {
            return None;
        }
        i = digits_at(data, i + 1, 2)?;
    }
    if data.get(i) == Some(&b'.') {
        let frac = data[i + 1..]
            .iter()
            .take(10)
            .take_while(|b| b.is_ascii_digit())
            .count();
        if (1..=9).contains(&frac) {
            i += 1 + frac;
        }
    }
    Some(i)
}

/// An RFC 3339 timestamp `yyyy-mm-ddThh:mm:ss[.frac](Z|±hh:mm)` at the start: its length.
fn timestamp_3339_len(data: &[u8]) -> Option<usize> {
    let mut i = digits_at(data, 0, 4)?;
    for sep in [b'-', b'-'] {
        if data.get(i) != Some(&sep) {
            return None;
        }
        i = digits_at(data, i + 1, 2)?;
    }
    if !matches!(data.get(i), Some(b'T' | b't')) {
        return None;
    }
    i = time_len(data, i + 1)?;
    match data.get(i)? {
        b'Z' | b'z' => Some(i + 1),
        b'+' | b'-' => {
            let h = digits_at(data, i + 1, 2)?;
            if data.get(h) != Some(&b':') {
                return None;
            }
            digits_at(data, h + 1, 2)
        }
        _ => None,
    }
}

/// The length of a HOSTNAME at the start of `rest` (followed by a space), or 0 if the first
/// word is not one: rsyslog's test (letters, digits, `.`, `_`, `-`, ending in a letter or
/// digit), plus IPv6 addresses.
fn hostname_len(rest: &[u8]) -> usize {
    let len = rest
        .iter()
        .take(MAX_HOSTNAME + 1)
        .take_while(|&&b| b != b' ')
        .count();
    if len == 0 || len > MAX_HOSTNAME || rest.get(len) != Some(&b' ') {
        return 0;
    }
    let word = &rest[..len];
    let name = word
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && word[len - 1].is_ascii_alphanumeric();
    let ipv6 = word
        .iter()
        .all(|&b| b.is_ascii_hexdigit() || matches!(b, b':' | b'.'))
        && word.iter().filter(|&&b| b == b':').count() >= 2;
    if name || ipv6 {
        len
    } else {
        0
    }
}

/// What the pieces after the first of a long message need from its header, owned: the
/// framer cuts a long message (LF-framed or octet-counted) into `[continued]` pieces, and
/// only the first one starts with the header. The caller keeps one `Sticky` per connection, fills it with
/// [`Sticky::remember`] from the first piece's header (part 1), and gets the header of
/// pieces 2..n from [`Sticky::continuation`], so they carry the same PRIORITY, facility,
/// identifier, pid, hostname, timestamp and MSGID (and parse error) as the first.
///
/// STRUCTURED-DATA is not kept (it can be as long as the message; the first piece has it).
/// Every kept field is bounded ([`MAX_TIMESTAMP`], [`MAX_HOSTNAME`], [`MAX_FIELD`]), so a
/// `Sticky` holds at most 703 bytes, in one buffer that is reused from message to message
/// and allocated only when a message is long enough to be cut.
#[derive(Debug, Clone)]
pub struct Sticky {
    format: Format,
    pri: Option<Pri>,
    /// timestamp, hostname, app_name, procid, msgid, one after the other.
    bytes: Vec<u8>,
    /// Where each field ends in `bytes`; `None` for a field the message does not have.
    ends: [Option<u16>; 5],
}

impl Default for Sticky {
    fn default() -> Self {
        Sticky::new()
    }
}

impl Sticky {
    pub fn new() -> Sticky {
        Sticky {
            format: Format::Unparsed,
            pri: None,
            bytes: Vec::new(),
            ends: [None; 5],
        }
    }

    /// What it holds, as bytes, to carry it to another process (the file descriptor store):
    /// format, PRI, where each field ends, the fields.
    pub fn save(&self) -> Vec<u8> {
        let mut out = vec![
            match self.format {
                Format::Rfc5424 => 0,
                Format::Rfc3164 => 1,
                Format::PriOnly => 2,
                Format::Unparsed => 3,
            },
            self.pri.map_or(u8::MAX, |p| p.facility),
            self.pri.map_or(u8::MAX, |p| p.severity),
        ];
        for end in self.ends {
            out.extend_from_slice(&end.unwrap_or(u16::MAX).to_le_bytes());
        }
        out.extend_from_slice(&self.bytes);
        out
    }

    /// A `Sticky` from [`Sticky::save`]'s bytes, checked (`None` if no `Sticky` can be that).
    pub fn restore(saved: &[u8]) -> Option<Sticky> {
        let (head, bytes) = saved.split_at_checked(13)?;
        let format = match head[0] {
            0 => Format::Rfc5424,
            1 => Format::Rfc3164,
            2 => Format::PriOnly,
            3 => Format::Unparsed,
            _ => return None,
        };
        let pri = match (head[1], head[2]) {
            (u8::MAX, u8::MAX) => None,
            (facility @ 0..=23, severity @ 0..=7) => Some(Pri { facility, severity }),
            _ => return None,
        };
        let mut ends = [None; 5];
        let mut last = 0;
        for (i, end) in ends.iter_mut().enumerate() {
            let e = u16::from_le_bytes([head[3 + 2 * i], head[4 + 2 * i]]);
            if e != u16::MAX {
                if e < last || usize::from(e) > bytes.len() {
                    return None;
                }
                last = e;
                *end = Some(e);
            }
        }
        Some(Sticky {
            format,
            pri,
            bytes: bytes.to_vec(),
            ends,
        })
    }

    /// Keeps what the continuation pieces of `header`'s message need.
    pub fn remember(&mut self, header: &Header<'_>) {
        self.format = header.format;
        self.pri = header.pri;
        self.bytes.clear();
        let fields = [
            header.timestamp,
            header.hostname,
            header.app_name,
            header.procid,
            header.msgid,
        ];
        for (end, field) in self.ends.iter_mut().zip(fields) {
            *end = field.map(|f| {
                self.bytes.extend_from_slice(f);
                self.bytes.len() as u16
            });
        }
    }

    /// The header of a continuation piece whose bytes are `message`.
    pub fn continuation<'a>(&'a self, message: &'a [u8]) -> Header<'a> {
        let mut fields = [None; 5];
        let mut start = 0;
        for (field, end) in fields.iter_mut().zip(self.ends) {
            if let Some(end) = end {
                let end = usize::from(end);
                *field = Some(&self.bytes[start..end]);
                start = end;
            }
        }
        let [timestamp, hostname, app_name, procid, msgid] = fields;
        Header {
            format: self.format,
            pri: self.pri,
            timestamp,
            hostname,
            app_name,
            procid,
            msgid,
            structured_data: None,
            message,
        }
    }
}

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
mod tests {
    use super::*;

    /// A header's fields as text, for compact expectations:
    /// (format, facility.severity, timestamp, hostname, app, procid, msgid, sd, message).
    type Fields = (Format, Option<(u8, u8)>, [Option<String>; 6], String);

    fn fields(frame: &[u8]) -> Fields {
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
    ) -> Fields {
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

    const TQ: &str = r#"[timeQuality tzKnown="1" isSynced="0"]"#;

    #[test]
    fn logger_rfc5424_as_captured() {
        use Format::Rfc5424;
        assert_eq!(
            fields(
                format!("<13>1 2026-11-27T16:09:47.369342+00:00 vm root - - {TQ} hello").as_bytes()
            ),
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
                format!(
                    "<131>1 2026-11-27T16:09:48.908392+00:00 vm nas 4242 - {TQ} disk failing oc"
                )
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
                format!(
                    "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 {sd2}"
                )
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

    fn journal_fields(frame: &[u8]) -> Vec<(&'static str, String)> {
        let mut f = JournalFields::new();
        f.set(&parse(frame));
        f.iter().map(|(k, v)| (k, v.to_string())).collect()
    }

    #[test]
    fn fields_are_named_and_escaped() {
        assert_eq!(
            journal_fields(
                format!("<131>1 2026-11-27T16:09:48.908392+00:00 vm nas 4242 ID9 {TQ} disk")
                    .as_bytes()
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
}
