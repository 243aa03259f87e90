//! The journald sink: entries in journald's native protocol, one datagram each, to the journal
//! socket. An entry too large for a datagram is passed as a sealed memfd, the way journald
//! accepts large entries, so nothing is cut.
//!
//! When journald's queue is full the entry waits here and the sink reports not ready until
//! the socket is writable again. When journald is gone (stopped, restarting, socket removed)
//! the sink keeps what it holds, retries every [`RETRY_INTERVAL`], and once journald is back
//! logs how long it was away and how many entries were held. Entries still held when the
//! daemon stops go to stderr and are counted as undelivered.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, IoSlice, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};

use super::{priority, DeliveryStats, Entry};

/// The mio token of the journal socket.
pub const SINK_TOKEN: Token = Token(usize::MAX - 3);

/// How often to try to reach a journald that has gone away.
pub const RETRY_INTERVAL: Duration = Duration::from_millis(250);

/// How often to retry a full queue even if no writable event arrives.
const FULL_QUEUE_RETRY: Duration = Duration::from_millis(50);

/// Appends one field in the native protocol: `KEY=value\n`, or the length-prefixed binary
/// form when the value holds a newline.
pub fn encode_field(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    out.extend_from_slice(key.as_bytes());
    if value.contains(&b'\n') {
        out.push(b'\n');
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        out.push(b'=');
    }
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// Encodes a whole entry; `MESSAGE` comes first.
pub fn encode_entry(out: &mut Vec<u8>, entry: &Entry<'_>) {
    let mut num = itoa_buf();
    encode_field(out, "MESSAGE", entry.message.as_bytes());
    encode_field(out, "PRIORITY", fmt_u64(&mut num, entry.priority.into()));
    encode_field(out, "SYSLOG_IDENTIFIER", b"tcp-listener");
    encode_field(out, "SYSLOG_FACILITY", b"3");
    encode_field(out, "LISTENER_EVENT", entry.event.as_str().as_bytes());
    if let Some(peer) = entry.peer {
        let ip = peer.addr.ip().to_canonical().to_string();
        encode_field(out, "REMOTE_ADDR", ip.as_bytes());
        encode_field(
            out,
            "REMOTE_PORT",
            fmt_u64(&mut num, peer.addr.port().into()),
        );
        encode_field(out, "CONNECTION_ID", fmt_u64(&mut num, peer.connection_id));
    }
    for (key, value) in entry.fields {
        encode_field(out, key, value.as_bytes());
    }
}

fn itoa_buf() -> [u8; 20] {
    [0; 20]
}

fn fmt_u64(buf: &mut [u8; 20], mut v: u64) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return &buf[i..];
        }
    }
}

/// The MESSAGE of an encoded entry, for the stderr fallback.
pub fn message_of(encoded: &[u8]) -> Cow<'_, str> {
    if let Some(rest) = encoded.strip_prefix(b"MESSAGE=") {
        let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        return String::from_utf8_lossy(&rest[..end]);
    }
    if let Some(rest) = encoded.strip_prefix(b"MESSAGE\n") {
        if rest.len() >= 8 {
            let len = u64::from_le_bytes(rest[..8].try_into().expect("8 bytes")) as usize;
            return String::from_utf8_lossy(&rest[8..(8 + len).min(rest.len())]);
        }
    }
    String::from_utf8_lossy(encoded)
}

pub struct JournaldSink {
    path: PathBuf,
    socket: Option<UnixDatagram>,
    /// Encoded entries waiting for journald, oldest first.
    pending: VecDeque<Vec<u8>>,
    scratch: Vec<u8>,
    /// Set while journald cannot be reached.
    down_since: Option<Instant>,
    /// Entries that had to wait because journald was away.
    held_while_down: u64,
    retry_at: Option<Instant>,
    stats: DeliveryStats,
}

