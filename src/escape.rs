//! Turns bytes a client sent into text that is safe to store and show: valid UTF-8 is kept,
//! invalid bytes and control characters become `\xNN`, and a backslash becomes `\\`, so the
//! escaping can be undone and no client can move a terminal's cursor or forge a second entry.
//! RFC 5424 STRUCTURED-DATA has its own backslash escapes, kept so that it reads back as the
//! same parameters ([`escape_structured_data_into`]).

use std::fmt::Write;

use crate::swar;

/// Appends the escaped form of `bytes` to `out`.
pub fn escape_into(out: &mut String, bytes: &[u8]) {
    if plain_ascii(bytes) {
        // Printable ASCII, the common case: valid UTF-8 by construction.
        out.push_str(std::str::from_utf8(bytes).expect("ASCII"));
        return;
    }
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_char(out, c);
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
}

/// Appends RFC 5424 STRUCTURED-DATA (as [`crate::syslog_message::parse`] found it) so that an
/// RFC 5424 parser reads the same SD-IDs, PARAM-NAMEs and PARAM-VALUEs from what is stored,
/// and no byte can reach a terminal (RFC 5424 section 6.3.3 escapes `"`, `\` and `]` inside
/// a PARAM-VALUE with a backslash, and reads a backslash followed by anything else as a
/// backslash):
///
/// - outside PARAM-VALUEs (brackets, SD-IDs, PARAM-NAMEs, `=`, quotes: printable ASCII in
///   well-formed STRUCTURED-DATA) every byte is kept as sent, a backslash in a name too;
/// - inside a PARAM-VALUE the escape pairs `\"`, `\\` and `\]` are kept as sent, and a lone
///   backslash (followed by anything else) is written `\\`, which RFC 5424 reads as the same
///   one backslash;
/// - what [`escape_into`] escapes (control characters, invalid UTF-8, the Unicode separators
///   and direction overrides) is written as it writes it, `\xNN` or `\u{…}`. Inside a value
///   every stored backslash starts one of `\"`, `\\`, `\]`, `\xNN`, `\u{…}` (a sent
///   backslash is never stored alone), so read left to right the escaping can be undone.
///
/// A value holding none of the escaped bytes reads back exactly as sent. Bytes outside a value
/// that are not printable ASCII (not well-formed STRUCTURED-DATA) are escaped as by
/// [`escape_into`], so the text stays safe whatever it is given.
pub fn escape_structured_data_into(out: &mut String, sd: &[u8]) {
    let mut in_value = false;
    let mut i = 0;
    while i < sd.len() {
        let b = sd[i];
        if !in_value {
            if (0x20..0x7f).contains(&b) {
                out.push(char::from(b));
                // `="` opens a value: the quote after a PARAM-NAME's `=`.
                in_value = b == b'"';
            } else {
                escape_into(out, &sd[i..i + 1]);
            }
            i += 1;
            continue;
        }
        match b {
            b'"' => {
                out.push('"');
                in_value = false;
                i += 1;
            }
            b'\\' => match sd.get(i + 1) {
                Some(&e @ (b'"' | b'\\' | b']')) => {
                    out.push('\\');
                    out.push(char::from(e));
                    i += 2;
                }
                _ => {
                    out.push_str("\\\\");
                    i += 1;
                }
            },
            _ => {
                // A run up to the next backslash or quote (ASCII: never inside a character).
                let run = sd[i..]
                    .iter()
                    .position(|&b| b == b'\\' || b == b'"')
                    .map_or(sd.len(), |n| i + n);
                escape_into(out, &sd[i..run]);
                i = run;
            }
        }
    }
}

/// Whether every byte is printable ASCII other than a backslash, so nothing needs escaping.
/// Eight bytes at a time (SWAR): this runs for every line a client sends.
fn plain_ascii(bytes: &[u8]) -> bool {
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let x = swar::word(chunk);
        // A control character, DEL or above (not ASCII), or a backslash.
        if swar::below(x, 0x20) | swar::at_least(x, 0x7f) | swar::equal(x, b'\\') != 0 {
            return false;
        }
    }
    chunks
        .remainder()
        .iter()
        .all(|&b| (0x20..0x7f).contains(&b) && b != b'\\')
}

