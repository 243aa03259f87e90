//! What the framing tests share: feeding a framer and collecting its pieces, and random
//! syslog streams cut at random points.

use crate::config::Framing;
use crate::framing::{Frame, Framer, CONTINUED_MARK, MIN_PIECE, PARTIAL_MARK};

/// What the framer emits for `chunks`, then for `finish`, as (text, part, continued, partial).
pub(crate) fn frames(
    mode: Framing,
    max: usize,
    chunks: &[&[u8]],
) -> Vec<(String, u32, bool, bool)> {
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

pub(crate) fn texts(chunks: &[&[u8]]) -> Vec<String> {
    frames(Framing::Line, 4096, chunks)
        .into_iter()
        .map(|f| f.0)
        .collect()
}

pub(crate) fn whole(s: &str) -> (String, u32, bool, bool) {
    (s.to_string(), 0, false, false)
}

/// The pieces of `chunks` in `mode` with `room`, as (bytes, part, continued, partial).
pub(crate) fn pieces(
    mode: Framing,
    room: usize,
    chunks: &[&[u8]],
) -> Vec<(Vec<u8>, u32, bool, bool)> {
    let mut framer = Framer::new(mode, room);
    let mut out = Vec::new();
    let mut collect = |f: Frame<'_>| out.push((f.bytes.to_vec(), f.part, f.continued, f.partial));
    for c in chunks {
        framer.push(c, &mut collect);
        assert!(framer.buffered() <= room + 1);
    }
    framer.finish(&mut collect);
    out
}

/// The limit a piece's escaped text was cut to: room less its mark.
pub(crate) fn limit_of(room: usize, continued: bool, partial: bool) -> usize {
    let mark = if continued {
        CONTINUED_MARK
    } else if partial {
        PARTIAL_MARK
    } else {
        ""
    };
    room.saturating_sub(mark.len()).max(MIN_PIECE)
}

/// Syslog-mode pieces of `chunks` (then `finish`), as (bytes, part, continued, partial).
pub(crate) fn syslog_frames(max: usize, chunks: &[&[u8]]) -> Vec<(Vec<u8>, u32, bool, bool)> {
    let mut framer = Framer::new(Framing::Syslog, max);
    let mut out = Vec::new();
    let mut collect = |f: Frame<'_>| out.push((f.bytes.to_vec(), f.part, f.continued, f.partial));
    for c in chunks {
        framer.push(c, &mut collect);
        assert!(framer.buffered() <= max + 2);
    }
    framer.finish(&mut collect);
    out
}

/// The bytes of each piece of a syslog stream fed in one read.
pub(crate) fn syslog_texts(data: &[u8]) -> Vec<Vec<u8>> {
    syslog_frames(4096, &[data])
        .into_iter()
        .map(|f| f.0)
        .collect()
}

pub(crate) fn bwhole(s: &[u8]) -> (Vec<u8>, u32, bool, bool) {
    (s.to_vec(), 0, false, false)
}

// ---- the property: frames cut at any points into reads give the same entries ----

/// A small deterministic generator (xorshift64*), so a failure is reproducible.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub(crate) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// A message as senders write them: RFC 5424, RFC 3164, PRI only, or no PRI, with text
/// that may hold anything (LF and NUL too, which only octet counting can carry).
pub(crate) fn message(rng: &mut Rng) -> Vec<u8> {
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
pub(crate) fn syslog_stream(rng: &mut Rng) -> (Vec<u8>, Vec<Vec<u8>>) {
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
pub(crate) fn cut<'d>(rng: &mut Rng, data: &'d [u8]) -> Vec<&'d [u8]> {
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
