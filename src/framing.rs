//! Cuts a client's byte stream into the pieces that become journal entries.
//!
//! In line mode a line ends at LF, CRLF or a lone CR (the terminator is not part of the line).
//! A line longer than `max_line_length` is emitted in pieces of at most that many bytes, never
//! splitting a UTF-8 character; each piece carries its part number and whether more follows.
//! The framer holds at most `max_line_length + 1` bytes, whatever the client sends.
//! In raw mode every read is one piece, as the classroom server printed it.

use crate::config::Framing;
use crate::swar;

/// One piece of client data, ready to be escaped and logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub bytes: &'a [u8],
    /// 0 for a whole line; 1, 2, … for the pieces of a line longer than the limit.
    pub part: u32,
    /// More pieces of the same line follow.
    pub continued: bool,
    /// The connection ended (or the daemon stopped) before the end of this line.
    pub partial: bool,
}

#[derive(Debug)]
pub struct Framer {
    mode: Framing,
    max_line_length: usize,
    buf: Vec<u8>,
    /// Pieces of the current line already emitted.
    parts: u32,
    /// The last byte seen was a CR, so an LF right after it ends nothing.
    after_cr: bool,
}

impl Framer {
    pub fn new(mode: Framing, max_line_length: usize) -> Framer {
        assert!(
            max_line_length >= 4,
            "a piece must hold any UTF-8 character"
        );
        Framer {
            mode,
            max_line_length,
            buf: Vec::new(),
            parts: 0,
            after_cr: false,
        }
    }

    /// Applies new settings; a line in progress keeps what it has.
    pub fn reconfigure(&mut self, mode: Framing, max_line_length: usize) {
        assert!(
            max_line_length >= 4,
            "a piece must hold any UTF-8 character"
        );
        self.mode = mode;
        self.max_line_length = max_line_length;
    }

