//! The state a stop hands over beside the sockets ([`State`]: the daemon's counters and
//! budgets, and what each connection needs to go on), its versioned wire format, and the
//! checks a start makes of every value before it takes anything from it.

use std::net::IpAddr;
use std::time::Duration;

use crate::config::Framing;
use crate::connection::ConnectionState;
use crate::framing::{FramerState, Terminator};
use crate::summary::Summary;

/// The first bytes of a state memfd, then [`VERSION`].
const MAGIC: &[u8] = b"tcp-listener state\n";
/// The state format this build writes; it reads this one and every earlier one.
///
/// - 1: the first.
/// - 2: a connection's `lines` counts lines, not the pieces of long lines (so the pieces of a
///   line share its `LINE_NUMBER`), and its framer's syslog terminator (LF or NUL, learned
///   from the stream) follows its syslog state. A version 1 state is read on: its count goes
///   on as the next line's number, a line cut in pieces at the stop goes on under the number
///   its carried partial piece was logged with, and the terminator is learned again.
pub const VERSION: u32 = 2;

/// What the daemon carries over besides the sockets.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct State {
    pub next_id: u64,
    pub summary: Summary,
    /// Each source address's line budget: the tokens it had left.
    pub budgets: Vec<(IpAddr, f64)>,
    pub connections: Vec<ConnectionState>,
}

impl State {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::with_capacity(256));
        w.0.extend_from_slice(MAGIC);
        w.u32(VERSION);
        w.u64(self.next_id);
        let s = &self.summary;
        for n in [s.connections, s.lines, s.refused, s.dropped] {
            w.u64(n);
        }
        w.u32(self.budgets.len() as u32);
        for (ip, tokens) in &self.budgets {
            w.str(&ip.to_string());
            w.u64(tokens.to_bits());
        }
        w.u32(self.connections.len() as u32);
        for c in &self.connections {
            w.u64(c.id);
            w.str(&c.peer.to_string());
            w.u64(c.age.as_millis() as u64);
            w.u64(c.idle.as_millis() as u64);
            for n in [c.bytes, c.lines, c.dropped, c.unreported_drops] {
                w.u64(n);
            }
            w.u8(c.dropping_line.into());
            let f = &c.framer;
            w.u8(framing_code(f.mode));
            w.u8(f.next_mode.map_or(u8::MAX, framing_code));
            w.u32(f.parts);
            w.u8(f.after_cr.into());
            w.u8(f.syslog.0);
            w.u64(f.syslog.1);
            w.u8(terminator_code(f.terminator));
            w.u32(f.extra.into());
            w.bytes(&f.buf);
            w.u8(c.sticky.is_some().into());
            if let Some(sticky) = &c.sticky {
                w.bytes(sticky);
            }
        }
        w.0
    }

    /// Reads a state; the error says why it cannot be used.
    pub fn decode(bytes: &[u8]) -> Result<State, String> {
        let rest = bytes
            .strip_prefix(MAGIC)
            .ok_or("not a tcp-listener state (no magic)")?;
        let mut r = Reader(rest);
        let version = r.u32()?;
        if !(1..=VERSION).contains(&version) {
            return Err(format!(
                "state version {version}, this tcp-listener reads versions 1 to {VERSION}"
            ));
        }
        let next_id = r.u64()?;
        let summary = Summary {
            connections: r.u64()?,
            lines: r.u64()?,
            refused: r.u64()?,
            dropped: r.u64()?,
            ..Summary::default()
        };
        let mut budgets = Vec::new();
        for _ in 0..r.count()? {
            let ip = r.str()?.parse().map_err(|_| "a bad source address")?;
            budgets.push((ip, f64::from_bits(r.u64()?)));
        }
        let mut connections = Vec::new();
        for _ in 0..r.count()? {
            let id = r.u64()?;
            let peer = r.str()?.parse().map_err(|_| "a bad peer address")?;
            let age = Duration::from_millis(r.u64()?);
            let idle = Duration::from_millis(r.u64()?);
            let (bytes, mut lines, dropped, unreported_drops) =
                (r.u64()?, r.u64()?, r.u64()?, r.u64()?);
            let dropping_line = r.bool()?;
            let mode = framing_of(r.u8()?)?;
            let next_mode = match r.u8()? {
                u8::MAX => None,
                code => Some(framing_of(code)?),
            };
            let parts = r.u32()?;
            let after_cr = r.bool()?;
            let syslog = (r.u8()?, r.u64()?);
            let terminator = match version {
                1 => Terminator::Unknown,
                _ => terminator_of(r.u8()?)?,
            };
            let extra = u16::try_from(r.u32()?).map_err(|_| "a bad syslog host room")?;
            let buf = r.bytes()?.to_vec();
            let sticky = match r.bool()? {
                true => Some(r.bytes()?.to_vec()),
                false => None,
            };
            if version == 1 && parts > 0 && !dropping_line {
                // Version 1 numbered every piece: its partial piece logged at the stop took
                // the number after `lines`, which the rest of that line keeps now.
                lines = lines.saturating_add(1);
            }
            connections.push(ConnectionState {
                id,
                peer,
                age,
                idle,
                bytes,
                lines,
                dropped,
                unreported_drops,
                dropping_line,
                framer: FramerState {
                    mode,
                    next_mode,
                    buf,
                    parts,
                    extra,
                    after_cr,
                    syslog,
                    terminator,
                },
                sticky,
            });
        }
        if !r.0.is_empty() {
            return Err(format!("{} bytes after the end of the state", r.0.len()));
        }
        Ok(State {
            next_id,
            summary,
            budgets,
            connections,
        })
    }
}

