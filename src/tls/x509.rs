//! Just enough of X.509 (DER) to say who a certificate names and until when it is valid: the
//! subject, its common names, the subject alternative names, and notAfter.
//!
//! Only certificates rustls has already parsed and (for a client) verified come here: the
//! client's, after its chain was checked against `client_ca`, and the daemon's own. The reader
//! is strict all the same: a length past the end, a long tag or an indefinite length is an
//! error (`None`), never a panic, and it reads nothing it does not need. Every text comes out
//! escaped (see `escape.rs`), so a certificate cannot put a control character in an entry.

use crate::escape::escape_into;

/// What a certificate says about its holder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertInfo {
    /// The subject as an RFC 4514 string (`CN=sensor1,O=Example,C=DE`: last RDN first), its
    /// first [`SUBJECT_MAX`] bytes or so: then ` (N more attributes)`.
    pub subject: String,
    /// The subject's common names (usually one).
    pub common_names: Vec<String>,
    /// Subject alternative names, typed as openssl prints them: `DNS:host`, `IP:192.0.2.7`,
    /// `email:a@b`, `URI:…`.
    pub alt_names: Vec<String>,
    /// notAfter, as `YYYY-MM-DD HH:MM:SS UTC`, and in seconds since the Unix epoch.
    pub not_after: String,
    pub not_after_unix: i64,
}

impl CertInfo {
    /// The DNS names and common names, lowercased: what `allow_names` is matched against.
    pub fn names(&self) -> impl Iterator<Item = String> + '_ {
        let dns = self.alt_names.iter().filter_map(|n| n.strip_prefix("DNS:"));
        self.common_names
            .iter()
            .map(String::as_str)
            .chain(dns)
            .map(str::to_ascii_lowercase)
    }
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const OCTET_STRING: u8 = 0x04;
const BOOLEAN: u8 = 0x01;
const INTEGER: u8 = 0x02;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
const BMP_STRING: u8 = 0x1e;

const OID_SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];

/// Reads a DER certificate. `None` if it is not one this reader understands.
pub fn parse(der: &[u8]) -> Option<CertInfo> {
    let mut outer = Der(der);
    let cert = outer.expect(SEQUENCE)?;
    let mut cert = Der(cert);
    let mut tbs = Der(cert.expect(SEQUENCE)?);
    if tbs.peek() == Some(0xa0) {
        tbs.next()?; // version
    }
    tbs.expect(INTEGER)?; // serialNumber
    tbs.expect(SEQUENCE)?; // signature
    tbs.expect(SEQUENCE)?; // issuer
    let mut validity = Der(tbs.expect(SEQUENCE)?);
    validity.next()?; // notBefore
    let (tag, not_after) = validity.next()?;
    let (not_after, not_after_unix) = time(tag, not_after)?;
    let subject = tbs.expect(SEQUENCE)?;
    tbs.expect(SEQUENCE)?; // subjectPublicKeyInfo
    let mut info = CertInfo {
        not_after,
        not_after_unix,
        ..CertInfo::default()
    };
    name(subject, &mut info)?;
    while let Some((tag, value)) = tbs.next() {
        if tag == 0xa3 {
            extensions(value, &mut info)?;
        }
    }
    Some(info)
}

/// A DER reader over one level of TLVs.
struct Der<'a>(&'a [u8]);

impl<'a> Der<'a> {
    fn peek(&self) -> Option<u8> {
        self.0.first().copied()
    }

    /// The next TLV: its tag and its value.
    fn next(&mut self) -> Option<(u8, &'a [u8])> {
        let (&tag, rest) = self.0.split_first()?;
        if tag & 0x1f == 0x1f {
            return None; // a long tag: never needed here
        }
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None; // indefinite (not DER) or absurd
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            rest = &rest[n..];
            len
        };
        if rest.len() < len {
            return None;
        }
        let (value, rest) = rest.split_at(len);
        self.0 = rest;
        Some((tag, value))
    }

    fn expect(&mut self, want: u8) -> Option<&'a [u8]> {
        match self.next()? {
            (tag, value) if tag == want => Some(value),
            _ => None,
        }
    }
}

/// The longest subject [`CertInfo::subject`] holds whole: past it, the attributes that do
/// not fit are counted, not written (`CN=a,O=b (1090 more attributes)`). A client chooses its
/// subject; the entries it is written to must stay small (see `sink/journald/encode.rs`).
pub const SUBJECT_MAX: usize = 1024;

