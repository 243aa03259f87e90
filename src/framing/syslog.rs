//! In syslog mode (RFC 6587 syslog over TCP) the stream is a sequence of frames, and each
//! frame's first byte says how it is framed, as rsyslog and syslog-ng decide it, so one
//! connection may mix the two:
//!
//! - **Octet counting** (RFC 6587 3.4.1): a first byte `1`–`9` starts `MSG-LEN SP SYSLOG-MSG`.
//!   If the digits (no leading zero, so the length is at least 1) are followed by a space and
//!   the length is at most [`MAX_FRAME`] (200,000, rsyslog's default), the next MSG-LEN bytes
//!   are one frame, however the reads cut them; whatever they hold (LF, NUL, CR included) is
//!   part of the frame, except that one trailer at its very end (LF, CRLF or NUL: rsyslog's
//!   RFC 5424 forwarding template puts an LF inside the count) is not part of the message.
//!   A frame longer than the line limit is emitted in `[continued]` pieces as it arrives,
//!   like a long line, and the frame after it is read in sync.
//! - **Non-transparent framing** (RFC 6587 3.4.2, "LF framing"): any other first byte, and the
//!   fall-back for a length that is malformed (a non-digit before the space, a leading zero)
//!   or larger than [`MAX_FRAME`] (detected as soon as the digits exceed it, so at most six
//!   digits are held). The frame runs to its trailer, LF or NUL (RFC 6587 names NUL as the
//!   other trailer seen in practice; in line mode a NUL is data; which one, below); a CR
//!   right before that trailer is dropped (CRLF senders), a CR anywhere else is data. A
//!   fallen-back frame's bytes, digits included, are logged as they came: nothing is lost,
//!   and a malformed or oversized count never makes the connection wait for the bytes it
//!   announced. Long frames are split into `[continued]` pieces exactly like long lines.
//! - **LF or NUL** ([`Terminator`]). A sender that ends its messages with NUL may send LFs
//!   inside them (Python's `logging.handlers.SysLogHandler` sends a traceback so), one that
//!   ends them with LF cannot; nothing says in advance which a connection's sender is, so the
//!   framer learns it from the first message that either ends. A NUL that ends a message
//!   means NUL framing: from then on only a NUL ends a frame, and an LF is part of the message.
//!   An LF that ends a message and is followed by the start of a message (`<`, or `1`–`9` of
//!   a count), in the same read or the next, means LF framing: from then on an LF or a NUL
//!   ends a frame. Until then, an LF ends a frame that starts with `<` only if the next byte
//!   starts a message or has not arrived yet (the LF is the last byte of the read: a sender
//!   that ends messages with LF sends one and waits, and cannot be waited for); any other LF
//!   in it is part of the message. An LF ends a frame that does not start with `<` (plain
//!   text), unless it is the rest of one cut that way. The limits: a NUL-ended first message
//!   holding an LF is cut there if a read ends right after that LF (the rest, from the LF on,
//!   is one more message, ended by its NUL), or if the line after that LF starts with `<` or
//!   `1`–`9` (which also makes the connection LF-framed); and until the terminator is known,
//!   an LF-ended message starting with `<` that holds an LF (`logger` sends one so) or is
//!   followed by anything but a message (blank lines) is kept with what follows, if it came
//!   in the same read. So the pieces of a stream do not depend on how reads cut it once the
//!   terminator is known, nor before it, as long as no read ends right after an LF.
//! - An empty frame (a bare LF, e.g. the LF some senders add after an octet-counted frame, or
//!   a bare CRLF or NUL, or a counted frame holding only its trailer) is framing noise, not a
//!   message: it produces no piece.
//! - At the end of the connection ([`super::Framer::finish`]) what arrived of a frame is one
//!   piece marked partial: the bytes of a counted frame so far (nothing if none arrived after
//!   its count), the digits of an unfinished count, or the LF frame so far.
//!
//! Syslog mode is for syslog senders: a plain-text line that starts with digits and a space
//! (`12 files copied`) reads as an octet count, as it does for rsyslog and syslog-ng.
//!
//! Syslog mode holds at most `room + 2` bytes: what is held of an LF frame or of a counted
//! one, plus the last two bytes of a counted frame, held back until the frame is complete
//! because they may be its trailer (the digits of a length are at most six).
//!
//! Owns where in a frame the stream is ([`SyslogFramer`]: octet counting) and, in its
//! fallback for every frame that is not counted ([`LfFramer`]: non-transparent framing), the
//! terminator learned so far and a CR held back at the end of a read. What is held of the
//! frame in progress is the [`Pieces`]'.

use super::pieces::Pieces;
use super::Frame;
use crate::swar;