/// The largest counter a state may carry (2^62): far above any a daemon reaches, and far
/// enough below `u64::MAX` that counting on from it never overflows.
pub const MAX_COUNTER: u64 = 1 << 62;

/// The most pieces of one line a state may say were logged (2^30): counting on from it never
/// overflows.
const MAX_PARTS: u32 = 1 << 30;

/// How long a carried rate-limit debt may take to pay off at the rate in force: longer, and
/// the budget did not come from a daemon (one in debt by a stop's reading takes minutes).
pub const MAX_DEBT: Duration = Duration::from_secs(24 * 3600);

/// A connection may be this old, or idle this long, at most (ten years).
const MAX_AGE: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

impl State {
    /// Checks every value of a decoded state before anything is taken from it: counters in
    /// range, connection ids below the next id and each once, ages and idle times in range,
    /// the budgets finite and within what the configuration in force (`max_lines_per_sec`,
    /// `max_lines_burst`) could give, each framer and syslog header usable. `Err` says which
    /// value is out of range, in words; the whole state is then refused (the connections are
    /// served on as new ones).
    pub fn check(&self, config: &crate::config::Config) -> Result<(), String> {
        let counter = |what: &str, n: u64| -> Result<(), String> {
            if n > MAX_COUNTER {
                return Err(format!("{what} {n} is out of range (at most 2^62)"));
            }
            Ok(())
        };
        if self.next_id == 0 {
            return Err("the next connection id is 0 (ids start at 1)".into());
        }
        counter("the next connection id", self.next_id)?;
        let s = &self.summary;
        counter("the count of connections", s.connections)?;
        counter("the count of lines", s.lines)?;
        counter("the count of refusals", s.refused)?;
        counter("the count of dropped lines", s.dropped)?;
        let rate = f64::from(config.max_lines_per_sec);
        let max_debt = rate * MAX_DEBT.as_secs_f64();
        for (ip, tokens) in &self.budgets {
            if !tokens.is_finite() {
                return Err(format!(
                    "the line budget of {ip} is {tokens}, not a finite number"
                ));
            }
            // More than the burst is taken as the burst (a reload may have lowered it); the
            // burst a u32 could hold is the most any configuration gives.
            if *tokens > f64::from(u32::MAX) {
                return Err(format!(
                    "the line budget of {ip} is {tokens:e} lines, more than any max_lines_burst"
                ));
            }
            if rate > 0.0 && *tokens < -max_debt {
                return Err(format!(
                    "the line budget of {ip} is {tokens:e} lines, a debt that would take more \
                     than {} s to pay at max_lines_per_sec = {} (at most {max_debt:e} lines)",
                    MAX_DEBT.as_secs(),
                    config.max_lines_per_sec
                ));
            }
        }
        let mut ids = std::collections::HashSet::new();
        for c in &self.connections {
            let at = format!("connection {}", c.id);
            if c.id == 0 || c.id >= self.next_id {
                return Err(format!(
                    "{at}: its id is not below the next connection id {}",
                    self.next_id
                ));
            }
            if !ids.insert(c.id) {
                return Err(format!("{at} is in the state twice"));
            }
            if c.peer.port() == 0 || c.peer.ip().is_unspecified() {
                return Err(format!("{at}: its peer {} is no client's address", c.peer));
            }
            if c.age > MAX_AGE || c.idle > c.age {
                return Err(format!(
                    "{at}: open for {} ms and idle for {} ms, out of range",
                    c.age.as_millis(),
                    c.idle.as_millis()
                ));
            }
            counter(&format!("{at}: its count of bytes"), c.bytes)?;
            counter(&format!("{at}: its count of lines"), c.lines)?;
            counter(&format!("{at}: its count of dropped lines"), c.dropped)?;
            if c.unreported_drops > c.dropped {
                return Err(format!(
                    "{at}: {} dropped lines not reported, of {} dropped",
                    c.unreported_drops, c.dropped
                ));
            }
            if c.framer.parts > MAX_PARTS {
                return Err(format!(
                    "{at}: {} pieces of one line, out of range (at most 2^30)",
                    c.framer.parts
                ));
            }
            crate::framing::Framer::restore(c.framer.clone(), crate::framing::MIN_PIECE)
                .map_err(|why| format!("{at}: {why}"))?;
            if let Some(sticky) = &c.sticky {
                if crate::syslog_message::Sticky::restore(sticky).is_none() {
                    return Err(format!("{at}: a syslog header that cannot be read"));
                }
            }
        }
        Ok(())
    }
}

