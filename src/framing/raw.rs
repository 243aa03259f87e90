//! Raw framing: every read is one piece (less its trailing CRs and LFs), as the classroom
//! server printed it. Owns nothing between reads: raw mode is always at a frame boundary.

use super::pieces::Pieces;
use super::Frame;

/// Raw mode: the read, less its trailing CRs and LFs, as one piece, or in pieces if its entry
/// would be too long.
pub(super) fn push(pieces: &mut Pieces, data: &[u8], emit: &mut impl FnMut(Frame<'_>)) {
    let end = data
        .iter()
        .rposition(|&b| b != b'\n' && b != b'\r')
        .map_or(0, |i| i + 1);
    if !data.is_empty() {
        pieces.emit_line(&data[..end], false, emit);
    }
}

#[cfg(test)]
mod tests;