    /// Bytes held for a line not yet ended.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Feeds bytes read from the client; `emit` is called for every complete piece.
    pub fn push(&mut self, mut data: &[u8], mut emit: impl FnMut(Frame<'_>)) {
        if self.mode == Framing::Raw {
            let end = data
                .iter()
                .rposition(|&b| b != b'\n' && b != b'\r')
                .map_or(0, |i| i + 1);
            if !data.is_empty() {
                emit(Frame {
                    bytes: &data[..end],
                    part: 0,
                    continued: false,
                    partial: false,
                });
            }
            return;
        }
        if self.after_cr && data.first() == Some(&b'\n') {
            data = &data[1..];
        }
        self.after_cr = false;
        while let Some(i) = find_eol(data) {
            let line = &data[..i];
            if self.buf.is_empty() {
                self.emit_line(line, false, &mut emit);
            } else {
                self.accumulate(line, &mut emit);
                let mut held = std::mem::take(&mut self.buf);
                self.emit_line(&held, false, &mut emit);
                held.clear();
                self.buf = held;
                self.shrink();
            }
            let ended_by_cr = data[i] == b'\r';
            data = &data[i + 1..];
            if ended_by_cr {
                match data.first() {
                    Some(b'\n') => data = &data[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
        }
        self.accumulate(data, &mut emit);
    }

    /// Emits what is held as a partial final line (connection closed or daemon stopping).
    pub fn finish(&mut self, mut emit: impl FnMut(Frame<'_>)) {
        if self.buf.is_empty() && self.parts == 0 {
            return;
        }
        let buf = std::mem::take(&mut self.buf);
        self.emit_line(&buf, true, &mut emit);
        self.after_cr = false;
    }

    /// Appends `data` to the line in progress, emitting full pieces as the limit is passed.
    fn accumulate(&mut self, mut data: &[u8], emit: &mut impl FnMut(Frame<'_>)) {
        loop {
            // More than the limit is held (also after a reload lowered the limit): emit pieces.
            while self.buf.len() > self.max_line_length {
                let n = split_point(&self.buf, self.max_line_length);
                self.parts += 1;
                emit(Frame {
                    bytes: &self.buf[..n],
                    part: self.parts,
                    continued: true,
                    partial: false,
                });
                self.buf.drain(..n);
            }
            if data.is_empty() {
                return;
            }
            let room = self.max_line_length + 1 - self.buf.len();
            let take = room.min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
    }

    /// Emits a whole line (or the last piece of one), splitting it if it is too long.
    fn emit_line(&mut self, mut line: &[u8], partial: bool, emit: &mut impl FnMut(Frame<'_>)) {
        while line.len() > self.max_line_length {
            let n = split_point(line, self.max_line_length);
            self.parts += 1;
            emit(Frame {
                bytes: &line[..n],
                part: self.parts,
                continued: true,
                partial: false,
            });
            line = &line[n..];
        }
        let part = if self.parts > 0 { self.parts + 1 } else { 0 };
        self.parts = 0;
        emit(Frame {
            bytes: line,
            part,
            continued: false,
            partial,
        });
    }

    /// Gives back the memory of a long line once it is done, so idle clients cost little.
    fn shrink(&mut self) {
        if self.buf.capacity() > 4096 {
            self.buf = Vec::new();
        }
    }
}

/// The largest `n <= max` such that `bytes[..n]` does not end inside a UTF-8 character
/// (or `max` itself when the bytes there are not UTF-8 anyway).
fn split_point(bytes: &[u8], max: usize) -> usize {
    // A character is at most 4 bytes: look back over at most 3 bytes for its first byte.
    for back in 1..=3.min(max) {
        let b = bytes[max - back];
        if b & 0xc0 == 0x80 {
            continue; // a continuation byte: keep looking for the first byte
        }
        let len = match b {
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf7 => 4,
            _ => 1,
        };
        return if len > back { max - back } else { max };
    }
    max
}

/// The first LF or CR in `data`. Eight bytes at a time (SWAR): this runs over every byte a
/// client sends.
fn find_eol(data: &[u8]) -> Option<usize> {
    let mut chunks = data.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let x = swar::word(chunk);
        let found = swar::equal(x, b'\n') | swar::equal(x, b'\r');
        if found != 0 {
            return Some(offset + swar::first(found));
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == b'\n' || b == b'\r')
        .map(|i| offset + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_line_end_search_agrees_with_the_byte_by_byte_one() {
        let slow = |d: &[u8]| d.iter().position(|&b| b == b'\n' || b == b'\r');
        for len in 0..24 {
            for pos in 0..len {
                for v in 0..=255u8 {
                    let mut data = vec![b'a'; len];
                    data[pos] = v;
                    assert_eq!(super::find_eol(&data), slow(&data), "{data:?}");
                    // Another end after it must not hide it.
                    if pos + 1 < len {
                        data[pos + 1] = b'\n';
                        assert_eq!(super::find_eol(&data), slow(&data), "{data:?}");
                    }
                }
            }
        }
        let mut seed = 0x9e37_79b9_u32;
        for _ in 0..20_000 {
            let len = (seed % 40) as usize;
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    [b'x', b'\n', b'\r', 0, 0x0b, 0x8a, 0x8d, 0xff, 0x0c][(seed >> 16) as usize % 9]
                })
                .collect();
            assert_eq!(super::find_eol(&data), slow(&data), "{data:?}");
        }
    }

    /// What the framer emits for `chunks`, then for `finish`, as (text, part, continued, partial).
    fn frames(mode: Framing, max: usize, chunks: &[&[u8]]) -> Vec<(String, u32, bool, bool)> {
        let mut framer = Framer::new(mode, max);
        let mut out = Vec::new();
        let mut collect = |f: Frame<'_>| {
            out.push((
                String::from_utf8_lossy(f.bytes).into_owned(),
                f.part,
                f.continued,
                f.partial,
            ))
        };
        for c in chunks {
            framer.push(c, &mut collect);
        }
        framer.finish(&mut collect);
        out
    }

    fn texts(chunks: &[&[u8]]) -> Vec<String> {
        frames(Framing::Line, 4096, chunks)
            .into_iter()
            .map(|f| f.0)
            .collect()
    }

    fn whole(s: &str) -> (String, u32, bool, bool) {
        (s.to_string(), 0, false, false)
    }

    #[test]
    fn the_classroom_client_message_is_one_line() {
        assert_eq!(
            frames(Framing::Line, 4096, &[b"abcdefg!\n"]),
            vec![whole("abcdefg!")]
        );
    }

    #[test]
    fn lines_split_across_reads_are_joined() {
        assert_eq!(texts(&[b"hel", b"lo\nwor", b"ld\n"]), ["hello", "world"]);
        assert_eq!(texts(&[b"a\nb\nc\n"]), ["a", "b", "c"]);
    }

    #[test]
    fn crlf_lf_and_lone_cr_all_end_a_line() {
        assert_eq!(texts(&[b"a\r\nb\nc\rd\n"]), ["a", "b", "c", "d"]);
        // CR at the end of one read, LF at the start of the next: one line end, not two.
        assert_eq!(texts(&[b"a\r", b"\nb\n"]), ["a", "b"]);
        assert_eq!(texts(&[b"a\r", b"b\r"]), ["a", "b"]);
        assert_eq!(texts(&[b"\r\r\n"]), ["", ""]);
    }

    #[test]
    fn empty_lines_are_kept() {
        assert_eq!(texts(&[b"\n\nx\n"]), ["", "", "x"]);
    }

    #[test]
    fn a_partial_final_line_is_marked() {
        assert_eq!(
            frames(Framing::Line, 4096, &[b"done\nhalf"]),
            vec![whole("done"), ("half".into(), 0, false, true)]
        );
        assert_eq!(
            frames(Framing::Line, 4096, &[b"done\n"]),
            vec![whole("done")]
        );
    }

    #[test]
    fn long_lines_are_split_into_marked_pieces_never_dropped() {
        assert_eq!(
            frames(Framing::Line, 4, &[b"abcdefghij\nxy\n"]),
            vec![
                ("abcd".into(), 1, true, false),
                ("efgh".into(), 2, true, false),
                ("ij".into(), 3, false, false),
                whole("xy"),
            ]
        );
        // The same line arriving a byte at a time gives the same pieces.
        let bytes: Vec<&[u8]> = b"abcdefghij\n".chunks(1).collect();
        assert_eq!(
            frames(Framing::Line, 4, &bytes),
            vec![
                ("abcd".into(), 1, true, false),
                ("efgh".into(), 2, true, false),
                ("ij".into(), 3, false, false),
            ]
        );
        // Exactly the limit is not split.
        assert_eq!(frames(Framing::Line, 4, &[b"abcd\n"]), vec![whole("abcd")]);
        assert_eq!(
            frames(Framing::Line, 4, &[b"abcdef"]),
            vec![
                ("abcd".into(), 1, true, false),
                ("ef".into(), 2, false, true)
            ]
        );
    }

    #[test]
    fn pieces_never_split_a_utf8_character() {
        // "aé€" is 1 + 2 + 3 bytes; with a limit of 4 the euro sign must not be cut.
        let got = frames(Framing::Line, 4, &["aé€x\n".as_bytes()]);
        assert_eq!(got[0].0, "aé");
        assert_eq!(got[1].0, "€x");
    }

    #[test]
    fn memory_is_bounded_by_the_line_limit() {
        let mut framer = Framer::new(Framing::Line, 100);
        let chunk = [b'z'; 1000];
        let mut pieces = 0;
        for _ in 0..1000 {
            framer.push(&chunk, |f| {
                assert!(f.bytes.len() <= 100);
                pieces += 1;
            });
            assert!(framer.buffered() <= 101);
        }
        assert_eq!(pieces, 10_000 - 1);
    }

    #[test]
    fn a_lower_limit_applies_to_the_line_in_progress() {
        let mut framer = Framer::new(Framing::Line, 100);
        let mut got = Vec::new();
        framer.push(&[b'a'; 50], |f| got.push(f.bytes.len()));
        framer.reconfigure(Framing::Line, 8);
        framer.push(b"bb\n", |f| got.push(f.bytes.len()));
        assert_eq!(got, [8, 8, 8, 8, 8, 8, 4]);
        assert_eq!(framer.buffered(), 0);
    }

    #[test]
    fn raw_mode_emits_one_piece_per_read() {
        assert_eq!(
            frames(Framing::Raw, 4096, &[b"abc\r\n", b"de\nf\n", b"\n"]),
            vec![whole("abc"), whole("de\nf"), whole("")]
        );
    }

    #[test]
    fn split_point_backs_off_to_a_character_boundary() {
        assert_eq!(split_point("ab€".as_bytes(), 4), 2);
        assert_eq!(split_point(b"abcdef", 4), 4);
        assert_eq!(split_point(b"\xff\xff\xff\xff\xff", 4), 4);
        assert_eq!(split_point("€€".as_bytes(), 4), 3);
    }
}