/// A Name (a SEQUENCE of RDN SETs): its RFC 4514 string (at most [`SUBJECT_MAX`] bytes of
/// whole attributes, the first always) and common names.
fn name(der: &[u8], info: &mut CertInfo) -> Option<()> {
    let mut rdns = Vec::new();
    let mut seq = Der(der);
    while let Some(set) = seq.next() {
        if set.0 != SET {
            return None;
        }
        let mut attrs = Der(set.1);
        let mut rdn = Vec::new();
        while let Some((tag, attr)) = attrs.next() {
            if tag != SEQUENCE {
                return None;
            }
            let mut attr = Der(attr);
            let oid = attr.expect(OID)?;
            let (vtag, value) = attr.next()?;
            let value = string(vtag, value);
            rdn.push(format!(
                "{}={}",
                attribute_name(oid),
                rfc4514_escape(&value)
            ));
            if oid == [0x55, 0x04, 0x03] {
                info.common_names.push(value);
            }
        }
        rdns.push(rdn);
    }
    rdns.reverse();
    let mut subject = String::new();
    let mut left_out = 0;
    for (i, rdn) in rdns.iter().enumerate() {
        for (j, attr) in rdn.iter().enumerate() {
            let sep = match (i, j) {
                (0, 0) => "",
                (_, 0) => ",",
                _ => "+",
            };
            if left_out > 0 || (!subject.is_empty() && subject.len() + 1 + attr.len() > SUBJECT_MAX)
            {
                left_out += 1;
                continue;
            }
            subject.push_str(sep);
            subject.push_str(attr);
        }
    }
    if left_out > 0 {
        let s = if left_out == 1 { "" } else { "s" };
        subject.push_str(&format!(" ({left_out} more attribute{s})"));
    }
    info.subject = subject;
    Some(())
}

fn attribute_name(oid: &[u8]) -> String {
    match oid {
        [0x55, 0x04, 0x03] => "CN".into(),
        [0x55, 0x04, 0x06] => "C".into(),
        [0x55, 0x04, 0x07] => "L".into(),
        [0x55, 0x04, 0x08] => "ST".into(),
        [0x55, 0x04, 0x09] => "STREET".into(),
        [0x55, 0x04, 0x0a] => "O".into(),
        [0x55, 0x04, 0x0b] => "OU".into(),
        [0x55, 0x04, 0x05] => "serialNumber".into(),
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19] => "DC".into(),
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01] => "UID".into(),
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01] => "emailAddress".into(),
        other => dotted(other),
    }
}

/// An OID in dotted form (`1.2.3.4`).
fn dotted(oid: &[u8]) -> String {
    let mut parts = Vec::new();
    let mut v: u64 = 0;
    for &b in oid {
        v = (v << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if parts.is_empty() {
                let first = (v / 40).min(2);
                parts.push(first);
                parts.push(v - first * 40);
            } else {
                parts.push(v);
            }
            v = 0;
        }
    }
    parts
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// RFC 4514 escaping of an attribute value (after our own escaping of control bytes).
fn rfc4514_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        let edge =
            (i == 0 && (c == ' ' || c == '#')) || (i + 1 == value.chars().count() && c == ' ');
        if edge || matches!(c, ',' | '+' | '"' | '<' | '>' | ';' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A directory string as text, escaped: UTF-8 and the ASCII types as they are, BMPString
/// (UTF-16BE) decoded, anything else byte by byte.
fn string(tag: u8, value: &[u8]) -> String {
    let mut out = String::new();
    if tag == BMP_STRING && value.len() % 2 == 0 {
        let units = value
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]));
        let decoded: String = char::decode_utf16(units)
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect();
        escape_into(&mut out, decoded.as_bytes());
    } else {
        escape_into(&mut out, value);
    }
    out
}

/// The extensions: the subject alternative names.
fn extensions(explicit: &[u8], info: &mut CertInfo) -> Option<()> {
    let mut outer = Der(explicit);
    let mut list = Der(outer.expect(SEQUENCE)?);
    while let Some((tag, ext)) = list.next() {
        if tag != SEQUENCE {
            return None;
        }
        let mut ext = Der(ext);
        let oid = ext.expect(OID)?;
        if ext.peek() == Some(BOOLEAN) {
            ext.next()?;
        }
        let value = ext.expect(OCTET_STRING)?;
        if oid == OID_SUBJECT_ALT_NAME {
            alt_names(value, info)?;
        }
    }
    Some(())
}

fn alt_names(der: &[u8], info: &mut CertInfo) -> Option<()> {
    let mut outer = Der(der);
    let mut names = Der(outer.expect(SEQUENCE)?);
    while let Some((tag, value)) = names.next() {
        let mut text = String::new();
        match tag {
            0x81 => text.push_str("email:"),
            0x82 => text.push_str("DNS:"),
            0x86 => text.push_str("URI:"),
            0x87 => {
                let ip = match value.len() {
                    4 => std::net::IpAddr::from(<[u8; 4]>::try_from(value).ok()?),
                    16 => std::net::IpAddr::from(<[u8; 16]>::try_from(value).ok()?),
                    _ => continue,
                };
                info.alt_names.push(format!("IP:{ip}"));
                continue;
            }
            // directoryName, otherName, …: not names a log reader filters on.
            _ => continue,
        }
        escape_into(&mut text, value);
        info.alt_names.push(text);
    }
    Some(())
}

