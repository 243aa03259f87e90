//! Cuts a client's byte stream into the pieces that become journal entries.
//!
//! In line mode a line ends at LF, CRLF or a lone CR (the terminator is not part of the line).
//! In raw mode every read is one piece, as the classroom server printed it.
//!
//! **Pieces.** A line (read, syslog frame) whose entry would be too long is emitted in pieces,
//! each carrying its part number and whether more follows, so that every entry's MESSAGE —
//! the peer's `label: ` prefix, the escaped text ([`crate::escape`]) and the ` [continued]`
//! or ` [partial]` mark — is at most `max_line_length` bytes. The framer is given the
//! `room` that leaves for escaped text and mark ([`crate::entry::text_room`]): a piece
//! followed by more holds at most `room - 12` bytes of escaped text (` [continued]`), a last
//! piece `room`, a partial one `room - 10`; but never less than [`MIN_PIECE`], and always one
//! character at least. A piece never ends inside a UTF-8 character, and plain ASCII is
//! measured eight bytes at a time. The framer holds raw bytes (escaping only ever lengthens
//! them, so a piece is never longer raw than escaped): at most `room + 1` of a line,
//! whatever the client sends.
//!
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
//! - At the end of the connection ([`Framer::finish`]) what arrived of a frame is one piece
//!   marked partial: the bytes of a counted frame so far (nothing if none arrived after its
//!   count), the digits of an unfinished count, or the LF frame so far.
//!
//! Syslog mode is for syslog senders: a plain-text line that starts with digits and a space
//! (`12 files copied`) reads as an octet count, as it does for rsyslog and syslog-ng.
//!
//! A long syslog message's pieces after the first have a longer MESSAGE than a line's: they
//! name the host the first piece named (`label host: text`, see
//! [`crate::syslog_message::write_message`]), so their room is smaller by
//! [`crate::syslog_message::continuation_extra`] of the first piece.
//!
//! Syslog mode holds at most `room + 2` bytes: what is held of an LF frame or of a counted
//! one, plus the last two bytes of a counted frame, held back until the frame is complete
//! because they may be its trailer (the digits of a length are at most six).
//!
//! A change of framing by [`Framer::reconfigure`] takes effect at the next frame boundary,
//! so no frame is ever cut by two framings; a change of the room applies at once.

use crate::config::Framing;
use crate::entry::{CONTINUED_MARK, PARTIAL_MARK};
use crate::escape::fitting_prefix;
use crate::swar;
use crate::syslog_message::continuation_extra;

/// The least escaped text a piece holds, however small the room (a small `max_line_length`
/// and a long peer address leave none): 4 bytes, any UTF-8 character.
pub const MIN_PIECE: usize = 4;

/// The largest octet count believed (rsyslog's default `MaxFrameSize`): a larger count is read
/// as the start of an LF-framed frame. Memory does not depend on it (a counted frame is cut
/// into pieces as it arrives); it bounds how much of the stream a mistaken count (a plain line
/// starting `150000 rows`) can take as one message.
pub const MAX_FRAME: usize = 200_000;

// A count's value so far fits the 32 bits a connection keeps it in.
const _: () = assert!(MAX_FRAME <= u32::MAX as usize / 10);

/// The longest trailer of a counted frame (CRLF).
const TRAILER_MAX: usize = 2;

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

/// The most bytes of one line a carried-over framer may hold (the largest `max_line_length`),
/// whatever the room of the configuration it comes back under.
const MAX_CARRIED_LINE: usize = 16 << 20;