fn framing_code(mode: Framing) -> u8 {
    match mode {
        Framing::Line => 0,
        Framing::Raw => 1,
        Framing::Syslog => 2,
    }
}

fn terminator_code(terminator: Terminator) -> u8 {
    match terminator {
        Terminator::Unknown => 0,
        Terminator::AfterLf { cut: false } => 1,
        Terminator::Lf => 2,
        Terminator::Nul => 3,
        Terminator::AfterLf { cut: true } => 4,
    }
}

fn terminator_of(code: u8) -> Result<Terminator, String> {
    match code {
        0 => Ok(Terminator::Unknown),
        1 => Ok(Terminator::AfterLf { cut: false }),
        2 => Ok(Terminator::Lf),
        3 => Ok(Terminator::Nul),
        4 => Ok(Terminator::AfterLf { cut: true }),
        _ => Err(format!("unknown syslog terminator {code}")),
    }
}

fn framing_of(code: u8) -> Result<Framing, String> {
    match code {
        0 => Ok(Framing::Line),
        1 => Ok(Framing::Raw),
        2 => Ok(Framing::Syslog),
        _ => Err(format!("unknown framing {code}")),
    }
}

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, v: &[u8]) {
        self.u32(v.len() as u32);
        self.0.extend_from_slice(v);
    }
    fn str(&mut self, v: &str) {
        self.bytes(v.as_bytes());
    }
}

struct Reader<'a>(&'a [u8]);

