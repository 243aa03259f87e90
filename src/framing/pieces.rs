//! Cutting a line (read, syslog frame) into pieces that fit the room: owns what is held of
//! the line in progress and how many of its pieces are out.
//!
//! A line whose entry would be too long is emitted in pieces, each carrying its part number
//! and whether more follows, so that every entry's MESSAGE — the peer's `label: ` prefix, the
//! escaped text ([`crate::escape`]) and the ` [continued]` or ` [partial]` mark — is at most
//! `max_line_length` bytes. The cutter is given the `room` that leaves for escaped text and
//! mark ([`crate::entry::text_room`]): a piece followed by more holds at most `room - 12`
//! bytes of escaped text ([`CONTINUED_MARK`]), a last piece `room`, a partial one `room - 10`
//! ([`PARTIAL_MARK`]); but never less than [`MIN_PIECE`], and always one character at least.
//! A piece never ends inside a UTF-8 character, and plain ASCII is measured eight bytes at a
//! time. It holds raw bytes (escaping only ever lengthens them, so a piece is never longer raw
//! than escaped): at most `room + 1` of a line, whatever the client sends.
//!
//! A long syslog message's pieces after the first have a longer MESSAGE than a line's: they
//! name the host the first piece named (`label host: text`, see
//! [`crate::syslog_message::write_message`]), so their room is smaller by
//! [`crate::syslog_message::continuation_extra`] of the first piece.

use super::{Frame, CONTINUED_MARK, MIN_PIECE, PARTIAL_MARK};
use crate::config::Framing;
use crate::escape::fitting_prefix;
use crate::syslog_message::continuation_extra;

/// The line in progress and the pieces of it already emitted.
#[derive(Debug, Clone)]
pub(super) struct Pieces {
    /// The framing cutting the lines: every piece says it ([`Frame::framing`]).
    pub(super) mode: Framing,
    /// Bytes of MESSAGE for a piece's escaped text and its mark (see the module documentation).
    room: usize,
    /// A whole line this long or shorter fits as one piece, escaped and marked partial or not.
    unmeasured: u32,
    /// What is held of the line in progress (and, in syslog mode, of a count or counted frame).
    pub(super) buf: Vec<u8>,
    /// Pieces of the current line already emitted.
    pub(super) parts: u32,
    /// Syslog mode: how much longer than a line's the MESSAGE of the pieces after the first
    /// of the frame being cut is (the host the first one names).
    pub(super) extra: u16,
}

impl Pieces {
    pub(super) fn new(mode: Framing, room: usize) -> Pieces {
        assert!(room >= MIN_PIECE, "a piece must hold any UTF-8 character");
        Pieces {
            mode,
            room,
            unmeasured: unmeasured(room),
            buf: Vec::new(),
            parts: 0,
            extra: 0,
        }
    }

    /// A new room, applied at once (a line in progress keeps what it has and is split at it).
    pub(super) fn set_room(&mut self, room: usize) {
        assert!(room >= MIN_PIECE, "a piece must hold any UTF-8 character");
        self.room = room;
        self.unmeasured = unmeasured(room);
    }

    /// Nothing of a line is held or out: a frame boundary.
    pub(super) fn at_boundary(&self) -> bool {
        self.buf.is_empty() && self.parts == 0
    }

