//! The line rule the README documents, written independently of `src/framing.rs`: the
//! oracle both the fault suite (`tests/faults.rs`) and the framing fuzz target
//! (`fuzz/fuzz_targets/framing.rs`, which includes this file by path) check the framer
//! against.

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
