//! Line framing: a line ends at LF, CRLF or a lone CR (the terminator is not part of the
//! line). Owns whether the last byte seen was a CR, so that the LF of a CRLF cut between two
//! reads ends nothing more. What is held of the line in progress is the [`Pieces`]'.

use super::pieces::Pieces;
use super::Frame;
use crate::swar;

/// The line framer's own state.
#[derive(Debug, Clone, Default)]
pub(super) struct LineFramer {
    /// The last byte seen was a CR, so an LF right after it ends nothing.
    pub(super) after_cr: bool,
}

impl LineFramer {
    /// Feeds `data`. With `switching` (another framing is to take over), returns what is left
    /// of `data` at the first line end, where it may.
    pub(super) fn push<'d>(
        &mut self,
        pieces: &mut Pieces,
        mut data: &'d [u8],
        switching: bool,
        emit: &mut impl FnMut(Frame<'_>),
    ) -> Option<&'d [u8]> {
        if self.after_cr && data.first() == Some(&b'\n') {
            data = &data[1..];
        }
        self.after_cr = false;
        if switching && pieces.at_boundary() {
            return Some(data);
        }
        while let Some(i) = find_eol(data) {
            pieces.end_line(&data[..i], emit, |pieces, line, emit| {
                pieces.emit_line(line, false, emit)
            });
            let ended_by_cr = data[i] == b'\r';
            data = &data[i + 1..];
            if ended_by_cr {
                match data.first() {
                    Some(b'\n') => data = &data[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            // One predictable branch per line; after a CR ending the read, the switch waits
            // for the next read, whose LF (if any) still belongs to this line's end.
            if switching && !self.after_cr {
                return Some(data);
            }
        }
        pieces.accumulate(data, emit);
        None
    }
}

/// The first LF or CR in `data`. Eight bytes at a time (SWAR): this runs over every byte a
/// client sends.
#[inline(always)]
pub(super) fn find_eol(data: &[u8]) -> Option<usize> {
    swar::find(
        data,
        |x| swar::equal(x, b'\n') | swar::equal(x, b'\r'),
        |b| b == b'\n' || b == b'\r',
    )
}

#[cfg(test)]
mod tests;