/// The largest octet count believed (rsyslog's default `MaxFrameSize`): a larger count is read
/// as the start of an LF-framed frame. Memory does not depend on it (a counted frame is cut
/// into pieces as it arrives); it bounds how much of the stream a mistaken count (a plain line
/// starting `150000 rows`) can take as one message.
pub const MAX_FRAME: usize = 200_000;

// A count's value so far fits the 32 bits a connection keeps it in.
const _: () = assert!(MAX_FRAME <= u32::MAX as usize / 10);

/// The longest trailer of a counted frame (CRLF).
const TRAILER_MAX: usize = 2;

/// Octet counting, with non-transparent framing as its fallback.
#[derive(Debug, Clone)]
pub(super) struct SyslogFramer {
    /// Where in a frame the stream is.
    state: SyslogState,
    /// The framer of every frame that is not octet-counted.
    lf: LfFramer,
}

/// Where a syslog-mode stream is; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SyslogState {
    /// Between frames: the next byte decides the framing of the next frame.
    Start,
    /// Reading the digits of an octet count (held in `buf`), with their value so far (at
    /// most [`MAX_FRAME`]: 32 bits keep an idle connection small).
    Length(u32),
    /// Reading an octet-counted frame (held in `buf`), with the bytes still to come.
    Counted(u32),
    /// Reading an LF-framed (or NUL-framed) frame (held in `buf`, like a line).
    /// `may_hold_lf`: while the terminator is not known, an LF ends it only if the next byte
    /// starts a message (see [`LfFramer::frame_end`]): it starts with `<`, as a syslog
    /// message's PRI, or it is the rest of one whose read ended right after an LF.
    Lf { may_hold_lf: bool },
}

/// Non-transparent framing (RFC 6587 3.4.2): a frame ends at LF or NUL, as learned.
#[derive(Debug, Clone)]
pub(super) struct LfFramer {
    /// Which byte ends a frame, as learned so far.
    terminator: Terminator,
    /// A CR that ended a read inside a frame, held back (not in `buf`) until the next byte
    /// says whether it is the CR of a CRLF.
    after_cr: bool,
}

/// Syslog mode: which byte ends a frame that is not octet-counted on this connection, learned
/// from the stream (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Terminator {
    /// Not known yet.
    Unknown,
    /// Not known yet, and the last byte was an LF that ended a message: the next byte says
    /// whether the sender frames with LF (`<` or `1`–`9`, the start of a next message). `cut`:
    /// a message that could hold LFs, ended there because its read ended (else the next byte
    /// would have been the start of a message): if no message starts after it, what follows is
    /// its rest, which may hold LFs too.
    AfterLf { cut: bool },
    /// LF or NUL ends a frame.
    Lf,
    /// NUL ends a frame; an LF is part of the message.
    Nul,
}

impl SyslogFramer {
    pub(super) fn new() -> SyslogFramer {
        SyslogFramer {
            state: SyslogState::Start,
            lf: LfFramer {
                terminator: Terminator::Unknown,
                after_cr: false,
            },
        }
    }

    /// What is carried to another process (see [`super::FramerState`]): the state as a tag
    /// and value, the terminator, and whether a CR is held back.
    pub(super) fn save(&self) -> ((u8, u64), Terminator, bool) {
        let state = match self.state {
            SyslogState::Start => (0, 0),
            SyslogState::Length(n) => (1, n.into()),
            SyslogState::Counted(n) => (2, n.into()),
            SyslogState::Lf { may_hold_lf } => (3, may_hold_lf.into()),
        };
        (state, self.lf.terminator, self.lf.after_cr)
    }

    /// The framer [`SyslogFramer::save`] described (checked: a state that no framer can be
    /// in is refused).
    pub(super) fn restore(
        state: (u8, u64),
        terminator: Terminator,
        after_cr: bool,
    ) -> Result<SyslogFramer, String> {
        let count = |n: u64| -> Result<u32, String> {
            u32::try_from(n)
                .ok()
                .filter(|&n| n as usize <= MAX_FRAME)
                .ok_or_else(|| format!("an octet count of {n}, over {MAX_FRAME}"))
        };
        let state = match state {
            (0, _) => SyslogState::Start,
            (1, n) => SyslogState::Length(count(n)?),
            (2, n) => SyslogState::Counted(count(n)?),
            (3, may_hold_lf @ (0 | 1)) => SyslogState::Lf {
                may_hold_lf: may_hold_lf == 1,
            },
            (tag, value) => return Err(format!("unknown syslog framing state {tag} ({value})")),
        };
        Ok(SyslogFramer {
            state,
            lf: LfFramer {
                terminator,
                after_cr,
            },
        })
    }

    /// Back between frames (another framing takes over, or the stream ended).
    pub(super) fn back_to_start(&mut self) {
        self.state = SyslogState::Start;
    }

