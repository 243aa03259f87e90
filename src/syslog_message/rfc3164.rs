//! RFC 3164 (BSD syslog) headers, as rsyslog's parser reads them:
//! `<PRI>TIMESTAMP [HOSTNAME] [TAG[\[PID\]][:]] MSG`, and a TAG right after `<PRI>` as Python's
//! `SysLogHandler` sends it. Owns the timestamp, hostname and tag rules.

use super::{printable, Header, MAX_FIELD, MAX_HOSTNAME};

/// The header after `<PRI>`; fills `header` and returns `Some` if it is RFC 3164.
pub(super) fn parse_3164<'a>(data: &'a [u8], header: &mut Header<'a>) -> Option<()> {
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
pub(super) struct Tag<'a> {
    pub(super) name: &'a [u8],
    pub(super) pid: Option<&'a [u8]>,
    /// A `:` ended it (after the name or the `[pid]`).
    colon: bool,
    /// What follows, less one space.
    pub(super) message: &'a [u8],
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
pub(super) fn tag_after_pri(rest: &[u8]) -> Option<Tag<'_>> {
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