const TRUNCATED: &str = "the state ends too early";

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err(TRUNCATED.into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn bool(&mut self) -> Result<bool, String> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(format!("{v} where a flag was expected")),
        }
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    /// A count of items, each at least a byte long: never more than the bytes left.
    fn count(&mut self) -> Result<usize, String> {
        let n = self.u32()? as usize;
        if n > self.0.len() {
            return Err(TRUNCATED.into());
        }
        Ok(n)
    }
    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn str(&mut self) -> Result<&'a str, String> {
        std::str::from_utf8(self.bytes()?).map_err(|_| "text that is not UTF-8".to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::io::Write;
    use std::time::Instant;

    use super::*;
    use crate::config::RateLimitAction;
    use crate::connection::tests::{config, pair};
    use crate::connection::Connection;
    use crate::ratelimit::TokenBucket;

    fn sample() -> State {
        State {
            next_id: 43,
            summary: Summary {
                connections: 42,
                lines: 1000,
                refused: 3,
                dropped: 7,
                ..Summary::default()
            },
            budgets: vec![
                ("192.0.2.7".parse().unwrap(), -2.5),
                ("2001:db8::1".parse().unwrap(), 4999.0),
            ],
            connections: vec![ConnectionState {
                id: 41,
                peer: "[fe80::1%1]:51234".parse().unwrap(),
                age: Duration::from_millis(12_345),
                idle: Duration::from_millis(50),
                bytes: 4096,
                lines: 100,
                dropped: 2,
                unreported_drops: 1,
                dropping_line: true,
                framer: FramerState {
                    mode: Framing::Syslog,
                    next_mode: Some(Framing::Line),
                    buf: b"half a li\x00\xffne".to_vec(),
                    parts: 2,
                    extra: 4,
                    after_cr: true,
                    syslog: (2, 17),
                    terminator: Terminator::Nul,
                },
                sticky: Some(crate::syslog_message::Sticky::new().save()),
            }],
        }
    }

    #[test]
    fn a_state_reads_back_as_written() {
        let state = sample();
        assert_eq!(State::decode(&state.encode()), Ok(state));
        assert_eq!(
            State::decode(&State::default().encode()),
            Ok(State::default())
        );
    }

    #[test]
    fn a_foreign_corrupt_or_truncated_state_is_refused_with_a_reason() {
        let good = sample().encode();
        assert_eq!(
            State::decode(b"something else").unwrap_err(),
            "not a tcp-listener state (no magic)"
        );
        let mut newer = good.clone();
        newer[MAGIC.len()..MAGIC.len() + 4].copy_from_slice(&3u32.to_le_bytes());
        assert_eq!(
            State::decode(&newer).unwrap_err(),
            "state version 3, this tcp-listener reads versions 1 to 2"
        );
        for cut in MAGIC.len()..good.len() {
            assert!(State::decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = good.clone();
        longer.push(0);
        assert!(State::decode(&longer)
            .unwrap_err()
            .contains("after the end"));
        // Any single flipped byte is either refused or read as some valid state: no panic.
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0xa5;
            let _ = State::decode(&bad);
        }
    }

    /// Issue 17 item 7: every value is checked before it is used; one out of range refuses
    /// the state, with which value and why.
    #[test]
    fn a_state_out_of_range_is_refused_with_the_value_and_why() {
        let config = crate::config::Config::default();
        assert_eq!(sample().check(&config), Ok(()));
        let refused = |change: &dyn Fn(&mut State)| {
            let mut state = sample();
            change(&mut state);
            // Through the wire format, as the next process reads it.
            State::decode(&state.encode())
                .unwrap()
                .check(&config)
                .unwrap_err()
        };
        let budget = |tokens: f64| move |s: &mut State| s.budgets[0].1 = tokens;
        assert_eq!(
            refused(&budget(-1e300)),
            "the line budget of 192.0.2.7 is -1e300 lines, a debt that would take more than \
             86400 s to pay at max_lines_per_sec = 1000 (at most 8.64e7 lines)"
        );
        assert!(refused(&budget(-1e9)).starts_with("the line budget of 192.0.2.7 is -1e9"));
        assert!(refused(&budget(f64::NAN)).contains("NaN, not a finite number"));
        assert!(refused(&budget(f64::INFINITY)).contains("inf, not a finite number"));
        assert!(refused(&budget(1e12)).contains("more than any max_lines_burst"));
        // A debt a stop can run up is taken; without a rate any finite budget is harmless.
        let mut in_debt = sample();
        in_debt.budgets[0].1 = -1e6;
        assert_eq!(in_debt.check(&config), Ok(()));
        let unlimited = crate::config::Config {
            max_lines_per_sec: 0,
            ..Default::default()
        };
        in_debt.budgets[0].1 = -1e300;
        assert_eq!(in_debt.check(&unlimited), Ok(()));
        assert!(refused(&|s| s.next_id = 0).contains("is 0"));
        assert!(refused(&|s| s.next_id = u64::MAX).contains("out of range"));
        assert!(refused(&|s| s.summary.lines = u64::MAX).contains("the count of lines"));
        assert!(refused(&|s| s.connections[0].id = 43).contains("not below the next"));
        assert!(refused(&|s| {
            let c = s.connections[0].clone();
            s.connections.push(c)
        })
        .contains("twice"));
        assert!(
            refused(&|s| s.connections[0].peer = "0.0.0.0:1".parse().unwrap())
                .contains("no client's address")
        );
        assert!(
            refused(&|s| s.connections[0].idle = Duration::from_secs(100)).contains("idle for")
        );
        assert!(
            refused(&|s| s.connections[0].age = Duration::from_millis(u64::MAX))
                .contains("out of range")
        );
        assert!(refused(&|s| s.connections[0].lines = u64::MAX).contains("its count of lines"));
        assert!(refused(&|s| s.connections[0].unreported_drops = 3).contains("not reported"));
        assert!(refused(&|s| s.connections[0].framer.parts = u32::MAX).contains("pieces"));
        assert!(
            refused(&|s| s.connections[0].framer.syslog = (2, 1 << 40)).contains("an octet count")
        );
        assert!(
            refused(&|s| s.connections[0].sticky = Some(vec![9; 13])).contains("a syslog header")
        );
    }

    /// A state as version 1 (main before issue 17) wrote it: one connection with a line cut in
    /// two pieces logged (LINE_NUMBER 6 and 7, `lines` 7) and `cc` held, whose partial piece
    /// was logged at the stop as LINE_NUMBER 8.
    const VERSION_1: &str = "7463702d6c697374656e65722073746174650a010000000800000000000000070000\
        00000000001e000000000000000000000000000000000000000000000001000000090000003139322e302e32\
        2e3700000000000029400100000007000000000000000f0000003139322e302e322e373a3531323334881300\
        000000000014000000000000002c010000000000000700000000000000000000000000000000000000000000\
        000000ff02000000000000000000000000000000000002000000636300";

    #[test]
    fn a_version_1_state_is_read_on_and_its_cut_line_keeps_its_number() {
        let bytes: Vec<u8> = (0..VERSION_1.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&VERSION_1[i..i + 2], 16).unwrap())
            .collect();
        let state = State::decode(&bytes).expect("version 1 is read");
        assert_eq!((state.next_id, state.summary.lines), (8, 30));
        let c = &state.connections[0];
        assert_eq!((c.id, c.bytes, c.framer.parts), (7, 300, 2));
        assert_eq!(c.framer.buf, b"cc");
        assert_eq!(c.framer.terminator, Terminator::Unknown, "learned again");
        assert_eq!(
            c.lines, 8,
            "the rest of the cut line goes on as LINE_NUMBER 8, its carried piece's"
        );
        // Written again, it is a version 2 state that reads back the same.
        assert_eq!(State::decode(&state.encode()), Ok(state));
    }

    #[test]
    fn the_state_survives_a_sealed_memfd() {
        let data = sample().encode();
        let fd = crate::memfd::sealed_memfd(&data, c"test-state").unwrap();
        // Sealed: it cannot be written to any more.
        let mut file = File::from(fd.try_clone().unwrap());
        assert!(file.write_all(b"x").is_err());
        assert_eq!(crate::memfd::read_memfd(fd).unwrap(), data);
    }

    /// A line cut in pieces at a stop goes on in the next process under its number, through
    /// the wire format (connection/carry.rs saves and restores the connection).
    #[test]
    fn a_line_carried_over_keeps_its_line_number_in_the_next_process() {
        let (_client, stream, addr) = pair();
        let t0 = Instant::now();
        let cfg = config("max_line_length = 4");
        let mut conn = Connection::new(stream, addr, 1, &cfg, t0);
        let mut budget = TokenBucket::new(0, 0, t0);
        let mut got = Vec::new();
        let throttle = RateLimitAction::Throttle;
        conn.frame(b"one\naaaabbbbcc", t0, &mut budget, throttle, |l| {
            got.push((l.number, l.frame.part, l.frame.partial))
        });
        // At the stop: what is held of line 2 is logged as its last piece, partial.
        assert_eq!(
            conn.log_carried(|l| got.push((l.number, l.frame.part, l.frame.partial))),
            0
        );
        assert_eq!(
            got,
            [(1, 0, false), (2, 1, false), (2, 2, false), (2, 3, true)]
        );
        // The next process goes on with the same line: its pieces keep its number.
        let state = State {
            connections: vec![conn.save(t0)],
            ..Default::default()
        };
        let state = State::decode(&state.encode()).unwrap();
        // (Another socket pair stands for the same connection: the state names its peer.)
        let (_client2, stream2, addr2) = pair();
        let mut saved = state.connections[0].clone();
        saved.peer = addr2;
        let mut next = Connection::restore(stream2, &saved, &cfg, t0)
            .map_err(|(_, why)| why)
            .unwrap();
        got.clear();
        let counts = next.frame(b"ccdd\nthree\n", t0, &mut budget, throttle, |l| {
            got.push((l.number, l.frame.part, l.frame.partial))
        });
        assert_eq!(
            got,
            [(2, 3, false), (2, 4, false), (3, 1, false), (3, 2, false)]
        );
        assert_eq!(counts.logged, 1, "line 2 was counted when it began");
        assert_eq!(next.totals(t0).lines, 3);
    }
}