/// The length of [`escape_into`]'s output for `bytes`, without writing it.
pub fn escaped_len(bytes: &[u8]) -> usize {
    if plain_ascii(bytes) {
        return bytes.len();
    }
    bytes
        .utf8_chunks()
        .map(|chunk| {
            chunk.valid().chars().map(escaped_char_len).sum::<usize>() + 4 * chunk.invalid().len()
        })
        .sum()
}

/// The most bytes at the start of `bytes` whose escaped form is at most `limit` bytes long,
/// never ending inside a UTF-8 character: how a long line is cut into pieces whose MESSAGE
/// fits. `bytes.len()` if all of it fits. At least one character (or one invalid byte), even
/// if its escaped form alone is longer than `limit` (at most 8 bytes), so that a piece is
/// never empty.
///
/// Escaping a prefix cut here and the rest separately gives exactly the escaped whole: only
/// valid characters have multi-byte escapes, and they are never cut. Plain ASCII, the common
/// case, is decided eight bytes at a time without looking at characters.
pub fn fitting_prefix(bytes: &[u8], limit: usize) -> usize {
    let window = bytes.len().min(limit);
    if window > 0 && plain_ascii(&bytes[..window]) {
        // One byte each: `window` bytes take `window` of the `limit`, and no more fit.
        return window;
    }
    let (mut used, mut n) = (0, 0);
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            used += escaped_char_len(c);
            if used > limit && n > 0 {
                return n;
            }
            n += c.len_utf8();
        }
        for _ in chunk.invalid() {
            used += 4;
            if used > limit && n > 0 {
                return n;
            }
            n += 1;
        }
    }
    n
}

/// The length of what [`push_char`] writes for `c`.
fn escaped_char_len(c: char) -> usize {
    match c {
        '\\' => 2,
        '\t' => 1,
        c if c.is_control() => 4 * c.len_utf8(),
        '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => 8,
        c => c.len_utf8(),
    }
}

/// The escaped form of `bytes`.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    escape_into(&mut out, bytes);
    out
}

/// The bytes that [`escape`] was given: undoes `\\`, `\xNN` and `\u{...}`. Text that
/// `escape` cannot have produced (a lone backslash, a bad escape) is returned as `None`.
pub fn unescape(text: &str) -> Option<Vec<u8>> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        match b.get(i + 1)? {
            b'\\' => {
                out.push(b'\\');
                i += 2;
            }
            b'x' => {
                let hex = text.get(i + 2..i + 4)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 4;
            }
            b'u' => {
                let rest = text.get(i + 2..)?.strip_prefix('{')?;
                let end = rest.find('}')?;
                let c = char::from_u32(u32::from_str_radix(&rest[..end], 16).ok()?)?;
                out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                i += 3 + end + 1;
            }
            _ => return None,
        }
    }
    Some(out)
}