    /// Emits what is held as a partial final line (connection closed or daemon stopping).
    pub(super) fn finish(&mut self, emit: &mut impl FnMut(Frame<'_>)) {
        if self.at_boundary() {
            return;
        }
        let buf = std::mem::take(&mut self.buf);
        self.emit_line(&buf, true, emit);
    }

    /// The most escaped text the next piece of the current line may hold: one followed by
    /// more (`mark` = [`CONTINUED_MARK`]), a last one (`""`) or a partial one
    /// ([`PARTIAL_MARK`]).
    fn limit(&self, mark: &str) -> usize {
        let extra = if self.parts > 0 {
            usize::from(self.extra)
        } else {
            0
        };
        self.room.saturating_sub(extra + mark.len()).max(MIN_PIECE)
    }

    /// Emits `line[..n]` as a piece followed by more; the first piece of a syslog frame says
    /// how much longer the MESSAGE of the following ones is.
    fn emit_continued(
        mode: Framing,
        parts: &mut u32,
        extra: &mut u16,
        piece: &[u8],
        emit: &mut impl FnMut(Frame<'_>),
    ) {
        if *parts == 0 {
            *extra = match mode {
                // At most 1 + 2 × 255 (an escaped MAX_HOSTNAME).
                Framing::Syslog => continuation_extra(piece).try_into().unwrap_or(u16::MAX),
                Framing::Line | Framing::Raw => 0,
            };
        }
        *parts += 1;
        emit(Frame {
            bytes: piece,
            part: *parts,
            continued: true,
            partial: false,
            framing: mode,
        });
    }

    /// Appends `data` to the line in progress, emitting pieces as soon as it is sure to be
    /// too long: when more raw bytes are held than a last piece may hold escaped.
    pub(super) fn accumulate(&mut self, mut data: &[u8], emit: &mut impl FnMut(Frame<'_>)) {
        loop {
            // Also after a reload made the room smaller.
            while self.buf.len() > self.limit("") {
                let n = fitting_prefix(&self.buf, self.limit(CONTINUED_MARK));
                Self::emit_continued(
                    self.mode,
                    &mut self.parts,
                    &mut self.extra,
                    &self.buf[..n],
                    emit,
                );
                self.buf.drain(..n);
            }
            if data.is_empty() {
                return;
            }
            let room = self.limit("") + 1 - self.buf.len();
            let take = room.min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
    }

    /// Emits a whole line (or the last piece of one), in pieces if it is too long.
    #[inline(always)]
    pub(super) fn emit_line(
        &mut self,
        line: &[u8],
        partial: bool,
        emit: &mut impl FnMut(Frame<'_>),
    ) {
        // The common case, a short whole line: escaping makes a byte at most 4 bytes long, so
        // it fits without being measured.
        if line.len() <= self.unmeasured as usize && self.parts == 0 {
            emit(Frame {
                bytes: line,
                part: 0,
                continued: false,
                partial,
                framing: self.mode,
            });
            return;
        }
        self.emit_pieces(line, partial, emit);
    }

    /// [`Pieces::emit_line`] for a line that may need cutting.
    #[inline(never)]
    fn emit_pieces(&mut self, mut line: &[u8], partial: bool, emit: &mut impl FnMut(Frame<'_>)) {
        let mark = if partial { PARTIAL_MARK } else { "" };
        loop {
            let last = self.limit(mark);
            // Escaping makes a byte at most 4 bytes long: a short line fits unmeasured.
            if line.len().saturating_mul(4) <= last || fitting_prefix(line, last) == line.len() {
                break;
            }
            let n = fitting_prefix(line, self.limit(CONTINUED_MARK));
            Self::emit_continued(
                self.mode,
                &mut self.parts,
                &mut self.extra,
                &line[..n],
                emit,
            );
            line = &line[n..];
        }
        let part = if self.parts > 0 { self.parts + 1 } else { 0 };
        self.parts = 0;
        self.extra = 0;
        emit(Frame {
            bytes: line,
            part,
            continued: false,
            partial,
            framing: self.mode,
        });
    }

    /// Emits the line in progress, ended by `tail`: `tail` itself when nothing is held (no
    /// copy), else what is held with `tail`, through `end` (which decides whether it is a
    /// piece at all).
    #[inline(always)]
    pub(super) fn end_line<E: FnMut(Frame<'_>)>(
        &mut self,
        tail: &[u8],
        emit: &mut E,
        end: impl FnOnce(&mut Pieces, &[u8], &mut E),
    ) {
        if self.buf.is_empty() {
            end(self, tail, emit);
        } else {
            self.accumulate(tail, emit);
            let mut held = std::mem::take(&mut self.buf);
            end(self, &held, emit);
            held.clear();
            self.buf = held;
            self.shrink();
        }
    }

    /// Gives back the memory of a long line once it is done, so idle clients cost little.
    pub(super) fn shrink(&mut self) {
        if self.buf.capacity() > 4096 {
            self.buf = Vec::new();
        }
    }
}

/// The longest whole line that fits `room` whatever its bytes: escaping makes a byte at most
/// 4 bytes long, and a partial line's mark is the longer one.
fn unmeasured(room: usize) -> u32 {
    let n = room.saturating_sub(PARTIAL_MARK.len()).max(MIN_PIECE) / 4;
    n.try_into().unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests;
