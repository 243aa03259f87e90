//! RFC 5424 headers: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [MSG]`.
//! Owns reading the header fields and checking STRUCTURED-DATA element by element.

use super::{printable, Header, MAX_FIELD, MAX_HOSTNAME, MAX_TIMESTAMP};

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
pub(super) fn parse_5424<'a>(data: &'a [u8], header: &mut Header<'a>) -> Option<()> {
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
