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
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};

use super::{priority, DeliveryStats, Entry, Peer};

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

/// Appends `KEY=value\n` for a value that cannot hold a newline (a number, a constant).
fn encode_plain(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    debug_assert!(!value.contains(&b'\n'));
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// Encodes a whole entry; `MESSAGE` comes first.
pub fn encode_entry(out: &mut Vec<u8>, entry: &Entry<'_>) {
    encode_entry_cached(out, entry, &mut PeerFields::default());
}

/// The encoded `REMOTE_ADDR`, `REMOTE_PORT` and `CONNECTION_ID` of the last peer: the lines
/// of one read all come from one client, so most entries reuse them as they are.
#[derive(Default)]
pub struct PeerFields {
    peer: Option<Peer>,
    encoded: Vec<u8>,
}

/// [`encode_entry`], with the peer's fields from `cache` when it is the same peer.
pub fn encode_entry_cached(out: &mut Vec<u8>, entry: &Entry<'_>, cache: &mut PeerFields) {
    let mut num = itoa_buf();
    encode_field(out, "MESSAGE", entry.message.as_bytes());
    encode_plain(out, "PRIORITY", fmt_u64(&mut num, entry.priority.into()));
    out.extend_from_slice(b"SYSLOG_IDENTIFIER=tcp-listener\nSYSLOG_FACILITY=3\n");
    encode_plain(out, "LISTENER_EVENT", entry.event.as_str().as_bytes());
    if let Some(peer) = entry.peer {
        if cache.peer != Some(peer) {
            cache.encoded.clear();
            encode_ip(&mut cache.encoded, peer.addr.ip().to_canonical());
            encode_plain(
                &mut cache.encoded,
                "REMOTE_PORT",
                fmt_u64(&mut num, peer.addr.port().into()),
            );
            encode_plain(
                &mut cache.encoded,
                "CONNECTION_ID",
                fmt_u64(&mut num, peer.connection_id),
            );
            cache.peer = Some(peer);
        }
        out.extend_from_slice(&cache.encoded);
    }
    for (key, value) in entry.fields {
        encode_field(out, key, value.as_bytes());
    }
}

/// `REMOTE_ADDR=<ip>\n`, formatted in place: an entry per line must not cost an allocation.
fn encode_ip(out: &mut Vec<u8>, ip: IpAddr) {
    out.extend_from_slice(b"REMOTE_ADDR=");
    match ip {
        IpAddr::V4(v4) => {
            let mut num = itoa_buf();
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                out.extend_from_slice(fmt_u64(&mut num, octet.into()));
            }
        }
        // An address never holds a newline: the plain `KEY=value` form is right.
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
    out.push(b'\n');
}

fn itoa_buf() -> [u8; 20] {
    [0; 20]
}

fn fmt_u64(buf: &mut [u8; 20], v: u64) -> &[u8] {
    super::decimal_bytes(buf, v)
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

/// An entry journald may not have read yet.
struct InFlight {
    encoded: Vec<u8>,
    /// Bytes it occupies in the datagram (0 when it went as a memfd).
    wire_len: usize,
}

pub struct JournaldSink {
    path: PathBuf,
    socket: Option<UnixDatagram>,
    /// Encoded entries waiting for journald, oldest first.
    pending: VecDeque<Vec<u8>>,
    /// Entries sent but perhaps not yet read by journald, oldest first: if journald dies,
    /// what was in its socket queue is lost, so these are sent again (marked REDELIVERED=1).
    in_flight: VecDeque<InFlight>,
    /// Buffers of trimmed in-flight entries, reused so that tracking allocates nothing.
    spare: Vec<Vec<u8>>,
    sends_since_trim: u32,
    peer_fields: PeerFields,
    /// Set while journald cannot be reached.
    down_since: Option<Instant>,
    /// Entries that had to wait because journald was away.
    held_while_down: u64,
    /// Entries sent again after journald went away.
    redelivered: u64,
    retry_at: Option<Instant>,
    stats: DeliveryStats,
    /// A descriptor held in reserve: when the process is out of them (clients took them all),
    /// it is given up so that a memfd for a large entry, or a socket to reconnect, can still
    /// be made. Without it the sink could wait for a descriptor that only reading clients
    /// (which waits for the sink) would free.
    reserve: Option<File>,
}

/// How long one send may wait for room in journald's queue.
const SEND_TIMEOUT: Duration = Duration::from_millis(2);

/// Buffers of forgotten in-flight entries kept for reuse.
const SPARE_MAX: usize = 128;

/// Entries sent with one sendmmsg(2) at most.
const BATCH: usize = 64;

/// In-flight entries kept at most; past this the sink waits for journald to read.
const IN_FLIGHT_MAX: usize = 2048;
/// Sends between two looks at how much journald has read.
const TRIM_EVERY: u32 = 64;
/// How soon to look again while journald still has unread entries of ours.
const TRIM_RETRY: Duration = Duration::from_millis(10);

impl JournaldSink {
    pub fn open(path: &Path, registry: &Registry) -> JournaldSink {
        let mut sink = JournaldSink {
            path: path.to_owned(),
            socket: None,
            pending: VecDeque::new(),
            in_flight: VecDeque::new(),
            spare: Vec::new(),
            sends_since_trim: 0,
            peer_fields: PeerFields::default(),
            down_since: None,
            held_while_down: 0,
            redelivered: 0,
            retry_at: None,
            stats: DeliveryStats::default(),
            reserve: open_reserve(),
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
        let socket = with_reserve(&mut self.reserve, UnixDatagram::unbound)?;
        socket.connect(&self.path)?;
        // Blocking, with a short timeout: when journald's queue is full (it holds only
        // net.unix.max_dgram_qlen datagrams: 512 where systemd is PID 1, the kernel's 10
        // elsewhere) a send waits in the kernel for the next free slot, as a plain blocking
        // sender does, instead of failing with EAGAIN and waking the loop for every slot
        // journald frees. A journald that does not read (stopped, hung) costs SEND_TIMEOUT
        // per attempt; then the entries wait as before and the server stops reading.
        socket.set_write_timeout(Some(SEND_TIMEOUT))?;
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
        // What journald had not read died with it: send it again, first.
        while let Some(sent) = self.in_flight.pop_back() {
            let mut encoded = sent.encoded;
            encode_field(&mut encoded, "REDELIVERED", b"1");
            self.pending.push_front(encoded);
            self.redelivered += 1;
            self.held_while_down += 1;
        }
        // Closing the socket also removes it from the poll set.
        self.socket = None;
        self.retry_at = Some(now + RETRY_INTERVAL);
    }

    pub fn is_ready(&self) -> bool {
        self.pending.is_empty() && self.in_flight.len() < IN_FLIGHT_MAX
    }

    pub fn retry_at(&self) -> Option<Instant> {
        if self.pending.is_empty() && self.socket.is_some() && self.in_flight.is_empty() {
            None
        } else {
            self.retry_at
        }
    }

    pub fn stats(&self) -> DeliveryStats {
        self.stats
    }

    /// Queues an entry; [`JournaldSink::flush`], which the server calls at the end of every
    /// turn of its loop, sends what is queued with one sendmmsg(2) per [`BATCH`] entries:
    /// the lines of one read cost one system call and wake journald once, not once each.
    /// While anything is queued the sink reports not ready, so the server reads no more.
    pub fn log(&mut self, entry: &Entry<'_>) {
        let mut encoded = self.spare.pop().unwrap_or_default();
        encoded.clear();
        encode_entry_cached(&mut encoded, entry, &mut self.peer_fields);
        if self.socket.is_none() {
            self.held_while_down += 1;
        }
        self.pending.push_back(encoded);
    }

    /// Sends queued entries, [`BATCH`] at a time; stops at the first error (a full queue,
    /// journald gone), leaving the rest queued.
    fn send_pending(&mut self) -> io::Result<()> {
        while !self.pending.is_empty() {
            let socket = self.socket.as_ref().expect("connected");
            let n = self.pending.len().min(BATCH);
            // SAFETY: zeroed iovec/mmsghdr are valid "empty" values; every pointer set below
            // points into `self.pending`'s buffers or `iov`, which outlive the call and are
            // not touched until it returns.
            let mut iov: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
            let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
            for (i, entry) in self.pending.iter().take(n).enumerate() {
                iov[i] = libc::iovec {
                    iov_base: entry.as_ptr() as *mut libc::c_void,
                    iov_len: entry.len(),
                };
            }
            for i in 0..n {
                msgs[i].msg_hdr.msg_iov = &mut iov[i];
                msgs[i].msg_hdr.msg_iovlen = 1;
            }
            // SAFETY: `msgs[..n]` are initialised as above.
            let rc = unsafe { libc::sendmmsg(socket.as_raw_fd(), msgs.as_mut_ptr(), n as _, 0) };
            if rc > 0 {
                for msg in &msgs[..rc as usize] {
                    let encoded = self.pending.pop_front().expect("sent from pending");
                    self.sent(encoded, msg.msg_len as usize);
                }
                continue;
            }
            let error = io::Error::last_os_error();
            if error.raw_os_error() != Some(libc::EMSGSIZE) {
                return Err(error);
            }
            // Too large for a datagram: this one goes alone, as a memfd.
            let front = self.pending.front().expect("not empty");
            let wire_len = with_reserve(&mut self.reserve, || send(socket, front))?;
            let encoded = self.pending.pop_front().expect("not empty");
            self.sent(encoded, wire_len);
        }
        Ok(())
    }

    /// Records a delivered entry as in flight until journald has read it.
    fn sent(&mut self, encoded: Vec<u8>, wire_len: usize) {
        self.stats.delivered += 1;
        self.in_flight.push_back(InFlight { encoded, wire_len });
        self.sends_since_trim += 1;
        if self.sends_since_trim >= TRIM_EVERY || self.in_flight.len() >= IN_FLIGHT_MAX {
            self.trim_in_flight(Instant::now());
        }
    }

    /// Forgets the in-flight entries journald has certainly read. The socket's unread bytes
    /// (SIOCOUTQ: the true size of our datagrams still queued at journald, each at least its
    /// length) bound how many of the newest entries may still be unread.
    fn trim_in_flight(&mut self, now: Instant) {
        self.sends_since_trim = 0;
        let Some(socket) = &self.socket else {
            return;
        };
        let unread = match unread_bytes(socket) {
            Ok(n) => n,
            Err(_) => return,
        };
        let keep = if unread == 0 {
            0
        } else {
            let mut sum = 0;
            let mut keep = 0;
            for sent in self.in_flight.iter().rev() {
                keep += 1;
                sum += sent.wire_len;
                if sum >= unread {
                    break;
                }
            }
            keep
        };
        while self.in_flight.len() > keep {
            let mut sent = self.in_flight.pop_front().expect("len > keep");
            // A few kept for reuse; keeping up to IN_FLIGHT_MAX would hold ~0.6 MB for good
            // after any burst (measured: +60 B per connection with 10,000 idle clients).
            if self.spare.len() < SPARE_MAX {
                sent.encoded.clear();
                self.spare.push(sent.encoded);
            }
        }
        if !self.in_flight.is_empty() {
            self.retry_at = Some(
                self.retry_at
                    .map_or(now + TRIM_RETRY, |t| t.min(now + TRIM_RETRY)),
            );
        }
    }

    /// Decides what a failed send means: a full queue (wait) or journald gone (retry later).
    fn after_error(&mut self, now: Instant, error: &io::Error) {
        match error.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::ENOBUFS) | Some(libc::EINTR) => {
                self.retry_at = Some(now + FULL_QUEUE_RETRY);
            }
            // Out of descriptors or memory even with the reserve (a memfd could not be
            // made): journald is not gone, so nothing is sent again; try later.
            Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOMEM) => {
                self.retry_at = Some(now + RETRY_INTERVAL);
            }
            _ => {
                self.held_while_down += self.pending.len() as u64;
                self.went_down(now, error);
            }
        }
    }

    pub fn flush(&mut self, now: Instant, registry: &Registry) {
        if self.reserve.is_none() {
            self.reserve = open_reserve();
        }
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
        self.retry_at = None;
        if let Err(e) = self.send_pending() {
            self.after_error(now, &e);
            return;
        }
        if !self.in_flight.is_empty() {
            self.trim_in_flight(now);
        }
        if let Some(since) = self.down_since.take() {
            let redelivered = std::mem::take(&mut self.redelivered);
            let message = format!(
                "journald at {} was unreachable for {:.1} s; {} entries were held meanwhile and are \
                 delivered now, {redelivered} of them sent again because journald may have lost them \
                 (marked REDELIVERED=1)",
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

/// Bytes of our datagrams journald has not read yet (SIOCOUTQ).
fn unread_bytes(socket: &UnixDatagram) -> io::Result<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: TIOCOUTQ (= SIOCOUTQ) writes one c_int.
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), libc::TIOCOUTQ, &mut n) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n.max(0) as usize)
}