impl JournaldSink {
    pub fn open(path: &Path, registry: &Registry) -> JournaldSink {
        let mut sink = JournaldSink {
            path: path.to_owned(),
            socket: None,
            pending: VecDeque::new(),
            scratch: Vec::with_capacity(8192),
            down_since: None,
            held_while_down: 0,
            retry_at: None,
            stats: DeliveryStats::default(),
        };
        if let Err(e) = sink.connect(registry) {
            sink.went_down(Instant::now(), &e);
        }
        sink
    }

    pub fn socket_path(&self) -> &Path {
        &self.path
    }

    fn connect(&mut self, registry: &Registry) -> io::Result<()> {
        let socket = UnixDatagram::unbound()?;
        socket.connect(&self.path)?;
        socket.set_nonblocking(true)?;
        registry.register(
            &mut SourceFd(&socket.as_raw_fd()),
            SINK_TOKEN,
            Interest::WRITABLE,
        )?;
        self.socket = Some(socket);
        Ok(())
    }

    fn went_down(&mut self, now: Instant, error: &io::Error) {
        if self.down_since.is_none() {
            self.down_since = Some(now);
            let _ = writeln!(
                io::stderr(),
                "tcp-listener: journald at {} unreachable ({error}); holding entries and retrying",
                self.path.display()
            );
        }
        // Closing the socket also removes it from the poll set.
        self.socket = None;
        self.retry_at = Some(now + RETRY_INTERVAL);
    }

    pub fn is_ready(&self) -> bool {
        self.pending.is_empty()
    }

    pub fn retry_at(&self) -> Option<Instant> {
        if self.pending.is_empty() && self.socket.is_some() {
            None
        } else {
            self.retry_at
        }
    }

    pub fn stats(&self) -> DeliveryStats {
        self.stats
    }

    pub fn log(&mut self, entry: &Entry<'_>) {
        self.scratch.clear();
        encode_entry(&mut self.scratch, entry);
        if !self.pending.is_empty() || self.socket.is_none() {
            if self.socket.is_none() {
                self.held_while_down += 1;
            }
            self.pending.push_back(self.scratch.clone());
            return;
        }
        let socket = self.socket.as_ref().expect("checked above");
        match send(socket, &self.scratch) {
            Ok(()) => self.stats.delivered += 1,
            Err(e) => {
                let now = Instant::now();
                self.pending.push_back(self.scratch.clone());
                self.after_error(now, &e);
            }
        }
    }

    /// Decides what a failed send means: a full queue (wait) or journald gone (retry later).
    fn after_error(&mut self, now: Instant, error: &io::Error) {
        match error.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::ENOBUFS) | Some(libc::EINTR) => {
                self.retry_at = Some(now + FULL_QUEUE_RETRY);
            }
            _ => {
                self.held_while_down += self.pending.len() as u64;
                self.went_down(now, error);
            }
        }
    }

    pub fn flush(&mut self, now: Instant, registry: &Registry) {
        if self.socket.is_none() {
            if self.retry_at.is_some_and(|t| t > now) {
                return;
            }
            if let Err(e) = self.connect(registry) {
                self.retry_at = Some(now + RETRY_INTERVAL);
                let _ = e;
                return;
            }
        }
        while let Some(front) = self.pending.front() {
            let socket = self.socket.as_ref().expect("connected above");
            match send(socket, front) {
                Ok(()) => {
                    self.pending.pop_front();
                    self.stats.delivered += 1;
                }
                Err(e) => {
                    self.after_error(now, &e);
                    return;
                }
            }
        }
        self.retry_at = None;
        if let Some(since) = self.down_since.take() {
            let message = format!(
                "journald at {} was unreachable for {:.1} s; {} entries were held meanwhile and are delivered now",
                self.path.display(),
                now.duration_since(since).as_secs_f64(),
                self.held_while_down
            );
            self.held_while_down = 0;
            self.log(&Entry::notice(priority::WARNING, &message));
        }
    }

    pub fn drain(&mut self, deadline: Instant, registry: &Registry) {
        loop {
            let now = Instant::now();
            self.flush(now, registry);
            if self.pending.is_empty() || now >= deadline {
                break;
            }
            let wait_until = self.retry_at.unwrap_or(deadline).min(deadline);
            match &self.socket {
                Some(socket) => wait_writable(socket, wait_until.saturating_duration_since(now)),
                None => std::thread::sleep(wait_until.saturating_duration_since(now)),
            }
        }
        if self.pending.is_empty() {
            return;
        }
        let mut err = io::stderr().lock();
        let _ = writeln!(
            err,
            "tcp-listener: {} entries could not be delivered to journald at {}; they follow",
            self.pending.len(),
            self.path.display()
        );
        for encoded in self.pending.drain(..) {
            let _ = writeln!(err, "{}", message_of(&encoded));
            self.stats.undelivered += 1;
        }
    }
}

