//! The line rule the README documents, written independently of `src/framing.rs`: the
//! oracle the fault suite (`tests/faults.rs`) and the framing and datagram fuzz targets
//! (`fuzz/fuzz_targets/framing.rs`, `datagram.rs`, which include this file by path) check
//! the framer against.

/// A line's bytes and whether it is partial (unended).
pub type Line = (Vec<u8>, bool);

/// The lines of `data`: LF, CRLF or a lone CR ends a line and is not part of it; an unended
/// last line is partial.
pub fn documented_lines(data: &[u8]) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut cur = Vec::new();
    let mut i = 0;
    while i < data.len() {
        match data[i] {
            b'\n' => lines.push((std::mem::take(&mut cur), false)),
            b'\r' => {
                lines.push((std::mem::take(&mut cur), false));
                if data.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b => cur.push(b),
        }
        i += 1;
    }
    if !cur.is_empty() {
        lines.push((cur, true));
    }
    lines
}

/// The pieces a line is logged in, as the README documents it: each piece's MESSAGE — the
/// peer's `label: ` prefix (`label_len` bytes without the `: `), the escaped text and its mark —
/// is at most `max_line_length` bytes. A piece followed by more is marked ` [continued]`
/// (12 bytes), the last piece of a `partial` line ` [partial]` (10 bytes), any other last
/// piece (or a whole line) not at all. Each piece holds as much as fits, never ends inside a
/// UTF-8 character, and holds at least 4 bytes of escaped text (at least one character):
/// a limit too small for the prefix and mark still logs every byte.
pub fn documented_pieces(
    line: &[u8],
    partial: bool,
    label_len: usize,
    max_line_length: usize,
) -> Vec<Vec<u8>> {
    let room = max_line_length.saturating_sub(label_len + 2).max(4);
    let continued_limit = room.saturating_sub(12).max(4);
    let last_limit = room.saturating_sub(if partial { 10 } else { 0 }).max(4);
    // The line as units that escape on their own: valid characters and invalid bytes.
    let mut units: Vec<(&[u8], usize)> = Vec::new();
    let mut at = 0;
    for chunk in line.utf8_chunks() {
        for c in chunk.valid().chars() {
            let bytes = &line[at..at + c.len_utf8()];
            units.push((bytes, tcp_listener::escape::escaped_len(bytes)));
            at += c.len_utf8();
        }
        for _ in chunk.invalid() {
            units.push((&line[at..at + 1], 4));
            at += 1;
        }
    }
    let mut pieces = Vec::new();
    let mut rest = &units[..];
    let mut total: usize = rest.iter().map(|u| u.1).sum();
    loop {
        // What is left fits as the last piece (one character always does).
        if total <= last_limit || rest.len() <= 1 {
            pieces.push(rest.iter().flat_map(|u| u.0.to_vec()).collect());
            return pieces;
        }
        let (mut used, mut n) = (0, 0);
        while n < rest.len() && (n == 0 || used + rest[n].1 <= continued_limit) {
            used += rest[n].1;
            n += 1;
        }
        pieces.push(rest[..n].iter().flat_map(|u| u.0.to_vec()).collect());
        rest = &rest[n..];
        total -= used;
    }
}