fn push_char(out: &mut String, c: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        '\t' => out.push('\t'),
        // C0, DEL and the C1 controls (U+0080..U+009F, which include the 8-bit CSI): as the
        // bytes they are in UTF-8.
        c if c.is_control() => {
            let mut buf = [0; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
        // Line and paragraph separators and the bidirectional overrides, which can make a
        // line read as something else.
        '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::{
        escape, escape_structured_data_into, escaped_len, fitting_prefix, plain_ascii, unescape,
    };

    #[test]
    fn the_fast_check_agrees_with_the_byte_by_byte_one() {
        let slow = |b: &[u8]| b.iter().all(|&b| (0x20..0x7f).contains(&b) && b != b'\\');
        crate::swar::check_scan(
            plain_ascii,
            slow,
            None,
            Some((
                0x1234_5678,
                [b'x', b' ', b'~', 0x7f, 0x1f, b'\\', 0x80, 0xff, 0],
            )),
        );
    }

    #[test]
    fn printable_text_is_unchanged() {
        assert_eq!(escape(b"abcdefg!"), "abcdefg!");
        assert_eq!(escape("héllo wörld, 日本".as_bytes()), "héllo wörld, 日本");
        assert_eq!(escape(b"tab\there"), "tab\there");
        assert_eq!(escape(b""), "");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape(b"\x1b[2J\x1b[31mred"), "\\x1b[2J\\x1b[31mred");
        assert_eq!(escape(b"nul\0here"), "nul\\x00here");
        assert_eq!(escape(b"a\nMESSAGE=fake\rb"), "a\\x0aMESSAGE=fake\\x0db");
        assert_eq!(escape(b"del\x7f"), "del\\x7f");
        assert_eq!(escape("csi\u{9b}31m".as_bytes()), "csi\\xc2\\x9b31m");
    }

    #[test]
    fn invalid_utf8_is_escaped_byte_by_byte() {
        assert_eq!(escape(b"\xff\xfeok"), "\\xff\\xfeok");
        assert_eq!(escape(b"cut \xe6\x97"), "cut \\xe6\\x97");
        assert_eq!(escape(b"\xc3\x28"), "\\xc3(");
    }

    #[test]
    fn backslash_is_doubled_so_escapes_cannot_be_forged() {
        assert_eq!(escape(b"C:\\x1b"), "C:\\\\x1b");
    }

    #[test]
    fn unescape_gives_the_bytes_back() {
        for bytes in [
            &b"plain"[..],
            b"\x1b[2J\0\xff\xfe \\x41 \\",
            "a\u{202e}b\u{2028}\u{9b}\t\x7f".as_bytes(),
            b"cut \xe6\x97",
        ] {
            assert_eq!(unescape(&escape(bytes)).as_deref(), Some(bytes));
        }
        assert_eq!(unescape("lone \\"), None);
        assert_eq!(unescape("\\q"), None);
    }

    /// Mixed bytes from a simple generator: ASCII, backslashes, controls, C1, bidi
    /// overrides, multi-byte characters, invalid and cut sequences.
    fn mixed(seed: &mut u32, len: usize) -> Vec<u8> {
        let parts: [&[u8]; 14] = [
            b"x",
            b" ",
            b"\\",
            b"\t",
            b"\x1b",
            b"\x7f",
            "\u{9b}".as_bytes(),
            "\u{202e}".as_bytes(),
            "\u{2028}".as_bytes(),
            "é".as_bytes(),
            "€".as_bytes(),
            "😀".as_bytes(),
            b"\xff",
            b"\xe2\x82",
        ];
        let mut out = Vec::new();
        while out.len() < len {
            *seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            out.extend_from_slice(parts[(*seed >> 16) as usize % parts.len()]);
        }
        out
    }

    #[test]
    fn escaped_len_is_the_length_of_the_escape() {
        let mut seed = 7;
        for len in 0..200 {
            let bytes = mixed(&mut seed, len);
            assert_eq!(escaped_len(&bytes), escape(&bytes).len(), "{bytes:?}");
        }
        assert_eq!(escaped_len(b"plain"), 5);
        assert_eq!(escaped_len(b"\xff"), 4);
        assert_eq!(escaped_len("\u{9b}".as_bytes()), 8);
    }

    #[test]
    fn a_fitting_prefix_fits_cuts_no_character_and_escapes_like_the_whole() {
        let mut seed = 11;
        for case in 0..20_000 {
            let bytes = mixed(&mut seed, case % 90);
            let limit = (seed >> 8) as usize % 40;
            let n = fitting_prefix(&bytes, limit);
            let (head, tail) = bytes.split_at(n);
            assert!(n <= bytes.len());
            // Escaping the two parts gives the escaped whole: no character was cut.
            assert_eq!(
                escape(head) + &escape(tail),
                escape(&bytes),
                "{bytes:?} at {n}"
            );
            if bytes.is_empty() {
                assert_eq!(n, 0);
                continue;
            }
            assert!(n > 0, "a piece is never empty");
            let first = fitting_prefix(&bytes, 0);
            assert!(
                escaped_len(head) <= limit || n == first,
                "{bytes:?}: {n} bytes escape to {} > {limit}",
                escaped_len(head)
            );
            // The next character would not fit.
            if n < bytes.len() {
                let next = n + fitting_prefix(tail, 0);
                assert!(
                    escaped_len(&bytes[..next]) > limit,
                    "{bytes:?}: {n} of {limit}"
                );
            }
        }
        assert_eq!(fitting_prefix(b"abcdef", 4), 4);
        assert_eq!(fitting_prefix(b"abc", 4), 3);
        assert_eq!(fitting_prefix("ab€".as_bytes(), 4), 2);
        assert_eq!(fitting_prefix("ab€".as_bytes(), 5), 5);
        assert_eq!(fitting_prefix(b"\xff\xff", 4), 1);
        assert_eq!(
            fitting_prefix("\u{9b}x".as_bytes(), 4),
            2,
            "one character at least"
        );
        assert_eq!(fitting_prefix(b"", 4), 0);
    }

    #[test]
    fn direction_overrides_are_escaped() {
        assert_eq!(escape("a\u{202e}b".as_bytes()), "a\\u{202e}b");
        assert_eq!(escape("a\u{2028}b".as_bytes()), "a\\u{2028}b");
    }

    /// STRUCTURED-DATA elements: SD-ID and its (PARAM-NAME, PARAM-VALUE) pairs.
    type Elements = Vec<(Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>)>;

    /// RFC 5424 STRUCTURED-DATA read as its section 6.3.3 says, written here apart from the
    /// daemon's parser: inside a PARAM-VALUE `\"`, `\\` and `\]` stand for the character, any
    /// other backslash for itself. With `ours`, `\xNN` and `\u{…}` inside a value are also read
    /// as the bytes [`super::escape_into`] escaped. `None` if it is not well-formed.
    pub(crate) fn read_sd(sd: &[u8], ours: bool) -> Option<Elements> {
        let name = |i: &mut usize| {
            let start = *i;
            while sd
                .get(*i)
                .is_some_and(|&b| (33..=126).contains(&b) && !b"=]\"".contains(&b))
            {
                *i += 1;
            }
            (*i > start).then(|| sd[start..*i].to_vec())
        };
        let mut elements = Vec::new();
        let mut i = 0;
        while i < sd.len() {
            if sd[i] != b'[' {
                return None;
            }
            i += 1;
            let id = name(&mut i)?;
            let mut params = Vec::new();
            loop {
                match *sd.get(i)? {
                    b']' => {
                        i += 1;
                        break;
                    }
                    b' ' => {
                        i += 1;
                        let param = name(&mut i)?;
                        if sd.get(i..i + 2)? != b"=\"" {
                            return None;
                        }
                        i += 2;
                        let mut value = Vec::new();
                        loop {
                            match *sd.get(i)? {
                                b'"' => break,
                                b'\\' => match *sd.get(i + 1)? {
                                    e @ (b'"' | b'\\' | b']') => {
                                        value.push(e);
                                        i += 2;
                                    }
                                    b'x' if ours => {
                                        let hex =
                                            std::str::from_utf8(sd.get(i + 2..i + 4)?).ok()?;
                                        value.push(u8::from_str_radix(hex, 16).ok()?);
                                        i += 4;
                                    }
                                    b'u' if ours => {
                                        let end = i + sd[i..].iter().position(|&b| b == b'}')?;
                                        let hex = std::str::from_utf8(&sd[i + 3..end]).ok()?;
                                        let c = char::from_u32(u32::from_str_radix(hex, 16).ok()?)?;
                                        value.extend_from_slice(c.to_string().as_bytes());
                                        i = end + 1;
                                    }
                                    _ => {
                                        value.push(b'\\');
                                        i += 1;
                                    }
                                },
                                b => {
                                    value.push(b);
                                    i += 1;
                                }
                            }
                        }
                        i += 1;
                        params.push((param, value));
                    }
                    _ => return None,
                }
            }
            elements.push((id, params));
        }
        (!elements.is_empty()).then_some(elements)
    }

    /// Whether `bytes` hold anything [`escape`] escapes other than a backslash.
    fn needs_escaping(bytes: &[u8]) -> bool {
        let no_backslash: Vec<u8> = bytes.iter().copied().filter(|&b| b != b'\\').collect();
        escape(&no_backslash).as_bytes() != no_backslash
    }

    fn stored_sd(sd: &[u8]) -> String {
        let mut out = String::new();
        escape_structured_data_into(&mut out, sd);
        out
    }

    #[test]
    fn structured_data_is_stored_so_that_it_reads_back_as_the_same_parameters() {
        // Issue 17: logger --sd-id a@1 --sd-param 'p="x\"y\]z"'.
        let sent = br#"[a@1 p="x\"y\]z"]"#;
        assert_eq!(stored_sd(sent), r#"[a@1 p="x\"y\]z"]"#);
        let want = vec![(b"a@1".to_vec(), vec![(b"p".to_vec(), br#"x"y]z"#.to_vec())])];
        assert_eq!(read_sd(stored_sd(sent).as_bytes(), false), Some(want));
        // A backslash pair as sent; a lone backslash doubled (RFC 5424 reads both as one).
        assert_eq!(
            stored_sd(br#"[b q="C:\\dir" r="C:\dir" s="\x41"]"#),
            r#"[b q="C:\\dir" r="C:\\dir" s="\\x41"]"#
        );
        // Control characters and invalid UTF-8 escaped; a lone backslash before one doubled,
        // so that the stored `\x1b` cannot be read as a sent backslash.
        assert_eq!(
            stored_sd(b"[c v=\"\x1b[2J\nMESSAGE=forged\\\x1b\xff\"]"),
            r#"[c v="\x1b[2J\x0aMESSAGE=forged\\\x1b\xff"]"#
        );
        // An unescaped `]` in a quoted value (accepted, as rsyslog does), a backslash in a
        // name, UTF-8 and a direction override.
        assert_eq!(
            stored_sd("[d\\n w=\"]é\u{202e}\"][e]".as_bytes()),
            "[d\\n w=\"]é\\u{202e}\"][e]"
        );
    }

    #[test]
    fn any_structured_data_reads_back_as_sent() {
        // The values a sender means, escaped as RFC 5424 says (a `]` escaped or not, a
        // backslash as `\\` or alone where that is not an escape), stored, read back.
        let alphabet: [&[u8]; 21] = [
            b"a",
            b"x",
            b"u",
            b"{",
            b"}",
            b"0",
            b" ",
            b"=",
            b"\"",
            b"\\",
            b"]",
            b"[",
            b"\t",
            b"\x1b",
            b"\n",
            b"\0",
            b"\xff",
            "é".as_bytes(),
            "\u{202e}".as_bytes(),
            "\u{9b}".as_bytes(),
            "😀".as_bytes(),
        ];
        let mut seed = 0x5eed_u32;
        let mut next = move |n: usize| {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (seed >> 16) as usize % n
        };
        let (mut exact, mut escaped) = (0, 0);
        for case in 0..20_000 {
            let mut sd = Vec::new();
            let mut want: Elements = Vec::new();
            for e in 0..1 + next(3) {
                let id = format!("id{e}@{case}").into_bytes();
                sd.push(b'[');
                sd.extend_from_slice(&id);
                let mut params = Vec::new();
                for p in 0..next(4) {
                    let name = format!("p{p}").into_bytes();
                    let meant: Vec<&[u8]> = (0..next(12))
                        .map(|_| alphabet[next(alphabet.len())])
                        .collect();
                    sd.push(b' ');
                    sd.extend_from_slice(&name);
                    sd.extend_from_slice(b"=\"");
                    for (k, c) in meant.iter().enumerate() {
                        let next_is_special = meant
                            .get(k + 1)
                            .is_none_or(|n| matches!(n, [b'"' | b'\\' | b']']));
                        match *c {
                            b"\"" => sd.extend_from_slice(b"\\\""),
                            b"]" if next(2) == 0 => sd.extend_from_slice(b"\\]"),
                            b"\\" if next_is_special || next(2) == 0 => {
                                sd.extend_from_slice(b"\\\\")
                            }
                            c => sd.extend_from_slice(c),
                        }
                    }
                    sd.push(b'"');
                    params.push((name, meant.concat()));
                }
                sd.push(b']');
                want.push((id, params));
            }
            assert_eq!(read_sd(&sd, false).as_ref(), Some(&want), "case {case}");
            let stored = stored_sd(&sd);
            assert!(
                !stored.chars().any(|c| c.is_control() && c != '\t'),
                "{stored:?}"
            );
            assert_eq!(
                read_sd(stored.as_bytes(), true).as_ref(),
                Some(&want),
                "case {case}: {sd:?} stored as {stored:?}"
            );
            // Without a byte that must be escaped, any RFC 5424 reader reads what was meant.
            if !needs_escaping(&sd) {
                assert_eq!(read_sd(stored.as_bytes(), false), Some(want), "case {case}");
                exact += 1;
            } else {
                escaped += 1;
            }
        }
        assert!(
            exact > 1000 && escaped > 1000,
            "{exact} exact, {escaped} escaped"
        );
    }
}