fn open_reserve() -> Option<File> {
    File::open("/dev/null").ok()
}

/// Runs `f`; if it fails for want of a file descriptor, gives up the reserved one and runs
/// it again, then takes the reserve back if a descriptor is free by then (else later).
fn with_reserve<T>(
    reserve: &mut Option<File>,
    mut f: impl FnMut() -> io::Result<T>,
) -> io::Result<T> {
    match f() {
        Err(e) if reserve.is_some() && e.raw_os_error() == Some(libc::EMFILE) => {
            *reserve = None;
            let result = f();
            *reserve = open_reserve();
            result
        }
        result => result,
    }
}

/// Sends one entry: a datagram, or a sealed memfd when it is too large for one. Returns the
/// bytes the datagram carried.
fn send(socket: &UnixDatagram, data: &[u8]) -> io::Result<usize> {
    match socket.send(data) {
        Ok(n) => Ok(n),
        Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => send_memfd(socket, data).map(|()| 0),
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
    fn cached_peer_fields_follow_the_peer() {
        let peer = |addr: &str, id| {
            Some(Peer {
                addr: addr.parse().unwrap(),
                connection_id: id,
            })
        };
        let mut cache = PeerFields::default();
        for p in [
            peer("192.0.2.7:51234", 1),
            peer("192.0.2.7:51234", 1),
            peer("192.0.2.7:51235", 1),
            peer("192.0.2.7:51235", 2),
            None,
            peer("[2001:db8::1]:80", 3),
            peer("192.0.2.7:51234", 1),
        ] {
            let entry = Entry {
                priority: 6,
                event: Event::Line,
                message: "m",
                peer: p,
                fields: &[],
            };
            let (mut plain, mut cached) = (Vec::new(), Vec::new());
            encode_entry(&mut plain, &entry);
            encode_entry_cached(&mut cached, &entry, &mut cache);
            assert_eq!(cached, plain, "{p:?}");
        }
    }

    #[test]
    fn addresses_are_encoded_in_place() {
        for ip in [
            "192.0.2.7",
            "0.0.0.0",
            "255.255.255.255",
            "2001:db8::1",
            "::1",
        ] {
            let mut out = Vec::new();
            encode_ip(&mut out, ip.parse().unwrap());
            assert_eq!(out, format!("REMOTE_ADDR={ip}\n").into_bytes());
        }
    }

    #[test]
    fn numbers_format_in_decimal() {
        let mut b = itoa_buf();
        assert_eq!(fmt_u64(&mut b, 0), b"0");
        assert_eq!(fmt_u64(&mut b, u64::MAX), u64::MAX.to_string().as_bytes());
    }
}