#[derive(Debug, Clone)]
pub struct Framer {
    mode: Framing,
    /// A framing set by `reconfigure`, to take over at the next frame boundary.
    next_mode: Option<Framing>,
    /// Bytes of MESSAGE for a piece's escaped text and its mark (see the module documentation).
    room: usize,
    /// A whole line this long or shorter fits as one piece, escaped and marked partial or not.
    unmeasured: u32,
    buf: Vec<u8>,
    /// Pieces of the current line already emitted.
    parts: u32,
    /// Syslog mode: how much longer than a line's the MESSAGE of the pieces after the first
    /// of the frame being cut is (the host the first one names).
    extra: u16,
    /// The last byte seen was a CR, so an LF right after it ends nothing (line mode); in
    /// syslog mode, a CR that ended a read inside an LF frame, held back (not in `buf`) until
    /// the next byte says whether it is the CR of a CRLF.
    after_cr: bool,
    /// Syslog mode: where in a frame the stream is.
    syslog: SyslogState,
    /// Syslog mode: which byte ends a frame that is not octet-counted, as learned so far.
    terminator: Terminator,
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
    /// starts a message (see [`Framer::frame_end`]): it starts with `<`, as a syslog message's
    /// PRI, or it is the rest of one whose read ended right after an LF.
    Lf { may_hold_lf: bool },
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
        let Framer {
            mode,
            next_mode,
            room: _,
            unmeasured: _,
            buf,
            parts,
            extra,
            after_cr,
            syslog,
            terminator,
        } = self;
        let syslog = match *syslog {
            SyslogState::Start => (0, 0),
            SyslogState::Length(n) => (1, n.into()),
            SyslogState::Counted(n) => (2, n.into()),
            SyslogState::Lf { may_hold_lf } => (3, may_hold_lf.into()),
        };
        FramerState {
            mode: *mode,
            next_mode: *next_mode,
            buf: buf.clone(),
            parts: *parts,
            extra: *extra,
            after_cr: *after_cr,
            syslog,
            terminator: *terminator,
        }
    }

    /// A framer that goes on from `state` (checked: a state that no framer can be in is
    /// refused), with the room of the configuration in force now.
    pub fn restore(state: FramerState, room: usize) -> Result<Framer, String> {
        let count = |n: u64| -> Result<u32, String> {
            u32::try_from(n)
                .ok()
                .filter(|&n| n as usize <= MAX_FRAME)
                .ok_or_else(|| format!("an octet count of {n}, over {MAX_FRAME}"))
        };
        let syslog = match state.syslog {
            (0, _) => SyslogState::Start,
            (1, n) => SyslogState::Length(count(n)?),
            (2, n) => SyslogState::Counted(count(n)?),
            (3, may_hold_lf @ (0 | 1)) => SyslogState::Lf {
                may_hold_lf: may_hold_lf == 1,
            },
            (tag, value) => return Err(format!("unknown syslog framing state {tag} ({value})")),
        };
        if state.buf.len() > MAX_CARRIED_LINE {
            return Err(format!(
                "{} bytes held for one line, more than any line limit",
                state.buf.len()
            ));
        }
        let mut framer = Framer::new(state.mode, room.max(MIN_PIECE));
        framer.next_mode = state.next_mode;
        framer.buf = state.buf;
        framer.parts = state.parts;
        framer.extra = state.extra;
        framer.after_cr = state.after_cr;
        framer.syslog = syslog;
        framer.terminator = state.terminator;
        Ok(framer)
    }

    /// A framer in `mode` whose pieces fit `room` bytes of escaped text and mark
    /// ([`crate::entry::text_room`]; at least [`MIN_PIECE`]).
    pub fn new(mode: Framing, room: usize) -> Framer {
        assert!(room >= MIN_PIECE, "a piece must hold any UTF-8 character");
        Framer {
            mode,
            next_mode: None,
            room,
            unmeasured: unmeasured(room),
            buf: Vec::new(),
            parts: 0,
            extra: 0,
            after_cr: false,
            syslog: SyslogState::Start,
            terminator: Terminator::Unknown,
        }
    }

    /// Applies new settings. The limit applies at once (a line in progress keeps what it has
    /// and is split at the new limit); a new framing applies from the next frame boundary
    /// (the end of the line or syslog frame in progress; raw mode is always at a boundary).
    pub fn reconfigure(&mut self, mode: Framing, room: usize) {
        assert!(room >= MIN_PIECE, "a piece must hold any UTF-8 character");
        self.next_mode = (mode != self.mode).then_some(mode);
        self.room = room;
        self.unmeasured = unmeasured(room);
    }

    /// Bytes held for a line not yet ended.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Feeds bytes read from the client; `emit` is called for every complete piece.
    pub fn push(&mut self, mut data: &[u8], mut emit: impl FnMut(Frame<'_>)) {
        loop {
            let rest = match self.mode {
                Framing::Raw => {
                    if self.next_mode.is_some() {
                        self.switch_mode();
                        continue;
                    }
                    self.push_raw(data, &mut emit);
                    None
                }
                Framing::Line => self.push_lines(data, &mut emit),
                Framing::Syslog => self.push_syslog(data, &mut emit),
            };
            // `Some`: the framing changed at a boundary; the rest goes to the new one.
            match rest {
                Some(rest) => data = rest,
                None => return,
            }
        }
    }

    /// Takes on the framing `reconfigure` asked for; called at a frame boundary only.
    fn switch_mode(&mut self) {
        if let Some(mode) = self.next_mode.take() {
            self.mode = mode;
            self.syslog = SyslogState::Start;
        }
    }

    /// Raw mode: the read, less its trailing CRs and LFs, as one piece, or in pieces if its
    /// entry would be too long.
    fn push_raw(&mut self, data: &[u8], emit: &mut impl FnMut(Frame<'_>)) {
        let end = data
            .iter()
            .rposition(|&b| b != b'\n' && b != b'\r')
            .map_or(0, |i| i + 1);
        if !data.is_empty() {
            self.emit_line(&data[..end], false, emit);
        }
    }

    /// Line mode. Returns what is left of `data` when a new framing took over at a line end.
    fn push_lines<'d>(
        &mut self,
        mut data: &'d [u8],
        emit: &mut impl FnMut(Frame<'_>),
    ) -> Option<&'d [u8]> {
        if self.after_cr && data.first() == Some(&b'\n') {
            data = &data[1..];
        }
        self.after_cr = false;
        if self.next_mode.is_some() && self.buf.is_empty() && self.parts == 0 {
            self.switch_mode();
            return Some(data);
        }
        while let Some(i) = find_eol(data) {
            let line = &data[..i];
            if self.buf.is_empty() {
                self.emit_line(line, false, emit);
            } else {
                self.accumulate(line, emit);
                let mut held = std::mem::take(&mut self.buf);
                self.emit_line(&held, false, emit);
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
            // One predictable branch per line; after a CR ending the read, the switch waits
            // for the next read, whose LF (if any) still belongs to this line's end.
            if self.next_mode.is_some() && !self.after_cr {
                self.switch_mode();
                return Some(data);
            }
        }
        self.accumulate(data, emit);
        None
    }

    /// Syslog mode (see the module documentation). Returns what is left of `data` when a new
    /// framing took over at a frame boundary.
    fn push_syslog<'d>(
        &mut self,
        mut data: &'d [u8],
        emit: &mut impl FnMut(Frame<'_>),
    ) -> Option<&'d [u8]> {
        while let Some(&first) = data.first() {
            match self.syslog {
                SyslogState::Start => {
                    if self.next_mode.is_some() {
                        self.switch_mode();
                        return Some(data);
                    }
                    let mut rest_of_cut = false;
                    if let Terminator::AfterLf { cut } = self.terminator {
                        // An LF ended the last message: this byte says whether it was the
                        // sender's terminator (the next message starts right after it).
                        self.terminator = if matches!(first, b'<' | b'1'..=b'9') {
                            Terminator::Lf
                        } else {
                            rest_of_cut = cut;
                            Terminator::Unknown
                        };
                    }
                    self.syslog = if matches!(first, b'1'..=b'9') {
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
                    self.syslog = loop {
                        match data.get(i) {
                            None => {
                                self.buf.extend_from_slice(data);
                                data = &[];
                                break SyslogState::Length(len as u32);
                            }
                            Some(b' ') => {
                                // The length and its space are framing, not message.
                                self.buf.clear();
                                data = &data[i + 1..];
                                break SyslogState::Counted(len as u32);
                            }
                            Some(&d) if d.is_ascii_digit() => {
                                len = len * 10 + usize::from(d - b'0');
                                i += 1;
                                if len > MAX_FRAME {
                                    self.accumulate(&data[..i], emit);
                                    data = &data[i..];
                                    break SyslogState::Lf { may_hold_lf: false };
                                }
                            }
                            Some(_) => {
                                // Not a length after all: the digits start an LF frame.
                                self.accumulate(&data[..i], emit);
                                data = &data[i..];
                                break SyslogState::Lf { may_hold_lf: false };
                            }
                        }
                    };
                }
                SyslogState::Counted(remaining) => {
                    let remaining = remaining as usize;
                    if self.buf.is_empty() && self.parts == 0 && data.len() >= remaining {
                        // The whole frame is in this read: no copy.
                        let (frame, rest) = data.split_at(remaining);
                        self.emit_counted(frame, emit);
                        data = rest;
                        self.syslog = SyslogState::Start;
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
                            self.accumulate(&chunk[..before_trailer], emit);
                        }
                        self.buf.extend_from_slice(&chunk[before_trailer..]);
                        self.syslog = if take == remaining {
                            let mut held = std::mem::take(&mut self.buf);
                            self.emit_counted(&held, emit);
                            held.clear();
                            self.buf = held;
                            self.shrink();
                            SyslogState::Start
                        } else {
                            SyslogState::Counted((remaining - take) as u32)
                        };
                    }
                }
                SyslogState::Lf { may_hold_lf } => {
                    let end = self.frame_end(data, may_hold_lf);
                    if self.after_cr {
                        // A CR ended the last read: dropped if the trailer follows at once,
                        // else it was data.
                        self.after_cr = false;
                        if end != Some(0) {
                            self.accumulate(b"\r", emit);
                        }
                    }
                    let Some(i) = end else {
                        // No end yet. A CR ending the read is held back (as `after_cr`) so
                        // that a CRLF cut between reads is not split across two pieces.
                        let (body, cr) = match data {
                            [body @ .., b'\r'] => (body, true),
                            _ => (data, false),
                        };
                        self.accumulate(body, emit);
                        self.after_cr = cr;
                        return None;
                    };
                    // A CR right before the trailer is dropped before it is held, so that it
                    // cannot push what is held over the limit into one more piece.
                    let body = &data[..i];
                    let body = body.strip_suffix(b"\r").unwrap_or(body);
                    let message = !body.is_empty() || !self.buf.is_empty() || self.parts > 0;
                    if self.terminator == Terminator::Unknown && message {
                        // The first message ended by LF or NUL: a NUL says which at once, an
                        // LF once the next byte is known.
                        self.terminator = if data[i] == 0 {
                            Terminator::Nul
                        } else {
                            Terminator::AfterLf { cut: may_hold_lf }
                        };
                    }
                    if self.buf.is_empty() {
                        self.emit_lf_framed(body, emit);
                    } else {
                        self.accumulate(body, emit);
                        let mut held = std::mem::take(&mut self.buf);
                        self.emit_lf_framed(&held, emit);
                        held.clear();
                        self.buf = held;
                        self.shrink();
                    }
                    data = &data[i + 1..];
                    self.syslog = SyslogState::Start;
                }
            }
        }
        None
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

    /// Emits the end of an octet-counted frame (all of it, or what follows its pieces
    /// already emitted), without its trailer; an empty frame is noise.
    fn emit_counted(&mut self, frame: &[u8], emit: &mut impl FnMut(Frame<'_>)) {
        let frame = match frame {
            [rest @ .., b'\r', b'\n'] | [rest @ .., b'\n'] | [rest @ .., 0] => rest,
            _ => frame,
        };
        // Empty but after pieces: the last piece must still say the frame has ended.
        if !frame.is_empty() || self.parts > 0 {
            self.emit_line(frame, false, emit);
        }
    }

    /// Emits the end of an LF-framed frame (its trailer and a CR before it already removed);
    /// an empty frame is noise.
    fn emit_lf_framed(&mut self, frame: &[u8], emit: &mut impl FnMut(Frame<'_>)) {
        // Empty but after pieces: the last piece must still say the frame has ended.
        if !frame.is_empty() || self.parts > 0 {
            self.emit_line(frame, false, emit);
        }
    }

    /// Emits what is held as a partial final line (connection closed or daemon stopping).
    pub fn finish(&mut self, mut emit: impl FnMut(Frame<'_>)) {
        if self.after_cr
            && self.mode == Framing::Syslog
            && matches!(self.syslog, SyslogState::Lf { .. })
        {
            // A CR held back at the end of the last read: part of the cut frame.
            self.accumulate(b"\r", &mut emit);
        }
        self.syslog = SyslogState::Start;
        self.after_cr = false;
        if self.buf.is_empty() && self.parts == 0 {
            return;
        }
        let buf = std::mem::take(&mut self.buf);
        self.emit_line(&buf, true, &mut emit);
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
    fn accumulate(&mut self, mut data: &[u8], emit: &mut impl FnMut(Frame<'_>)) {
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
    fn emit_line(&mut self, line: &[u8], partial: bool, emit: &mut impl FnMut(Frame<'_>)) {
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

    /// [`Framer::emit_line`] for a line that may need cutting.
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

    /// Gives back the memory of a long line once it is done, so idle clients cost little.
    fn shrink(&mut self) {
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

/// The first LF or CR in `data`. Eight bytes at a time (SWAR): this runs over every byte a
/// client sends.
#[inline(always)]
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

/// The first NUL in `data`: the end of a NUL-framed syslog frame. Eight bytes at a time,
/// like [`find_eol`].
fn find_nul(data: &[u8]) -> Option<usize> {
    let mut chunks = data.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let found = swar::below(swar::word(chunk), 1);
        if found != 0 {
            return Some(offset + swar::first(found));
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == 0)
        .map(|i| offset + i)
}

/// The first LF or NUL in `data`: the end of an LF-framed syslog frame. Eight bytes at a
/// time, like [`find_eol`].
fn find_trailer(data: &[u8]) -> Option<usize> {
    let mut chunks = data.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let x = swar::word(chunk);
        let found = swar::equal(x, b'\n') | swar::below(x, 1);
        if found != 0 {
            return Some(offset + swar::first(found));
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == b'\n' || b == 0)
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
                // Followed by more: room for the text and " [continued]".
                assert_eq!(f.bytes.len(), 100 - CONTINUED_MARK.len());
                pieces += 1;
            });
            assert!(framer.buffered() <= 101);
        }
        assert_eq!(pieces * 88 + framer.buffered(), 1_000_000);
    }

    #[test]
    fn a_lower_limit_applies_to_the_line_in_progress() {
        let mut framer = Framer::new(Framing::Line, 100);
        let mut got = Vec::new();
        framer.push(&[b'a'; 50], |f| got.push(f.bytes.len()));
        framer.reconfigure(Framing::Line, 8);
        framer.push(b"bb\n", |f| got.push(f.bytes.len()));
        // Continued pieces of MIN_PIECE (8 is too little room for the mark too), and a last
        // piece of 8.
        assert_eq!(got, [4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 8]);
        assert_eq!(framer.buffered(), 0);
    }

    /// The pieces of `chunks` in `mode` with `room`, as (bytes, part, continued, partial).
    fn pieces(mode: Framing, room: usize, chunks: &[&[u8]]) -> Vec<(Vec<u8>, u32, bool, bool)> {
        let mut framer = Framer::new(mode, room);
        let mut out = Vec::new();
        let mut collect =
            |f: Frame<'_>| out.push((f.bytes.to_vec(), f.part, f.continued, f.partial));
        for c in chunks {
            framer.push(c, &mut collect);
            assert!(framer.buffered() <= room + 1);
        }
        framer.finish(&mut collect);
        out
    }

    /// The limit a piece's escaped text was cut to: room less its mark.
    fn limit_of(room: usize, continued: bool, partial: bool) -> usize {
        let mark = if continued {
            CONTINUED_MARK
        } else if partial {
            PARTIAL_MARK
        } else {
            ""
        };
        room.saturating_sub(mark.len()).max(MIN_PIECE)
    }

    #[test]
    fn pieces_are_cut_so_that_their_escaped_text_and_mark_fit_the_room() {
        use crate::escape::escaped_len;
        // Plain text: as many bytes as the room holds with the mark.
        let line = [b'x'; 100];
        let got = pieces(Framing::Line, 40, &[&line, b"\n"]);
        let sizes: Vec<usize> = got.iter().map(|p| p.0.len()).collect();
        assert_eq!(sizes, [28, 28, 28, 16]);
        // A last piece needs no mark: a line of exactly the room is not cut, one more is.
        assert_eq!(pieces(Framing::Line, 40, &[&line[..40], b"\n"]).len(), 1);
        let got = pieces(Framing::Line, 40, &[&line[..41], b"\n"]);
        assert_eq!(got[0].0.len(), 28);
        assert_eq!(got[1].0.len(), 13);
        // Binary: 4 escaped bytes each, so a quarter as many raw bytes.
        let binary = [0xffu8; 100];
        let got = pieces(Framing::Line, 40, &[&binary, b"\n"]);
        let sizes: Vec<usize> = got.iter().map(|p| p.0.len()).collect();
        // The last 9 bytes are 36 escaped: a last piece needs no mark.
        assert_eq!(sizes, [7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 9]);
        // Partial: room for " [partial]".
        let got = pieces(Framing::Line, 40, &[&binary[..10]]);
        assert_eq!(
            got,
            [
                (vec![0xff; 7], 1, true, false),
                (vec![0xff; 3], 2, false, true)
            ]
        );
        for (bytes, _, continued, partial) in &got {
            assert!(escaped_len(bytes) <= limit_of(40, *continued, *partial));
        }
        // Characters are never cut, and their escapes count: é is 2 bytes, ESC escapes to 4.
        // Room 18: 6 for a continued piece (three é), 18 for the last (2 + 4 + 4 + 4 + 2).
        let text = "ééééé\x1b\x1bé".as_bytes();
        let got = pieces(Framing::Line, 18, &[text, b"\n"]);
        let texts: Vec<&[u8]> = got.iter().map(|p| &p.0[..]).collect();
        assert_eq!(texts, ["ééé".as_bytes(), "éé\x1b\x1bé".as_bytes()]);
        // Room 17: 5 for a continued piece; "abcd" and ESC (4) would be 8.
        let got = pieces(Framing::Line, 17, &[b"abcd\x1bxxxxxxxxxxxx\n"]);
        let texts: Vec<&[u8]> = got.iter().map(|p| &p.0[..]).collect();
        assert_eq!(texts, [&b"abcd"[..], b"\x1bxxxxxxxxxxxx"]);
    }

    #[test]
    fn a_read_whose_escaped_form_is_too_long_is_cut_in_raw_mode() {
        let got = pieces(Framing::Raw, 40, &[&[0u8; 20], b"short\r\n", &[b'y'; 41]]);
        assert_eq!(
            got,
            [
                (vec![0; 7], 1, true, false),
                (vec![0; 7], 2, true, false),
                (vec![0; 6], 3, false, false),
                (b"short".to_vec(), 0, false, false),
                (vec![b'y'; 28], 1, true, false),
                (vec![b'y'; 13], 2, false, false),
            ]
        );
    }

    #[test]
    fn the_pieces_after_the_first_of_a_syslog_message_leave_room_for_its_host() {
        // The first piece is cut like a line's; the next ones name the host the first one
        // named (` myhost`, 7 bytes), so they hold 7 bytes less.
        let frame = [&b"<13>1 - myhost app - - - "[..], &[b'm'; 100]].concat();
        let counted = [format!("{} ", frame.len()).as_bytes(), &frame].concat();
        let lf = [&frame[..], b"\n"].concat();
        for stream in [counted, lf] {
            let got = syslog_frames(60, &[&stream]);
            let sizes: Vec<usize> = got.iter().map(|p| p.0.len()).collect();
            assert_eq!(sizes, [48, 41, 36], "{got:?}");
            assert_eq!(got.iter().map(|p| p.0.len()).sum::<usize>(), frame.len());
            // Cut anywhere, the same.
            for cut in 0..stream.len() {
                let (a, b) = stream.split_at(cut);
                assert_eq!(syslog_frames(60, &[a, b]), got, "cut at {cut}");
            }
        }
        // Without a host in the first piece, the pieces are a line's.
        let frame = [&b"<13>1 - - app - - - "[..], &[b'm'; 100]].concat();
        let got = syslog_frames(60, &[&[&frame[..], b"\n"].concat()]);
        let sizes: Vec<usize> = got.iter().map(|p| p.0.len()).collect();
        assert_eq!(sizes, [48, 48, 24]);
    }

    #[test]
    fn any_bytes_cut_at_any_points_give_the_same_pieces_and_each_fits() {
        use crate::escape::escaped_len;
        let mut seed = 0x2545_f491_u32;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        let alphabet: [&[u8]; 12] = [
            b"a",
            b"z",
            b" ",
            b"\\",
            b"\x1b",
            b"\xff",
            "é".as_bytes(),
            "€".as_bytes(),
            "😀".as_bytes(),
            "\u{9b}".as_bytes(),
            "\u{202e}".as_bytes(),
            b"\n",
        ];
        for case in 0..3000 {
            let room = [4, 5, 9, 13, 17, 24, 40, 100][next() as usize % 8];
            let mode = [Framing::Line, Framing::Raw][case % 2];
            let mut stream = Vec::new();
            for _ in 0..next() % 120 {
                stream.extend_from_slice(alphabet[next() as usize % alphabet.len()]);
            }
            let whole = pieces(mode, room, &[&stream]);
            for (bytes, _, continued, partial) in &whole {
                let limit = limit_of(room, *continued, *partial);
                // One character is always taken, even if its escape is longer than the limit.
                let one_char = crate::escape::fitting_prefix(bytes, 0) == bytes.len();
                assert!(
                    escaped_len(bytes) <= limit || one_char,
                    "case {case}: {bytes:?} over {limit}"
                );
            }
            if mode == Framing::Line {
                let mut rest = &stream[..];
                let mut reads = Vec::new();
                while !rest.is_empty() {
                    let n = (1 + next() as usize % 16).min(rest.len());
                    reads.push(&rest[..n]);
                    rest = &rest[n..];
                }
                assert_eq!(pieces(mode, room, &reads), whole, "case {case}: {reads:?}");
            }
        }
    }

    #[test]
    fn raw_mode_emits_one_piece_per_read() {
        assert_eq!(
            frames(Framing::Raw, 4096, &[b"abc\r\n", b"de\nf\n", b"\n"]),
            vec![whole("abc"), whole("de\nf"), whole("")]
        );
    }

    // ---- syslog mode ----

    /// Syslog-mode pieces of `chunks` (then `finish`), as (bytes, part, continued, partial).
    fn syslog_frames(max: usize, chunks: &[&[u8]]) -> Vec<(Vec<u8>, u32, bool, bool)> {
        let mut framer = Framer::new(Framing::Syslog, max);
        let mut out = Vec::new();
        let mut collect =
            |f: Frame<'_>| out.push((f.bytes.to_vec(), f.part, f.continued, f.partial));
        for c in chunks {
            framer.push(c, &mut collect);
            assert!(framer.buffered() <= max + 2);
        }
        framer.finish(&mut collect);
        out
    }

    /// The bytes of each piece of a syslog stream fed in one read.
    fn syslog_texts(data: &[u8]) -> Vec<Vec<u8>> {
        syslog_frames(4096, &[data])
            .into_iter()
            .map(|f| f.0)
            .collect()
    }

    fn bwhole(s: &[u8]) -> (Vec<u8>, u32, bool, bool) {
        (s.to_vec(), 0, false, false)
    }

    const LOGGER_LF: &[u8] = include_bytes!("../../tests/data/syslog/logger-lf.bin");
    const LOGGER_OCTETS: &[u8] = include_bytes!("../../tests/data/syslog/logger-octet-count.bin");
    const LOGGER_OVERSIZED: &[u8] =
        include_bytes!("../../tests/data/syslog/logger-octet-count-oversized.bin");
    const LOGGER_LF_LONG: &[u8] = include_bytes!("../../tests/data/syslog/logger-lf-long.bin");
    const RSYSLOG_TRAD_LF: &[u8] =
        include_bytes!("../../tests/data/syslog/rsyslog-traditional-lf.bin");
    const RSYSLOG_TRAD_OCTETS: &[u8] =
        include_bytes!("../../tests/data/syslog/rsyslog-traditional-octet-counted.bin");
    const RSYSLOG_5424_LF: &[u8] = include_bytes!("../../tests/data/syslog/rsyslog-protocol23-lf.bin");
    const RSYSLOG_5424_OCTETS: &[u8] =
        include_bytes!("../../tests/data/syslog/rsyslog-protocol23-octet-counted.bin");

    const PYTHON_INFO_FIRST: &[u8] =
        include_bytes!("../../tests/data/syslog/python-info-then-exception.bin");
    const PYTHON_EXCEPTION_FIRST: &[u8] =
        include_bytes!("../../tests/data/syslog/python-exception-first.bin");

    /// Every capture that gives the same pieces however it is cut (the Python capture whose
    /// first message is a traceback does not: see its test).
    const CAPTURES: [&[u8]; 9] = [
        PYTHON_INFO_FIRST,
        LOGGER_LF,
        LOGGER_OCTETS,
        LOGGER_OVERSIZED,
        LOGGER_LF_LONG,
        RSYSLOG_TRAD_LF,
        RSYSLOG_TRAD_OCTETS,
        RSYSLOG_5424_LF,
        RSYSLOG_5424_OCTETS,
    ];

    #[test]
    fn rsyslog_sends_the_same_messages_in_either_framing() {
        let want: Vec<&[u8]> = vec![
            b"<131>Nov 27 16:10:02 vm nas[4242]: disk failing",
            b"<13>Nov 27 16:10:02 vm app hello 5424",
            b"<13>Nov 27 16:10:02 vm root with sd",
            b"<13>Nov 27 16:10:03 vm tagonly: no pid",
            b"<13>Nov 27 16:10:03 vm root: ctrl #033[31m red",
            b"<13>Nov 27 16:10:03 vm root with#012newline",
        ];
        assert_eq!(syslog_texts(RSYSLOG_TRAD_LF), want);
        assert_eq!(syslog_texts(RSYSLOG_TRAD_OCTETS), want);
        // The RFC 5424 template ends in LF, counted in MSG-LEN: not part of the message.
        let lf = syslog_texts(RSYSLOG_5424_LF);
        assert_eq!(lf.len(), 6);
        assert_eq!(
            lf[0],
            b"<131>1 2026-11-27T16:10:02+00:00 vm nas 4242 - -  disk failing"
        );
        assert_eq!(syslog_texts(RSYSLOG_5424_OCTETS), lf);
    }

    #[test]
    fn logger_octet_counted_frames_are_cut_exactly() {
        let got = syslog_texts(LOGGER_OCTETS);
        let tq = r#"[timeQuality tzKnown="1" isSynced="0"]"#;
        let want: Vec<Vec<u8>> = vec![
            format!("<13>1 2026-11-27T16:09:47.675999+00:00 vm root - - {tq} hello").into(),
            b"<13>Nov 27 16:09:48 vm root: hello 3164 oc".to_vec(),
            format!("<131>1 2026-11-27T16:09:48.908392+00:00 vm nas 4242 - {tq} disk failing oc")
                .into(),
            format!("<13>1 2026-11-27T16:09:49.838449+00:00 vm multi - - {tq} line one").into(),
            format!("<13>1 2026-11-27T16:09:49.838501+00:00 vm multi - - {tq} line two").into(),
            // An LF inside a counted frame is data.
            format!(
                "<13>1 2026-11-27T16:09:51.069496+00:00 vm root - - {tq} with\nnewline inside oc"
            )
            .into(),
            format!("<13>1 2026-11-27T16:09:51.376656+00:00 vm tag with space - - {tq} x").into(),
            format!("<13>1 2026-11-27T16:09:52.008057+00:00 vm root - - {tq} é ü \x1b[31m ctrl")
                .into(),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn logger_lf_frames_end_at_each_lf() {
        let got = syslog_texts(LOGGER_LF);
        assert_eq!(got.len(), 11);
        assert_eq!(got[1], b"<13>Nov 27 16:09:47 vm root: hello 3164");
        assert_eq!(
            got[3],
            b"<131>Nov 27 16:09:49 vm nas[4242]: disk failing 3164"
        );
        assert_eq!(got[7], b"<13>1 - - root - - - bare");
        // LF framing cannot carry an LF: logger's message is cut there (as RFC 6587 says).
        assert!(got[8].ends_with(b"] with"));
        assert_eq!(got[9], b"newline inside");
        assert!(got
            .iter()
            .all(|f| !f.contains(&b'\n') && f.starts_with(b"<") || f == b"newline inside"));
    }

    #[test]
    fn every_capture_gives_the_same_pieces_however_it_is_cut() {
        for capture in CAPTURES {
            let whole = syslog_frames(4096, &[capture]);
            let bytes: Vec<&[u8]> = capture.chunks(1).collect();
            assert_eq!(syslog_frames(4096, &bytes), whole);
            for size in [2, 3, 7, 64, 1000] {
                let chunks: Vec<&[u8]> = capture.chunks(size).collect();
                assert_eq!(syslog_frames(4096, &chunks), whole, "reads of {size}");
            }
        }
    }

    #[test]
    fn python_sysloghandler_messages_end_at_their_nul_with_their_lfs() {
        // Issue 17: `<11>pyapp[pid]: it failed\nTraceback …\0`, each line of which was an
        // entry. Each record is one message, its LFs inside, in either order.
        for capture in [PYTHON_INFO_FIRST, PYTHON_EXCEPTION_FIRST] {
            let want: Vec<&[u8]> = capture
                .split(|&b| b == 0)
                .filter(|m| !m.is_empty())
                .collect();
            assert_eq!(want.len(), 2);
            let traceback = want.iter().find(|m| m.starts_with(b"<11>")).unwrap();
            assert_eq!(traceback.iter().filter(|&&b| b == b'\n').count(), 4);
            assert_eq!(syslog_texts(capture), want);
        }
        // The info message first: its NUL says NUL framing before any LF comes, so every
        // cut gives the same (CAPTURES). The traceback first: the same however it is cut,
        // except right after one of its LFs (the read ends there and the daemon cannot wait,
        // so that LF ends a message): then it is two messages, the rest from that LF on
        // (without a header) ended by the NUL, and the next message is whole.
        let whole = syslog_frames(4096, &[PYTHON_EXCEPTION_FIRST]);
        let first = &whole[0].0;
        let nul = PYTHON_EXCEPTION_FIRST.iter().position(|&b| b == 0).unwrap();
        let mut cut_after_lf = 0;
        for cut in 1..PYTHON_EXCEPTION_FIRST.len() {
            let (a, b) = PYTHON_EXCEPTION_FIRST.split_at(cut);
            let got = syslog_frames(4096, &[a, b]);
            if a.ends_with(b"\n") && cut < nul {
                cut_after_lf += 1;
                assert_eq!(got.len(), 3, "cut at {cut}");
                assert_eq!(got[0].0, &first[..cut - 1]);
                assert_eq!(got[1].0, &first[cut..], "the LF ended the first");
                assert_eq!(got[2], whole[1]);
            } else {
                assert_eq!(got, whole, "cut at {cut}");
            }
        }
        assert_eq!(cut_after_lf, 4);
    }

    #[test]
    fn the_terminator_is_learned_from_the_stream() {
        // A NUL that ends a message: NUL framing; an LF is message from then on.
        assert_eq!(
            syslog_texts(b"<14>a\0<14>b\nc\n<14>d\0"),
            [&b"<14>a"[..], b"<14>b\nc\n<14>d"]
        );
        // An LF followed by the start of a message (`<`, a count's digit): LF framing; an LF
        // ends every message from then on, one that starts with `<` too.
        assert_eq!(
            syslog_texts(b"<14>a\n<14>b\nc\n"),
            [&b"<14>a"[..], b"<14>b", b"c"]
        );
        assert_eq!(
            syslog_texts(b"<14>a\n5 hello<14>b\nc\0"),
            [&b"<14>a"[..], b"hello", b"<14>b", b"c"]
        );
        // Known only once the byte after the LF has come, in the same read or the next.
        assert_eq!(
            syslog_frames(4096, &[b"<14>a\n", b"<14>b\nc\n"]),
            syslog_frames(4096, &[b"<14>a\n<14>b\nc\n"])
        );
        // Not known yet: an LF in a message starting with `<` followed by anything else is
        // message (a NUL-terminated sender's first message), one followed by nothing yet
        // ends it; in a message that does not start with `<`, an LF ends it.
        assert_eq!(syslog_texts(b"<14>a\nb\nc"), [b"<14>a\nb\nc"]);
        assert_eq!(
            syslog_frames(4096, &[b"<14>a\n", b"b\nc\0", b"<14>d\ne\0"]),
            vec![bwhole(b"<14>a"), bwhole(b"b\nc"), bwhole(b"<14>d\ne")],
            "the rest of a message cut after an LF may hold LFs too"
        );
        assert_eq!(syslog_texts(b"plain\ntext\n"), [&b"plain"[..], b"text"]);
        // Empty frames (noise) say nothing.
        assert_eq!(
            syslog_texts(b"3 abc\0\n<14>a\nb\0"),
            [&b"abc"[..], b"<14>a\nb"]
        );
    }

    #[test]
    fn a_framer_carried_to_another_process_at_any_point_goes_on_the_same() {
        let mut rng = Rng(0x1357_9bdf_2468_ace0);
        for case in 0..3000 {
            let max = rng.pick(&[4, 16, 300, 4096]);
            let (stream, _) = syslog_stream(&mut rng);
            let reads = cut(&mut rng, &stream);
            let want = syslog_frames(max, &reads);
            let mut framer = Framer::new(Framing::Syslog, max);
            let mut got = Vec::new();
            let mut collect =
                |f: Frame<'_>| got.push((f.bytes.to_vec(), f.part, f.continued, f.partial));
            for read in &reads {
                framer.push(read, &mut collect);
                framer = Framer::restore(framer.save(), max).expect("a state it saved");
            }
            framer.finish(&mut collect);
            assert_eq!(got, want, "case {case}: {reads:?}");
        }
        // A state no framer can be in is refused.
        let mut state = Framer::new(Framing::Syslog, 64).save();
        state.syslog = (3, 2);
        assert!(Framer::restore(state, 64).is_err());
    }

    #[test]
    fn a_count_split_in_its_length_or_its_body_still_frames_exactly() {
        let want = vec![bwhole(b"hello world"), bwhole(b"x")];
        assert_eq!(syslog_frames(4096, &[b"1", b"1 hello world1 x"]), want);
        assert_eq!(
            syslog_frames(4096, &[b"11", b" hello", b" world", b"1 x"]),
            want
        );
        assert_eq!(
            syslog_frames(4096, &[b"11 ", b"hello world1", b" ", b"x"]),
            want
        );
        // A count and its frame all in one read, twice.
        assert_eq!(syslog_frames(4096, &[b"11 hello world1 x"]), want);
    }

    #[test]
    fn one_connection_may_mix_counted_and_lf_frames() {
        assert_eq!(
            syslog_texts(b"11 hello world<13>an lf frame\n5 abcde<14>another\n3 end"),
            [
                &b"hello world"[..],
                b"<13>an lf frame",
                b"abcde",
                b"<14>another",
                b"end"
            ]
        );
    }

    #[test]
    fn a_malformed_length_falls_back_to_lf_framing_with_its_bytes_as_sent() {
        // A non-digit before the space.
        assert_eq!(
            syslog_texts(b"12a <13>x\n5 abcde"),
            [&b"12a <13>x"[..], b"abcde"]
        );
        // No space: digits then the LF.
        assert_eq!(syslog_texts(b"123\n5 abcde"), [&b"123"[..], b"abcde"]);
        assert_eq!(syslog_texts(b"42<13>x\n"), [b"42<13>x"]);
        // A leading zero, and zero.
        assert_eq!(syslog_texts(b"05 hello\n"), [b"05 hello"]);
        assert_eq!(syslog_texts(b"0 \n2 ab"), [&b"0 "[..], b"ab"]);
        // Oversized: over MAX_FRAME (decided at the digit that passes it).
        assert_eq!(
            syslog_frames(4096, &[b"200001 hello\n2 ab"]),
            vec![bwhole(b"200001 hello"), bwhole(b"ab")]
        );
        assert_eq!(
            syslog_frames(4096, &[b"99999999999999999999 x\n"]),
            vec![bwhole(b"99999999999999999999 x")]
        );
        // MAX_FRAME itself is a count: the connection ends before its bytes do.
        assert_eq!(
            syslog_frames(4096, &[b"200000 hello\n"]),
            vec![(b"hello\n".to_vec(), 0, false, true)]
        );
        // The same, cut at every point.
        let stream = b"12a <13>x\n123\n05 hello\n11 hello world0 \n999999 y\n2 ab";
        let whole = syslog_frames(4096, &[stream]);
        for cut in 0..stream.len() {
            let (a, b) = stream.split_at(cut);
            assert_eq!(syslog_frames(4096, &[a, b]), whole, "cut at {cut}");
        }
        assert_eq!(whole.len(), 7);
    }

    #[test]
    fn a_logger_frame_over_the_line_limit_is_cut_into_pieces_and_the_next_stands_alone() {
        // logger --octet-count --size 6000: a 5089-byte frame, then a 105-byte one, no LF.
        let body = &LOGGER_OVERSIZED[b"5089 ".len()..][..5089];
        let next = &LOGGER_OVERSIZED[b"5089 ".len() + 5089 + b"105 ".len()..];
        assert!(next.ends_with(b"short after long"));
        let got = syslog_frames(4096, &[LOGGER_OVERSIZED]);
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!((got[0].1, got[0].2, got[0].3), (1, true, false));
        assert_eq!((got[1].1, got[1].2, got[1].3), (2, false, false));
        assert_eq!([&got[0].0[..], &got[1].0[..]].concat(), body);
        assert_eq!(got[2], bwhole(next), "in sync: the next frame is whole");
        // The same message LF-framed is cut into pieces the same way.
        let lf = syslog_frames(4096, &[LOGGER_LF_LONG]);
        assert_eq!(lf.len(), 3);
        assert_eq!((lf[1].1, lf[1].2), (2, false));
        assert!(lf[2].0.ends_with(b"short after long"));
        assert_eq!(lf[2].1, 0);
    }

    #[test]
    fn a_counted_frame_up_to_max_frame_is_cut_as_it_arrives_in_bounded_memory() {
        let body: Vec<u8> = (0..150_000).map(|i| b'a' + (i % 26) as u8).collect();
        let mut stream = format!("{} ", body.len() + 2).into_bytes();
        stream.extend_from_slice(&body);
        stream.extend_from_slice(b"\r\n5 hello");
        for read in [1, 7, 1000, 4097, stream.len()] {
            let chunks: Vec<&[u8]> = stream.chunks(read).collect();
            let got = syslog_frames(4096, &chunks);
            let (last, pieces) = got.split_last().unwrap();
            assert_eq!(last, &bwhole(b"hello"), "reads of {read}");
            let joined: Vec<u8> = pieces.iter().flat_map(|p| p.0.clone()).collect();
            assert_eq!(
                joined, body,
                "reads of {read}: the CRLF trailer is not message"
            );
            assert!(pieces.iter().all(|p| p.0.len() <= 4096 && !p.3));
            assert_eq!(pieces.len(), 37);
            assert_eq!(got, syslog_frames(4096, &[&stream]), "reads of {read}");
        }
        // A counted frame's CRLF trailer cut by a read: the same pieces as in one read.
        for (stream, want) in [
            (&b"6 abcd\r\n"[..], vec![bwhole(b"abcd")]),
            (
                b"7 abcde\r\n",
                vec![
                    (b"abcd".to_vec(), 1, true, false),
                    (b"e".to_vec(), 2, false, false),
                ],
            ),
            (
                b"6 abcde\r",
                vec![
                    (b"abcd".to_vec(), 1, true, false),
                    (b"e".to_vec(), 2, true, false),
                    // A CR is escaped as \x0d: 4 bytes.
                    (b"\r".to_vec(), 3, false, false),
                ],
            ),
        ] {
            for cut in 0..stream.len() {
                let (a, b) = stream.split_at(cut);
                assert_eq!(syslog_frames(4, &[a, b]), want, "{stream:?} cut at {cut}");
            }
        }
    }

    #[test]
    fn trailers_are_not_part_of_the_message() {
        // Inside the count: LF, CRLF or NUL at the very end.
        assert_eq!(
            syslog_texts(b"6 hello\n7 hello\r\n6 hello\x004 a\nb"),
            [&b"hello"[..], b"hello", b"hello", b"a\nb"]
        );
        // LF framing: CR right before the LF is dropped, a CR elsewhere is data.
        assert_eq!(
            syslog_texts(b"<13>a\r\n<13>b\rc\n"),
            [&b"<13>a"[..], b"<13>b\rc"]
        );
        // ... also when the CR and the LF come in different reads.
        assert_eq!(
            syslog_frames(4096, &[b"<13>a\r", b"\n<13>b\r", b"x\n"]),
            vec![bwhole(b"<13>a"), bwhole(b"<13>b\rx")]
        );
        // NUL ends a frame as LF does (RFC 6587 3.4.2); a CR before it is dropped too.
        assert_eq!(
            syslog_texts(b"<13>a\x00<13>b\r\x00"),
            [&b"<13>a"[..], b"<13>b"]
        );
        // Once LF framing is known, a NUL still ends a message.
        assert_eq!(syslog_texts(b"<13>a\n<13>b\x00"), [&b"<13>a"[..], b"<13>b"]);
    }

    #[test]
    fn empty_frames_are_noise_and_produce_nothing() {
        // An LF (or CRLF, NUL) after a counted frame; blank lines; a counted trailer alone.
        assert_eq!(
            syslog_texts(b"5 hello\n5 world\r\n\n\n\x001 \n2 \r\n<13>x\n"),
            [&b"hello"[..], b"world", b"<13>x"]
        );
        assert_eq!(syslog_frames(4096, &[b"\n\n", b"\r\n"]), vec![]);
        // A frame of one space is not empty.
        assert_eq!(syslog_texts(b" \n1  "), [b" ", b" "]);
    }

    #[test]
    fn long_lf_frames_are_split_like_lines_and_counted_frames_never_are() {
        assert_eq!(
            syslog_frames(4, &[b"<1>abcdefg\n4 wxyz"]),
            vec![
                (b"<1>a".to_vec(), 1, true, false),
                (b"bcde".to_vec(), 2, true, false),
                (b"fg".to_vec(), 3, false, false),
                bwhole(b"wxyz"),
            ]
        );
        // A CR after a piece boundary is still dropped; the last piece may be empty then.
        assert_eq!(
            syslog_frames(4, &[b"<1>a", b"\r", b"\n"]),
            vec![bwhole(b"<1>a")]
        );
        assert_eq!(
            syslog_frames(4, &[b"<1>ab", b"\r", b"\n"]),
            vec![
                (b"<1>a".to_vec(), 1, true, false),
                (b"b".to_vec(), 2, false, false)
            ]
        );
        assert_eq!(
            syslog_frames(4, &[b"<1>ab\r", b"\n"]),
            vec![
                (b"<1>a".to_vec(), 1, true, false),
                (b"b".to_vec(), 2, false, false)
            ]
        );
    }

    #[test]
    fn a_cut_connection_logs_what_it_had_as_partial() {
        assert_eq!(
            syslog_frames(4096, &[b"5 hello11 hello"]),
            vec![bwhole(b"hello"), (b"hello".to_vec(), 0, false, true)]
        );
        assert_eq!(
            syslog_frames(4096, &[b"12"]),
            vec![(b"12".to_vec(), 0, false, true)]
        );
        assert_eq!(
            syslog_frames(4096, &[b"<13>x"]),
            vec![(b"<13>x".to_vec(), 0, false, true)]
        );
        // A CR held back at the end of a read is part of the cut frame.
        assert_eq!(
            syslog_frames(4096, &[b"<13>x\r"]),
            vec![(b"<13>x\r".to_vec(), 0, false, true)]
        );
        // A count with nothing of its frame yet: no bytes of a message to log.
        assert_eq!(syslog_frames(4096, &[b"12 "]), vec![]);
    }

    #[test]
    fn syslog_memory_is_bounded_by_the_line_limit() {
        let mut framer = Framer::new(Framing::Syslog, 100);
        let mut seed = 0x2545_f491_u32;
        for _ in 0..20_000 {
            let chunk: Vec<u8> = (0..(seed % 300) as usize)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    b"0123456789 <>\nx\r\0"[seed as usize % 17]
                })
                .collect();
            framer.push(&chunk, |f| assert!(f.bytes.len() <= 100));
            assert!(framer.buffered() <= 102, "{}", framer.buffered());
        }
    }

    #[test]
    fn a_lower_limit_applies_to_a_counted_frame_in_progress() {
        let mut framer = Framer::new(Framing::Syslog, 100);
        let mut got = Vec::new();
        framer.push(b"20 0123456789", |f| got.push(f.bytes.to_vec()));
        framer.reconfigure(Framing::Syslog, 4);
        framer.push(b"abcdefghij", |f| got.push(f.bytes.to_vec()));
        let want: Vec<&[u8]> = vec![b"0123", b"4567", b"89ab", b"cdef", b"ghij"];
        assert_eq!(got, want);
    }

    /// Pieces of `chunks` with `reconfigure(to)` called after the first chunk.
    fn switched(from: Framing, to: Framing, chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut framer = Framer::new(from, 4096);
        let mut got = Vec::new();
        for (i, c) in chunks.iter().enumerate() {
            framer.push(c, |f| got.push(f.bytes.to_vec()));
            if i == 0 {
                framer.reconfigure(to, 4096);
            }
        }
        framer.finish(|f| got.push(f.bytes.to_vec()));
        got
    }

    #[test]
    fn line_to_raw_and_back_in_mid_line_mixes_no_bytes_of_two_framings() {
        // Issue 9: this once produced "AAA-start-of-line-DDD line mode again", a line the
        // client never sent.
        let mut framer = Framer::new(Framing::Line, 4096);
        let mut got = Vec::new();
        let mut push = |framer: &mut Framer, data: &[u8]| {
            framer.push(data, |f| got.push((f.bytes.to_vec(), f.framing)))
        };
        push(&mut framer, b"AAA-start-of-line");
        framer.reconfigure(Framing::Raw, 4096);
        push(&mut framer, b"-end of the line\nBBB raw");
        push(&mut framer, b"CCC raw\n");
        framer.reconfigure(Framing::Line, 4096);
        push(&mut framer, b"DDD line mode again\n");
        assert_eq!(
            got,
            [
                (b"AAA-start-of-line-end of the line".to_vec(), Framing::Line),
                (b"BBB raw".to_vec(), Framing::Raw),
                (b"CCC raw".to_vec(), Framing::Raw),
                (b"DDD line mode again".to_vec(), Framing::Line),
            ]
        );
    }

    #[test]
    fn a_new_framing_starts_at_the_next_frame_boundary() {
        // Line to syslog in mid-line: the line ends as a line (a lone CR ends it), then
        // syslog framing (an LF after a counted frame is noise there).
        assert_eq!(
            switched(
                Framing::Line,
                Framing::Syslog,
                &[b"half a ", b"line\r5 hello\n"]
            ),
            [&b"half a line"[..], b"hello"]
        );
        // A CR at the end of a read: its LF in the next read still belongs to the line.
        assert_eq!(
            switched(Framing::Line, Framing::Syslog, &[b"line\r", b"\n3 abc"]),
            [&b"line"[..], b"abc"]
        );
        // Syslog to line in mid-frame: the counted frame keeps its LF and its CR.
        assert_eq!(
            switched(
                Framing::Syslog,
                Framing::Line,
                &[b"9 a\r", b"b\ncdefghi\nj\n"]
            ),
            [&b"a\rb\ncdefg"[..], b"hi", b"j"]
        );
        // Syslog to raw after a count's digits: the count still frames.
        assert_eq!(
            switched(
                Framing::Syslog,
                Framing::Raw,
                &[b"5", b" abcdexyz\n", b"raw\n"]
            ),
            [&b"abcde"[..], b"xyz", b"raw"]
        );
        // Raw to syslog: at once, raw mode is always at a boundary.
        assert_eq!(
            switched(Framing::Raw, Framing::Syslog, &[b"5 hello", b"5 hello"]),
            [&b"5 hello"[..], b"hello"]
        );
        // Changed and changed back before a boundary: nothing changes.
        let mut framer = Framer::new(Framing::Line, 4096);
        let mut got = Vec::new();
        framer.push(b"3 ab", |f| got.push(f.bytes.to_vec()));
        framer.reconfigure(Framing::Syslog, 4096);
        framer.reconfigure(Framing::Line, 4096);
        framer.push(b"c\n3 abc", |f| got.push(f.bytes.to_vec()));
        assert_eq!(got, [b"3 abc"]);
    }

    #[test]
    fn each_piece_says_which_framing_cut_it() {
        let mut framer = Framer::new(Framing::Line, 4096);
        let mut got = Vec::new();
        framer.push(b"a line in prog", |f| {
            got.push((f.bytes.to_vec(), f.framing))
        });
        framer.reconfigure(Framing::Syslog, 4096);
        framer.push(b"ress\n5 hello3 ab", |f| {
            got.push((f.bytes.to_vec(), f.framing))
        });
        framer.reconfigure(Framing::Raw, 4096);
        framer.push(b"c", |f| got.push((f.bytes.to_vec(), f.framing)));
        framer.push(b"raw read", |f| got.push((f.bytes.to_vec(), f.framing)));
        assert_eq!(
            got,
            [
                (b"a line in progress".to_vec(), Framing::Line),
                (b"hello".to_vec(), Framing::Syslog),
                (b"abc".to_vec(), Framing::Syslog),
                (b"raw read".to_vec(), Framing::Raw),
            ]
        );
    }

    #[test]
    fn the_fast_trailer_search_agrees_with_the_byte_by_byte_one() {
        let slow = |d: &[u8]| d.iter().position(|&b| b == b'\n' || b == 0);
        for len in 0..24 {
            for pos in 0..len {
                for v in 0..=255u8 {
                    let mut data = vec![b'a'; len];
                    data[pos] = v;
                    assert_eq!(find_trailer(&data), slow(&data), "{data:?}");
                    if pos + 1 < len {
                        data[pos + 1] = 0;
                        assert_eq!(find_trailer(&data), slow(&data), "{data:?}");
                    }
                }
            }
        }
    }

    // ---- the property: frames cut at any points into reads give the same entries ----

    /// A small deterministic generator (xorshift64*), so a failure is reproducible.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn pick<T: Copy>(&mut self, items: &[T]) -> T {
            items[self.below(items.len())]
        }
    }

    /// A message as senders write them: RFC 5424, RFC 3164, PRI only, or no PRI, with text
    /// that may hold anything (LF and NUL too, which only octet counting can carry).
    fn message(rng: &mut Rng) -> Vec<u8> {
        let mut m = Vec::new();
        match rng.below(5) {
            0 => m.extend_from_slice(
                rng.pick::<&[u8]>(&[
                    b"<13>1 2026-11-27T16:09:47.369342+00:00 vm root - - [timeQuality tzKnown=\"1\" isSynced=\"0\"] ",
                    b"<131>1 2026-11-27T16:10:02+00:00 vm nas 4242 - -  ",
                    b"<165>1 - host.example app 12 ID47 [a@1 x=\"]\\\"\"][b] ",
                ]),
            ),
            1 => m.extend_from_slice(
                rng.pick::<&[u8]>(&[
                    b"<131>Nov 27 16:09:49 vm nas[4242]: ",
                    b"<13>Nov  7 16:10:02 vm app ",
                    b"<30>Nov 27 16:09:47 sshd[812]: ",
                ]),
            ),
            2 => m.extend_from_slice(b"<13>"),
            _ => {}
        }
        let alphabet: &[&[u8]] = &[
            b"a",
            b"b",
            b"z",
            b" ",
            b"1",
            b"9",
            b"0",
            b"<",
            b">",
            b"[",
            b"]",
            b"\"",
            b"\\",
            b":",
            b"\n",
            b"\r",
            b"\0",
            b"\x1b",
            "é".as_bytes(),
            "€".as_bytes(),
            b"\xff",
        ];
        let longest = if rng.below(8) == 0 { 200 } else { 24 };
        for _ in 0..rng.below(longest) {
            m.extend_from_slice(rng.pick(alphabet));
        }
        m
    }

    /// A random syslog stream: counted and LF- or NUL-framed frames (and noise between them),
    /// with the messages a reader must get from it, in order. A stream is one kind of sender:
    /// one that ends its messages with LF (logger, rsyslog; a NUL too once LF framing is
    /// known), or one that ends them with NUL and sends LFs inside (Python's SysLogHandler).
    /// The reads it is cut into change nothing (see the module documentation): the first
    /// NUL-ended message holds no LF, and until LF framing is known an LF-ended message that
    /// starts with `<` is followed by one that starts like a message.
    fn syslog_stream(rng: &mut Rng) -> (Vec<u8>, Vec<Vec<u8>>) {
        let nul_framed = rng.below(3) == 0;
        let (mut lf_known, mut nul_known) = (false, false);
        // The last frame was a message ended by LF, and it started with `<`.
        let (mut after_lf_message, mut after_pri_message) = (false, false);
        let mut stream = Vec::new();
        let mut want = Vec::new();
        for _ in 0..rng.below(10) {
            let mut m = message(rng);
            if rng.below(2) == 0 {
                // Octet counted: any bytes, longer than the limit too; one trailer at the
                // end is not message.
                if m.is_empty() {
                    continue;
                }
                // A count's digit after an LF-ended message: LF framing.
                lf_known |= after_lf_message;
                (after_lf_message, after_pri_message) = (false, false);
                stream.extend_from_slice(format!("{} ", m.len()).as_bytes());
                stream.extend_from_slice(&m);
                let msg = match &m[..] {
                    [rest @ .., b'\r', b'\n'] | [rest @ .., b'\n'] | [rest @ .., 0] => rest,
                    all => all,
                };
                if !msg.is_empty() {
                    want.push(msg.to_vec());
                }
                if rng.below(4) == 0 {
                    // The LF (or NUL) some senders add after a counted frame: noise.
                    let noise: &[&[u8]] = if nul_framed {
                        &[b"\0"]
                    } else {
                        &[b"\n", b"\r\n", b"\0"]
                    };
                    stream.extend_from_slice(rng.pick(noise));
                }
                continue;
            }
            // Ended by LF or NUL: no NUL inside, and not starting like a count; LFs inside
            // only once NUL framing is known.
            m.retain(|&b| b != 0 && (nul_known || b != b'\n'));
            if m.first().is_some_and(|b| (b'1'..=b'9').contains(b)) {
                m.insert(0, b'x');
            }
            let trailer: &[u8] = if nul_framed {
                rng.pick(&[b"\0", b"\r\0"])
            } else {
                if !lf_known && after_pri_message && !m.starts_with(b"<") {
                    m.splice(0..0, *b"<13>");
                }
                lf_known |= after_lf_message && m.starts_with(b"<");
                if lf_known {
                    rng.pick(&[b"\n", b"\r\n", b"\0"])
                } else {
                    rng.pick(&[b"\n", b"\r\n"])
                }
            };
            stream.extend_from_slice(&m);
            stream.extend_from_slice(trailer);
            // The message is what precedes the LF or NUL, less one CR right before it.
            let pri = m.starts_with(b"<");
            m.extend_from_slice(&trailer[..trailer.len() - 1]);
            let msg = m.strip_suffix(b"\r").unwrap_or(&m);
            (after_lf_message, after_pri_message) = (false, false);
            if !msg.is_empty() {
                want.push(msg.to_vec());
                nul_known |= nul_framed;
                after_lf_message = trailer.ends_with(b"\n");
                after_pri_message = after_lf_message && pri;
            }
        }
        (stream, want)
    }

    /// `data` cut at random points into reads.
    fn cut<'d>(rng: &mut Rng, data: &'d [u8]) -> Vec<&'d [u8]> {
        let mut reads = Vec::new();
        let mut rest = data;
        while !rest.is_empty() {
            let longest = if rng.below(2) == 0 { 4 } else { 64 };
            let n = 1 + rng.below(longest);
            let (read, tail) = rest.split_at(n.min(rest.len()));
            reads.push(read);
            rest = tail;
        }
        reads
    }

    /// What the daemon logs for each piece, as the lead's server is to do it: the header of
    /// a whole message or a first piece is parsed, later pieces take the first one's fields.
    fn entries(pieces: &[(Vec<u8>, u32, bool, bool)]) -> Vec<(u8, String, String)> {
        use crate::syslog_message::{parse, write_message, JournalFields, Sticky};
        let mut sticky = Sticky::new();
        let mut fields = JournalFields::new();
        pieces
            .iter()
            .map(|(bytes, part, _, _)| {
                let header = if *part <= 1 {
                    let h = parse(bytes);
                    if *part == 1 {
                        sticky.remember(&h);
                    }
                    h
                } else {
                    sticky.continuation(bytes)
                };
                fields.set(&header);
                let mut message = String::new();
                write_message(&mut message, "192.0.2.7:51234", &header);
                let fields: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
                (header.priority(6), fields.join("\n"), message)
            })
            .collect()
    }

    #[test]
    fn any_frames_cut_at_any_points_give_the_same_pieces_and_entries() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut messages = 0;
        let mut split = 0;
        for case in 0..4000 {
            let max = rng.pick(&[4, 5, 7, 16, 64, 300, 4096]);
            let (stream, want) = syslog_stream(&mut rng);
            let whole = syslog_frames(max, &[&stream]);
            // Joining each message's pieces gives the messages sent, in order.
            let mut got: Vec<Vec<u8>> = Vec::new();
            let mut cur = Vec::new();
            for (bytes, part, continued, partial) in &whole {
                assert!(bytes.len() <= max, "case {case}");
                assert!(!partial, "case {case}: every frame was complete");
                cur.extend_from_slice(bytes);
                if *part > 0 {
                    split += 1;
                }
                if !continued {
                    got.push(std::mem::take(&mut cur));
                }
            }
            assert_eq!(got, want, "case {case}: {stream:?}");
            messages += want.len();
            // Any cuts, and a byte at a time, give the same pieces and so the same entries.
            let reads = cut(&mut rng, &stream);
            assert_eq!(syslog_frames(max, &reads), whole, "case {case}: {reads:?}");
            let bytes: Vec<&[u8]> = stream.chunks(1).collect();
            assert_eq!(syslog_frames(max, &bytes), whole, "case {case}");
            // An unsplit message's entry is its own parse.
            let entries = entries(&whole);
            for ((bytes, part, _, _), entry) in whole.iter().zip(&entries) {
                if *part == 0 {
                    assert_eq!(
                        entry,
                        &super::tests::entries(&[(bytes.clone(), 0, false, false)])[0]
                    );
                }
            }
        }
        assert!(
            messages > 10_000 && split > 1_000,
            "{messages} messages, {split} pieces"
        );
    }

    #[test]
    fn any_bytes_cut_at_any_points_give_the_same_pieces() {
        // Not only well-formed streams: malformed counts, stray digits, CRs, NULs, LFs. Once
        // the terminator is known (a first message ended by NUL, or by an LF the next message
        // follows), cut anywhere, they give the pieces of the stream fed whole; before, cut
        // anywhere but right after an LF (which must then end a message: no more has come).
        // No byte is gained.
        let mut rng = Rng(0x0123_4567_89ab_cdef);
        for case in 0..30_000 {
            let max = rng.pick(&[4, 5, 9, 12, 100]);
            let len = rng.below(120);
            let known: &[u8] = rng.pick(&[b"", b"<1>p\0", b"<1>p\n<1>q\n"]);
            let mut stream = known.to_vec();
            stream.extend((0..len).map(|_| rng.pick(b"0123456789  \n\n\r\0<<>ax\xc3\xa9")));
            let whole = syslog_frames(max, &[&stream]);
            let mut reads = cut(&mut rng, &stream);
            if known.is_empty() {
                // Join each read that ends in an LF to the next.
                let mut joined: Vec<&[u8]> = Vec::new();
                let mut start = 0;
                let mut end = 0;
                for r in &reads {
                    end += r.len();
                    if !r.ends_with(b"\n") || end == stream.len() {
                        joined.push(&stream[start..end]);
                        start = end;
                    }
                }
                reads = joined;
            }
            assert_eq!(syslog_frames(max, &reads), whole, "case {case}: {reads:?}");
            let logged: usize = whole.iter().map(|f| f.0.len()).sum();
            assert!(logged <= stream.len());
        }
    }
}
