//! Cuts a client's byte stream into the pieces that become journal entries: one framer per
//! framing behind one [`Framer`].
//!
//! - [`line`]: a line ends at LF, CRLF or a lone CR (the terminator is not part of the line).
//! - [`raw`]: every read is one piece, as the classroom server printed it.
//! - [`syslog`]: RFC 6587 syslog over TCP, octet counting with non-transparent (LF or NUL)
//!   framing as its fallback.
//!
//! All three cut a line (read, frame) whose entry would be too long into pieces that fit the
//! room ([`pieces`]: ` [continued]` and ` [partial]` marks, at least [`MIN_PIECE`] bytes).
//!
//! This module owns what they share: the [`Frame`] a piece is, the framing in force and the
//! one to take over, and what is carried to another process ([`FramerState`]). A change of
//! framing by [`Framer::reconfigure`] takes effect at the next frame boundary, so no frame is
//! ever cut by two framings; a change of the room applies at once.

use crate::config::Framing;

mod line;
mod pieces;
mod raw;
mod syslog;

use line::LineFramer;
use pieces::Pieces;
use syslog::SyslogFramer;
pub use syslog::{Terminator, MAX_FRAME};

/// The least escaped text a piece holds, however small the room (a small `max_line_length`
/// and a long peer address leave none): 4 bytes, any UTF-8 character.
pub const MIN_PIECE: usize = 4;

/// Marks a piece of a line: `[continued]` when more pieces follow, `[partial]` when the
/// connection ended (or the daemon stopped) before the line did. The framer leaves room for
/// them; [`crate::entry`] writes them.
pub const CONTINUED_MARK: &str = " [continued]";
pub const PARTIAL_MARK: &str = " [partial]";

/// One piece of client data, ready to be escaped and logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub bytes: &'a [u8],
    /// 0 for a whole line (or syslog message); 1, 2, … for the pieces of a line longer than
    /// the limit.
    pub part: u32,
    /// More pieces of the same line follow.
    pub continued: bool,
    /// The connection ended (or the daemon stopped) before the end of this line.
    pub partial: bool,
    /// The framing that cut this piece. After a reload changed `framing`, the pieces of the
    /// line or frame in progress still come from the old framing: log each piece by this,
    /// not by the configuration (only `Syslog` pieces have a header to parse).
    pub framing: Framing,
}

/// The most bytes of one line a carried-over framer may hold (the largest `max_line_length`
/// any version allowed: 16 MiB before issue 17, 4 MiB since), whatever the room of the
/// configuration it comes back under.
const MAX_CARRIED_LINE: usize = 16 << 20;

/// The framer of one connection: the framing in force ([`Pieces::mode`]) and the state of
/// each framer (only the one in force holds anything but what it learned of the stream).
#[derive(Debug, Clone)]
pub struct Framer {
    /// A framing set by `reconfigure`, to take over at the next frame boundary.
    next_mode: Option<Framing>,
    /// The line or frame in progress, cut into pieces.
    pieces: Pieces,
    line: LineFramer,
    syslog: SyslogFramer,
}

/// What a framer holds between two reads, to carry it to another process (systemd's file
/// descriptor store, see `fdstore.rs`): the framing, the bytes of the line or frame in
/// progress, and where it is in them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FramerState {
    pub mode: Framing,
    pub next_mode: Option<Framing>,
    pub buf: Vec<u8>,
    pub parts: u32,
    /// Syslog mode: the host's room in the pieces after the first (see `Framer`).
    pub extra: u16,
    pub after_cr: bool,
    /// The syslog state: 0 between frames, 1 in a count (with its value so far), 2 in a
    /// counted frame (with the bytes still to come), 3 in an LF or NUL frame (with 1 if it
    /// may hold LFs while the terminator is not known, else 0).
    pub syslog: (u8, u64),
    /// Syslog mode: the terminator learned so far.
    pub terminator: Terminator,
}

impl Framer {
    /// What this framer holds, to be carried over (see [`FramerState`]).
    pub fn save(&self) -> FramerState {
        let (syslog, terminator, syslog_after_cr) = self.syslog.save();
        FramerState {
            mode: self.pieces.mode,
            next_mode: self.next_mode,
            buf: self.pieces.buf.clone(),
            parts: self.pieces.parts,
            extra: self.pieces.extra,
            // Only the framer in force may have a CR held back.
            after_cr: self.line.after_cr || syslog_after_cr,
            syslog,
            terminator,
        }
    }