/// UTCTime (`YYMMDDHHMMSSZ`, 1950–2049) or GeneralizedTime (`YYYYMMDDHHMMSSZ`) as
/// `YYYY-MM-DD HH:MM:SS UTC` and Unix seconds.
fn time(tag: u8, value: &[u8]) -> Option<(String, i64)> {
    let text = std::str::from_utf8(value).ok()?;
    let digits = text.strip_suffix('Z')?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (year, rest) = match (tag, digits.len()) {
        (UTC_TIME, 12) => {
            let yy: i64 = digits[..2].parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &digits[2..])
        }
        (GENERALIZED_TIME, 14) => (digits[..4].parse().ok()?, &digits[4..]),
        _ => return None,
    };
    let field = |i: usize| rest[i..i + 2].parse::<i64>().ok();
    let (month, day, hour, minute, second) =
        (field(0)?, field(2)?, field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let unix = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    Some((
        format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02} UTC"),
        unix,
    ))
}

/// Days since 1970-01-01 of a date in the proleptic Gregorian calendar (H. Hinnant's
/// algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_convert_to_unix_time() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(
            time(UTC_TIME, b"491231235959Z"),
            Some(("2049-12-31 23:59:59 UTC".into(), 2_524_607_999))
        );
        assert_eq!(
            time(GENERALIZED_TIME, b"20500101000000Z"),
            Some(("2050-01-01 00:00:00 UTC".into(), 2_524_608_000))
        );
        assert_eq!(time(UTC_TIME, b"500101000000Z").unwrap().1, -631_152_000);
        assert_eq!(time(UTC_TIME, b"501301000000Z"), None, "month 13");
        assert_eq!(time(UTC_TIME, b"5001010000Z"), None, "too short");
        assert_eq!(time(UTC_TIME, b"500101000000+0100"), None, "not UTC");
    }

    #[test]
    fn oids_and_values_are_written_as_rfc_4514_says() {
        assert_eq!(
            dotted(&[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37]),
            "1.3.6.1.4.1.311"
        );
        assert_eq!(rfc4514_escape("a,b+c"), "a\\,b\\+c");
        assert_eq!(rfc4514_escape(" x "), "\\ x\\ ");
        assert_eq!(string(BMP_STRING, &[0, b'h', 0, b'i']), "hi");
        assert_eq!(string(0x0c, b"a\x1bb"), "a\\x1bb");
    }

    #[test]
    fn truncated_or_malformed_input_is_refused_without_panicking() {
        // A tiny valid-looking structure, then every prefix and every flipped byte of it.
        let mut der = vec![0x30, 0x82, 0x00, 0x05, 0x02, 0x01, 0x01, 0x05, 0x00];
        assert!(parse(&der).is_none());
        der.clear();
        for len in 0..64u8 {
            let data: Vec<u8> = (0..len).map(|i| i.wrapping_mul(37) ^ 0x30).collect();
            let _ = parse(&data);
        }
        assert!(Der(&[0x30, 0x80]).next().is_none(), "indefinite length");
        assert!(Der(&[0x1f, 0x01, 0x00]).next().is_none(), "long tag");
        assert!(Der(&[0x04, 0x05, 0x00]).next().is_none(), "past the end");
        assert!(
            Der(&[0x04, 0x85, 1, 0, 0, 0, 0]).next().is_none(),
            "5 length bytes"
        );
    }

    /// A DER TLV (short or two-byte long length).
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match content.len() {
            n if n < 0x80 => out.push(n as u8),
            n if n < 0x100 => out.extend_from_slice(&[0x81, n as u8]),
            n => out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
        }
        out.extend_from_slice(content);
        out
    }

    /// A Name of one RDN per common name, `cns` in order.
    fn cn_name(cns: &[String]) -> Vec<u8> {
        let mut rdns = Vec::new();
        for cn in cns {
            let mut attr = tlv(OID, &[0x55, 0x04, 0x03]);
            attr.extend(tlv(0x0c, cn.as_bytes()));
            rdns.extend(tlv(SET, &tlv(SEQUENCE, &attr)));
        }
        rdns
    }

    #[test]
    fn a_subject_of_many_attributes_is_cut_at_an_attribute_and_counted() {
        let mut info = CertInfo::default();
        name(&cn_name(&["a".into(), "b".into()]), &mut info).unwrap();
        assert_eq!(info.subject, "CN=b,CN=a");
        let cns: Vec<String> = (1..=1100).map(|i| format!("c{i}")).collect();
        let mut info = CertInfo::default();
        name(&cn_name(&cns), &mut info).unwrap();
        assert_eq!(info.common_names.len(), 1100, "every name, for allow_names");
        let (kept, rest) = info.subject.split_once(" (").unwrap();
        assert!(kept.starts_with("CN=c1100,CN=c1099,"), "{kept}");
        assert!(kept.len() <= SUBJECT_MAX, "{}", kept.len());
        let n_kept = kept.split(',').count();
        assert_eq!(rest, format!("{} more attributes)", 1100 - n_kept));
        // The first attribute is kept whole however long: the subject names someone.
        let long = "x".repeat(2 * SUBJECT_MAX);
        let mut info = CertInfo::default();
        name(&cn_name(&["y".into(), long.clone()]), &mut info).unwrap();
        assert_eq!(info.subject, format!("CN={long} (1 more attribute)"));
    }
}