    /// The end of the stream: a CR held back is part of the cut frame; what is held of it is
    /// then the [`Pieces`]' to emit as partial.
    pub(super) fn finish(&mut self, pieces: &mut Pieces, emit: &mut impl FnMut(Frame<'_>)) {
        if self.lf.after_cr && matches!(self.state, SyslogState::Lf { .. }) {
            // A CR held back at the end of the last read: part of the cut frame.
            pieces.accumulate(b"\r", emit);
        }
        self.forget_cr();
    }

    /// Back between frames, with no CR held back.
    pub(super) fn forget_cr(&mut self) {
        self.state = SyslogState::Start;
        self.lf.after_cr = false;
    }

    /// Feeds `data` (see the module documentation). With `switching` (another framing is to
    /// take over), returns what is left of `data` at the first frame boundary.
    pub(super) fn push<'d>(
        &mut self,
        pieces: &mut Pieces,
        mut data: &'d [u8],
        switching: bool,
        emit: &mut impl FnMut(Frame<'_>),
    ) -> Option<&'d [u8]> {
        while let Some(&first) = data.first() {
            match self.state {
                SyslogState::Start => {
                    if switching {
                        return Some(data);
                    }
                    let rest_of_cut = self.lf.learn_from_next(first);
                    self.state = if matches!(first, b'1'..=b'9') {
                        SyslogState::Length(0)
                    } else {
                        SyslogState::Lf {
                            may_hold_lf: first == b'<' || rest_of_cut,
                        }
                    };
                }
                SyslogState::Length(len) => {
                    let mut len = len as usize;
                    let mut i = 0;
                    self.state = loop {
                        match data.get(i) {
                            None => {
                                pieces.buf.extend_from_slice(data);
                                data = &[];
                                break SyslogState::Length(len as u32);
                            }
                            Some(b' ') => {
                                // The length and its space are framing, not message.
                                pieces.buf.clear();
                                data = &data[i + 1..];
                                break SyslogState::Counted(len as u32);
                            }
                            Some(&d) if d.is_ascii_digit() => {
                                len = len * 10 + usize::from(d - b'0');
                                i += 1;
                                if len > MAX_FRAME {
                                    pieces.accumulate(&data[..i], emit);
                                    data = &data[i..];
                                    break SyslogState::Lf { may_hold_lf: false };
                                }
                            }
                            Some(_) => {
                                // Not a length after all: the digits start an LF frame.
                                pieces.accumulate(&data[..i], emit);
                                data = &data[i..];
                                break SyslogState::Lf { may_hold_lf: false };
                            }
                        }
                    };
                }
                SyslogState::Counted(remaining) => {
                    let remaining = remaining as usize;
                    if pieces.at_boundary() && data.len() >= remaining {
                        // The whole frame is in this read: no copy.
                        let (frame, rest) = data.split_at(remaining);
                        emit_counted(pieces, frame, emit);
                        data = rest;
                        self.state = SyslogState::Start;
                    } else {
                        // Pieces are cut as the bytes come, like a long line's, except the
                        // frame's last two bytes: held until the frame is complete, they may
                        // be its trailer (LF, CRLF, NUL), which is not message.
                        let take = remaining.min(data.len());
                        let (chunk, rest) = data.split_at(take);
                        data = rest;
                        let before_trailer = take.min(remaining.saturating_sub(TRAILER_MAX));
                        if before_trailer > 0 {
                            // (Nothing is held back yet: it would be cut into a piece.)
                            pieces.accumulate(&chunk[..before_trailer], emit);
                        }
                        pieces.buf.extend_from_slice(&chunk[before_trailer..]);
                        self.state = if take == remaining {
                            let mut held = std::mem::take(&mut pieces.buf);
                            emit_counted(pieces, &held, emit);
                            held.clear();
                            pieces.buf = held;
                            pieces.shrink();
                            SyslogState::Start
                        } else {
                            SyslogState::Counted((remaining - take) as u32)
                        };
                    }
                }
                SyslogState::Lf { may_hold_lf } => {
                    let rest = self.lf.push(pieces, data, may_hold_lf, emit)?;
                    data = rest;
                    self.state = SyslogState::Start;
                }
            }
        }
        None
    }
}

impl LfFramer {
    /// At the first byte of a frame: if an LF ended the last message and the terminator is
    /// not known yet, this byte says whether it was the sender's terminator (the next message
    /// starts right after it). Returns whether the frame is the rest of a message cut after
    /// an LF (so it may hold LFs too).
    fn learn_from_next(&mut self, first: u8) -> bool {
        let mut rest_of_cut = false;
        if let Terminator::AfterLf { cut } = self.terminator {
            self.terminator = if matches!(first, b'<' | b'1'..=b'9') {
                Terminator::Lf
            } else {
                rest_of_cut = cut;
                Terminator::Unknown
            };
        }
        rest_of_cut
    }