    /// A framer that goes on from `state` (checked: a state that no framer can be in is
    /// refused), with the room of the configuration in force now.
    pub fn restore(state: FramerState, room: usize) -> Result<Framer, String> {
        let in_syslog = state.mode == Framing::Syslog;
        let syslog =
            SyslogFramer::restore(state.syslog, state.terminator, state.after_cr && in_syslog)?;
        if state.buf.len() > MAX_CARRIED_LINE {
            return Err(format!(
                "{} bytes held for one line, more than any line limit",
                state.buf.len()
            ));
        }
        let mut framer = Framer::new(state.mode, room.max(MIN_PIECE));
        framer.next_mode = state.next_mode;
        framer.pieces.buf = state.buf;
        framer.pieces.parts = state.parts;
        framer.pieces.extra = state.extra;
        framer.line.after_cr = state.after_cr && !in_syslog;
        framer.syslog = syslog;
        Ok(framer)
    }

    /// A framer in `mode` whose pieces fit `room` bytes of escaped text and mark
    /// ([`crate::entry::text_room`]; at least [`MIN_PIECE`]).
    pub fn new(mode: Framing, room: usize) -> Framer {
        Framer {
            next_mode: None,
            pieces: Pieces::new(mode, room),
            line: LineFramer::default(),
            syslog: SyslogFramer::new(),
        }
    }

    /// Applies new settings. The limit applies at once (a line in progress keeps what it has
    /// and is split at the new limit); a new framing applies from the next frame boundary
    /// (the end of the line or syslog frame in progress; raw mode is always at a boundary).
    pub fn reconfigure(&mut self, mode: Framing, room: usize) {
        self.pieces.set_room(room);
        self.next_mode = (mode != self.pieces.mode).then_some(mode);
    }

    /// Bytes held for a line not yet ended.
    pub fn buffered(&self) -> usize {
        self.pieces.buf.len()
    }

    /// Feeds bytes read from the client; `emit` is called for every complete piece.
    pub fn push(&mut self, mut data: &[u8], mut emit: impl FnMut(Frame<'_>)) {
        loop {
            let switching = self.next_mode.is_some();
            let rest = match self.pieces.mode {
                Framing::Raw => {
                    if switching {
                        self.switch_mode();
                        continue;
                    }
                    raw::push(&mut self.pieces, data, &mut emit);
                    None
                }
                Framing::Line => self.line.push(&mut self.pieces, data, switching, &mut emit),
                Framing::Syslog => self
                    .syslog
                    .push(&mut self.pieces, data, switching, &mut emit),
            };
            // `Some`: a frame boundary with a new framing to take over; the rest goes to it.
            match rest {
                Some(rest) => {
                    self.switch_mode();
                    data = rest;
                }
                None => return,
            }
        }
    }

    /// One whole message that arrived as such (a UDP datagram's, see `udp/`): emitted as it
    /// is, in pieces if its entry would be too long, the last one marked `partial` if asked.
    /// Call it at a frame boundary only (nothing held), as `udp/` does with a framer of its
    /// own.
    pub fn push_message(&mut self, message: &[u8], partial: bool, mut emit: impl FnMut(Frame<'_>)) {
        debug_assert!(self.pieces.at_boundary());
        self.pieces.emit_line(message, partial, &mut emit);
    }

    /// Takes on the framing `reconfigure` asked for; called at a frame boundary only.
    fn switch_mode(&mut self) {
        if let Some(mode) = self.next_mode.take() {
            self.pieces.mode = mode;
            self.syslog.back_to_start();
        }
    }

    /// Emits what is held as a partial final line (connection closed or daemon stopping).
    pub fn finish(&mut self, mut emit: impl FnMut(Frame<'_>)) {
        if self.pieces.mode == Framing::Syslog {
            self.syslog.finish(&mut self.pieces, &mut emit);
        } else {
            self.syslog.forget_cr();
        }
        self.line.after_cr = false;
        self.pieces.finish(&mut emit);
    }
}

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