/// Sends one entry: a datagram, or a sealed memfd when it is too large for one.
fn send(socket: &UnixDatagram, data: &[u8]) -> io::Result<()> {
    match socket.send(data) {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => send_memfd(socket, data),
        Err(e) => Err(e),
    }
}

fn send_memfd(socket: &UnixDatagram, data: &[u8]) -> io::Result<()> {
    let fd = memfd_create(
        c"tcp-listener-entry",
        MemFdCreateFlag::MFD_ALLOW_SEALING | MemFdCreateFlag::MFD_CLOEXEC,
    )?;
    let mut file = File::from(fd);
    file.write_all(data)?;
    fcntl(
        file.as_raw_fd(),
        FcntlArg::F_ADD_SEALS(
            SealFlag::F_SEAL_SHRINK
                | SealFlag::F_SEAL_GROW
                | SealFlag::F_SEAL_WRITE
                | SealFlag::F_SEAL_SEAL,
        ),
    )?;
    let fds = [file.as_fd().as_raw_fd()];
    let no_data: [IoSlice<'_>; 0] = [];
    sendmsg::<UnixAddr>(
        socket.as_raw_fd(),
        &no_data,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )?;
    Ok(())
}

fn wait_writable(socket: &UnixDatagram, timeout: Duration) {
    let mut pfd = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    let ms = timeout.as_millis().clamp(1, 1000) as libc::c_int;
    // SAFETY: one valid pollfd for the duration of the call.
    unsafe { libc::poll(&mut pfd, 1, ms) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::{Event, Peer};

    #[test]
    fn fields_use_the_binary_form_only_when_needed() {
        let mut out = Vec::new();
        encode_field(&mut out, "A", b"simple");
        encode_field(&mut out, "B", b"two\nlines");
        let mut want = b"A=simple\nB\n".to_vec();
        want.extend_from_slice(&9u64.to_le_bytes());
        want.extend_from_slice(b"two\nlines\n");
        assert_eq!(out, want);
    }

    #[test]
    fn a_line_entry_names_its_peer() {
        let entry = Entry {
            priority: 6,
            event: Event::Line,
            message: "192.0.2.7:51234: abcdefg!",
            peer: Some(Peer {
                addr: "[::ffff:192.0.2.7]:51234".parse().unwrap(),
                connection_id: 42,
            }),
            fields: &[("LINE_PART", "2")],
        };
        let mut out = Vec::new();
        encode_entry(&mut out, &entry);
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "MESSAGE=192.0.2.7:51234: abcdefg!\nPRIORITY=6\nSYSLOG_IDENTIFIER=tcp-listener\n\
             SYSLOG_FACILITY=3\nLISTENER_EVENT=line\nREMOTE_ADDR=192.0.2.7\nREMOTE_PORT=51234\n\
             CONNECTION_ID=42\nLINE_PART=2\n"
        );
        assert_eq!(message_of(&out), "192.0.2.7:51234: abcdefg!");
    }

    #[test]
    fn numbers_format_in_decimal() {
        let mut b = itoa_buf();
        assert_eq!(fmt_u64(&mut b, 0), b"0");
        assert_eq!(fmt_u64(&mut b, u64::MAX), u64::MAX.to_string().as_bytes());
    }
}
