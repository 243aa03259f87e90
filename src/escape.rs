//! Turns bytes a client sent into text that is safe to store and show: valid UTF-8 is kept,
//! invalid bytes and control characters become `\xNN`, and a backslash becomes `\\`, so the
//! escaping can be undone and no client can move a terminal's cursor or forge a second entry.

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
    use super::{escape, plain_ascii, unescape};

    #[test]
    fn the_fast_check_agrees_with_the_byte_by_byte_one() {
        let slow = |b: &[u8]| b.iter().all(|&b| (0x20..0x7f).contains(&b) && b != b'\\');
        // Every byte value at every position of lines of every length up to 24.
        for len in 0..24 {
            for pos in 0..len {
                for v in 0..=255u8 {
                    let mut line = vec![b'a'; len];
                    line[pos] = v;
                    assert_eq!(plain_ascii(&line), slow(&line), "{line:?}");
                }
            }
        }
        // And mixed lines from a simple generator.
        let mut seed = 0x1234_5678_u32;
        for _ in 0..20_000 {
            let len = (seed % 40) as usize;
            let line: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    [b'x', b' ', b'~', 0x7f, 0x1f, b'\\', 0x80, 0xff, 0][(seed >> 16) as usize % 9]
                })
                .collect();
            assert_eq!(plain_ascii(&line), slow(&line), "{line:?}");
        }
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

    #[test]
    fn direction_overrides_are_escaped() {
        assert_eq!(escape("a\u{202e}b".as_bytes()), "a\\u{202e}b");
        assert_eq!(escape("a\u{2028}b".as_bytes()), "a\\u{2028}b");
    }
}