    /// Feeds `data` to the frame in progress. Returns what follows its trailer if it ended.
    fn push<'d>(
        &mut self,
        pieces: &mut Pieces,
        data: &'d [u8],
        may_hold_lf: bool,
        emit: &mut impl FnMut(Frame<'_>),
    ) -> Option<&'d [u8]> {
        let end = self.frame_end(data, may_hold_lf);
        if self.after_cr {
            // A CR ended the last read: dropped if the trailer follows at once, else it was
            // data.
            self.after_cr = false;
            if end != Some(0) {
                pieces.accumulate(b"\r", emit);
            }
        }
        let Some(i) = end else {
            // No end yet. A CR ending the read is held back (as `after_cr`) so that a CRLF
            // cut between reads is not split across two pieces.
            let (body, cr) = match data {
                [body @ .., b'\r'] => (body, true),
                _ => (data, false),
            };
            pieces.accumulate(body, emit);
            self.after_cr = cr;
            return None;
        };
        // A CR right before the trailer is dropped before it is held, so that it cannot push
        // what is held over the limit into one more piece.
        let body = &data[..i];
        let body = body.strip_suffix(b"\r").unwrap_or(body);
        let message = !body.is_empty() || !pieces.at_boundary();
        if self.terminator == Terminator::Unknown && message {
            // The first message ended by LF or NUL: a NUL says which at once, an LF once the
            // next byte is known.
            self.terminator = if data[i] == 0 {
                Terminator::Nul
            } else {
                Terminator::AfterLf { cut: may_hold_lf }
            };
        }
        pieces.end_line(body, emit, emit_lf_framed);
        Some(&data[i + 1..])
    }

    /// Where the LF- or NUL-framed frame in progress ends in `data` (the index of its
    /// terminator), by the terminator learned so far: LF or NUL; NUL only; or, not known yet,
    /// a NUL, or an LF that ends it for sure. In a frame that may hold LFs (`may_hold_lf`: it
    /// starts with `<`, or is the rest of one) an LF ends it only if the next byte is the start
    /// of a next message (`<` or `1`–`9`) or if none has arrived yet (the last byte of the
    /// read: a sender that ends its messages with LF sends one and waits, and so cannot be
    /// waited for); any other LF is part of the message, as in a traceback sent NUL-terminated.
    fn frame_end(&self, data: &[u8], may_hold_lf: bool) -> Option<usize> {
        match self.terminator {
            Terminator::Lf | Terminator::AfterLf { .. } => find_trailer(data),
            Terminator::Nul => find_nul(data),
            Terminator::Unknown => {
                let mut from = 0;
                loop {
                    let i = from + find_trailer(&data[from..])?;
                    if data[i] == 0 || !may_hold_lf {
                        return Some(i);
                    }
                    match data.get(i + 1) {
                        None | Some(b'<' | b'1'..=b'9') => return Some(i),
                        Some(_) => from = i + 1,
                    }
                }
            }
        }
    }
}

/// Emits the end of an octet-counted frame (all of it, or what follows its pieces already
/// emitted), without its trailer; an empty frame is noise.
fn emit_counted(pieces: &mut Pieces, frame: &[u8], emit: &mut impl FnMut(Frame<'_>)) {
    let frame = match frame {
        [rest @ .., b'\r', b'\n'] | [rest @ .., b'\n'] | [rest @ .., 0] => rest,
        _ => frame,
    };
    // Empty but after pieces: the last piece must still say the frame has ended.
    if !frame.is_empty() || pieces.parts > 0 {
        pieces.emit_line(frame, false, emit);
    }
}

/// Emits the end of an LF-framed frame (its trailer and a CR before it already removed); an
/// empty frame is noise.
fn emit_lf_framed<E: FnMut(Frame<'_>)>(pieces: &mut Pieces, frame: &[u8], emit: &mut E) {
    // Empty but after pieces: the last piece must still say the frame has ended.
    if !frame.is_empty() || pieces.parts > 0 {
        pieces.emit_line(frame, false, emit);
    }
}

/// The first NUL in `data`: the end of a NUL-framed syslog frame. Eight bytes at a time,
/// like [`super::line::find_eol`].
fn find_nul(data: &[u8]) -> Option<usize> {
    swar::find(data, |x| swar::below(x, 1), |b| b == 0)
}

/// The first LF or NUL in `data`: the end of an LF-framed syslog frame. Eight bytes at a
/// time, like [`super::line::find_eol`].
pub(super) fn find_trailer(data: &[u8]) -> Option<usize> {
    swar::find(
        data,
        |x| swar::equal(x, b'\n') | swar::below(x, 1),
        |b| b == b'\n' || b == 0,
    )
}

#[cfg(test)]
mod tests;
