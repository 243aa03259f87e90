//! The system calls behind the syslog sink (its [`Transport`] for the delivery engine): a
//! non-blocking socket to `/dev/log` (a datagram socket; a stream socket where the local
//! syslog daemon listens on one), a UDP socket or a TCP connection, registered with the loop's
//! poll for writable events. Nothing here waits: a TCP connect is started and finished later,
//! a full socket says EAGAIN.
//!
//! Host names: `udp://` and `tcp://` servers given by name are resolved with getaddrinfo(3),
//! which blocks. It is called only when a connection is made after a failure (at open, and
//! again at most every [`RESOLVE_EVERY`] while the server cannot be reached), never per entry;
//! an IP address is never looked up. A resolver that hangs stops the loop for as long as
//! getaddrinfo waits (resolv.conf's `timeout` × `attempts`, 5 s × 2 per name server by
//! default), at those moments only.

use std::io::{self, IoSlice};
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mio::{Interest, Registry, Token};

use super::Rfc3164;
use crate::config::SyslogServer;
use crate::sink::delivery::{classify, Failure, LinkState, OutputFraming, Transport};
use crate::sink::syscall;

/// The local syslog socket.
pub const DEV_LOG: &str = "/dev/log";
/// A host name is looked up again at most this often while connections to it fail.
pub const RESOLVE_EVERY: Duration = Duration::from_secs(30);

enum Socket {
    UnixDatagram(mio::net::UnixDatagram),
    UnixStream(mio::net::UnixStream),
    Udp(mio::net::UdpSocket),
    Tcp(mio::net::TcpStream),
}

impl Socket {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Socket::UnixDatagram(s) => s.as_fd(),
            Socket::UnixStream(s) => s.as_fd(),
            Socket::Udp(s) => s.as_fd(),
            Socket::Tcp(s) => s.as_fd(),
        }
    }

    fn raw(&self) -> RawFd {
        self.fd().as_raw_fd()
    }

    fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            Socket::UnixDatagram(s) => s,
            Socket::UnixStream(s) => s,
            Socket::Udp(s) => s,
            Socket::Tcp(s) => s,
        }
    }
}

/// Where the server is.
enum Target {
    Unix(PathBuf),
    Udp(String),
    Tcp(String),
}

/// The socket to the syslog server, and the addresses a host name resolved to.
pub struct SyslogSocket {
    target: Target,
    description: String,
    token: Token,
    socket: Option<Socket>,
    connecting: bool,
    /// The server's addresses, as last resolved.
    addrs: Vec<SocketAddr>,
    resolved_at: Option<Instant>,
    /// The address the next connect uses: the one that worked last, then the others in turn.
    next: usize,
    /// The address of the current connection or attempt.
    current: usize,
    /// Addresses not yet tried since the last connection was made.
    untried: usize,
}

impl SyslogSocket {
    /// Not connected yet; `token` is the one it registers with for writable events.
    pub fn new(server: &SyslogServer, token: Token) -> SyslogSocket {
        let (target, description) = match server {
            SyslogServer::Local => (
                Target::Unix(PathBuf::from(DEV_LOG)),
                "syslog via /dev/log".to_string(),
            ),
            SyslogServer::Udp(a) => (Target::Udp(a.clone()), format!("syslog at udp://{a}")),
            SyslogServer::Tcp(a) => (Target::Tcp(a.clone()), format!("syslog at tcp://{a}")),
        };
        SyslogSocket {
            target,
            description,
            token,
            socket: None,
            connecting: false,
            addrs: Vec::new(),
            resolved_at: None,
            next: 0,
            current: 0,
            untried: 0,
        }
    }

    /// A local syslog socket at another path than `/dev/log` (for tests).
    pub fn unix(path: &Path, token: Token) -> SyslogSocket {
        let mut s = SyslogSocket::new(&SyslogServer::Local, token);
        s.description = format!("syslog via {}", path.display());
        s.target = Target::Unix(path.to_owned());
        s
    }

    /// Starts a round of connection attempts: resolves the host name if it was never
    /// resolved or the last lookup is [`RESOLVE_EVERY`] old, and counts the addresses to try.
    fn start_round(&mut self, now: Instant) -> io::Result<()> {
        let host_port = match &self.target {
            Target::Udp(a) | Target::Tcp(a) => a.as_str(),
            Target::Unix(_) => return Ok(()),
        };
        let due = self
            .resolved_at
            .is_none_or(|at| now.duration_since(at) >= RESOLVE_EVERY);
        if self.addrs.is_empty() || due {
            self.resolved_at = Some(now);
            match host_port.to_socket_addrs() {
                Ok(addrs) => {
                    let addrs: Vec<SocketAddr> = addrs.collect();
                    if !addrs.is_empty() && addrs != self.addrs {
                        self.addrs = addrs;
                        self.next = 0;
                    }
                }
                // Keep the addresses of the last lookup, if there was one that worked.
                Err(e) if self.addrs.is_empty() => return Err(e),
                Err(_) => {}
            }
            if self.addrs.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{host_port}: no address"),
                ));
            }
        }
        self.untried = self.addrs.len();
        Ok(())
    }

    /// The next address to try.
    fn take_address(&mut self, now: Instant) -> io::Result<SocketAddr> {
        if self.untried == 0 {
            self.start_round(now)?;
        }
        self.untried -= 1;
        self.current = self.next % self.addrs.len();
        self.next = (self.current + 1) % self.addrs.len();
        Ok(self.addrs[self.current])
    }

    fn established(&mut self) -> LinkState {
        self.connecting = false;
        // The next connection starts with the address that worked.
        self.untried = 0;
        self.next = self.current;
        LinkState::Up
    }

    fn open_socket(&mut self, now: Instant) -> io::Result<Socket> {
        match &self.target {
            Target::Unix(path) => {
                let datagram = mio::net::UnixDatagram::unbound()?;
                match datagram.connect(path) {
                    Ok(()) => Ok(Socket::UnixDatagram(datagram)),
                    // The local syslog daemon listens on a stream socket.
                    Err(e) if e.raw_os_error() == Some(libc::EPROTOTYPE) => {
                        Ok(Socket::UnixStream(mio::net::UnixStream::connect(path)?))
                    }
                    Err(e) => Err(e),
                }
            }
            Target::Udp(_) => {
                let addr = self.take_address(now)?;
                let local: SocketAddr = if addr.is_ipv4() {
                    "0.0.0.0:0".parse().expect("an address")
                } else {
                    "[::]:0".parse().expect("an address")
                };
                let udp = mio::net::UdpSocket::bind(local)?;
                // Connected: the kernel reports an ICMP error (port unreachable) on a later
                // send instead of dropping it unseen.
                udp.connect(addr)?;
                Ok(Socket::Udp(udp))
            }
            Target::Tcp(_) => {
                let addr = self.take_address(now)?;
                Ok(Socket::Tcp(mio::net::TcpStream::connect(addr)?))
            }
        }
    }

    fn socket(&self) -> io::Result<&Socket> {
        self.socket
            .as_ref()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOTCONN))
    }
}

impl Transport for SyslogSocket {
    type Protocol = Rfc3164;

    fn describe(&self) -> &str {
        &self.description
    }

    fn state(&self) -> LinkState {
        match (&self.socket, self.connecting) {
            (None, _) => LinkState::Down,
            (Some(_), true) => LinkState::Connecting,
            (Some(_), false) => LinkState::Up,
        }
    }

    fn connect(&mut self, registry: &Registry, now: Instant) -> io::Result<LinkState> {
        self.disconnect(false);
        let mut socket = self.open_socket(now)?;
        registry.register(socket.source(), self.token, Interest::WRITABLE)?;
        self.connecting = matches!(socket, Socket::Tcp(_));
        self.socket = Some(socket);
        if self.connecting {
            Ok(LinkState::Connecting)
        } else {
            Ok(self.established())
        }
    }

    fn finish_connect(&mut self) -> io::Result<LinkState> {
        let Some(Socket::Tcp(stream)) = &self.socket else {
            return Ok(self.state());
        };
        if !self.connecting {
            return Ok(LinkState::Up);
        }
        if let Some(e) = stream.take_error()? {
            return Err(e);
        }
        match stream.peer_addr() {
            Ok(_) => Ok(self.established()),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(LinkState::Connecting),
            Err(e) => Err(e),
        }
    }

    fn untried(&self) -> usize {
        self.untried
    }

    fn disconnect(&mut self, discard: bool) {
        if let Some(Socket::Tcp(stream)) = &self.socket {
            if discard {
                // Closed with a reset: what the kernel has not sent yet is dropped instead of
                // arriving after it was reported undelivered.
                let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
            }
        }
        // Closing the socket also removes it from the poll set.
        self.socket = None;
        self.connecting = false;
    }

    fn framing(&self) -> OutputFraming {
        match &self.socket {
            Some(Socket::Tcp(_)) => OutputFraming::OctetCounting,
            Some(Socket::UnixStream(_)) => OutputFraming::NulTerminated,
            Some(Socket::UnixDatagram(_) | Socket::Udp(_)) | None => OutputFraming::Datagram,
        }
    }

    fn send_datagrams(&mut self, msgs: &[&[u8]], wire_len: &mut [usize]) -> io::Result<usize> {
        let fd = self.socket()?.raw();
        syscall::sendmmsg(fd, msgs, wire_len, libc::MSG_DONTWAIT)
    }

    fn write_stream(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let fd = self.socket()?.raw();
        // SAFETY: a zeroed msghdr is valid; IoSlice is ABI-compatible with iovec on Unix, and
        // `bufs` outlives the call.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
        msg.msg_iovlen = bufs.len() as _;
        // MSG_NOSIGNAL: a closed connection is an EPIPE error, not a SIGPIPE.
        let rc = unsafe { libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(rc as usize)
    }

    fn rejects(&self, error: &io::Error) -> bool {
        match &self.socket {
            // UDP has no connection to lose: any error but a full buffer or a lack of
            // resources concerns this datagram only (an ICMP error reported on this send,
            // a datagram too large, no route).
            Some(Socket::Udp(_)) => classify(error) == Failure::Gone,
            Some(Socket::UnixDatagram(_)) => error.raw_os_error() == Some(libc::EMSGSIZE),
            _ => false,
        }
    }

    fn tracks_unsettled(&self) -> bool {
        !matches!(self.socket, Some(Socket::Udp(_)))
    }

    fn unsettled_bytes(&self) -> io::Result<usize> {
        syscall::unsettled_bytes(self.socket()?.raw())
    }

    fn confirms_by_send(&self) -> bool {
        matches!(self.socket, Some(Socket::UnixDatagram(_)))
    }

    fn check_open(&mut self) -> io::Result<()> {
        let socket = self.socket()?;
        if !matches!(socket, Socket::Tcp(_) | Socket::UnixStream(_)) {
            return Ok(());
        }
        let fd = socket.raw();
        // A syslog server sends nothing: what it does send is read and ignored, so that its
        // end of file (it closed the connection) or an error shows.
        let mut buf = [0u8; 512];
        for _ in 0..16 {
            // SAFETY: `buf` is valid for its length.
            let rc = unsafe {
                libc::recv(
                    fd,
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if rc == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "the server closed the connection",
                ));
            }
            if rc < 0 {
                let e = io::Error::last_os_error();
                return match e.raw_os_error() {
                    Some(libc::EAGAIN) => Ok(()),
                    Some(libc::EINTR) => continue,
                    _ => Err(e),
                };
            }
        }
        Ok(())
    }

    fn holds_unsent(&self) -> bool {
        matches!(self.socket, Some(Socket::Tcp(_)))
    }

    fn wait(&self, timeout: Duration, for_room: bool) {
        let socket = self.socket.as_ref().filter(|_| for_room);
        syscall::wait_writable(socket.map(Socket::fd), timeout);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::unix::net::{UnixDatagram, UnixListener};

    use super::*;
    use crate::entry::Entry;
    use crate::sink::delivery::Delivery;

    const TOKEN: Token = Token(7);

    fn temp_path(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tcpl-syslog-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("log")
    }

    fn log(delivery: &mut Delivery<SyslogSocket>, range: std::ops::Range<usize>) {
        for i in range {
            delivery.log(&Entry::notice(6, &format!("entry {i}")));
        }
    }

    /// Flushes until `done` holds, for at most 10 s.
    fn flush_until(
        delivery: &mut Delivery<SyslogSocket>,
        poll: &mio::Poll,
        mut done: impl FnMut(&Delivery<SyslogSocket>) -> bool,
    ) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done(delivery) {
            assert!(Instant::now() < deadline, "timed out");
            delivery.flush(Instant::now(), poll.registry());
            let wait = delivery
                .wake_at()
                .map_or(Duration::from_millis(5), |t| {
                    t.saturating_duration_since(Instant::now())
                })
                .min(Duration::from_millis(5));
            delivery.transport().wait(wait, true);
        }
    }

    fn texts(messages: &[Vec<u8>]) -> Vec<String> {
        messages
            .iter()
            .map(|m| {
                let m = String::from_utf8_lossy(m);
                assert!(m.starts_with("<30>"), "{m}");
                m.split_once("]: ").unwrap().1.to_string()
            })
            .collect()
    }

    fn numbered(range: std::ops::Range<usize>) -> Vec<String> {
        range.map(|i| format!("entry {i}")).collect()
    }

    #[test]
    fn a_full_dev_log_holds_entries_without_blocking_then_delivers_them_in_order() {
        let path = temp_path("dgram");
        let server = UnixDatagram::bind(&path).unwrap();
        let poll = mio::Poll::new().unwrap();
        let socket = SyslogSocket::unix(&path, TOKEN);
        let mut delivery = Delivery::new(socket, poll.registry(), Instant::now());
        assert_eq!(delivery.transport().framing(), OutputFraming::Datagram);
        // The kernel queues net.unix.max_dgram_qlen datagrams for a server that does not
        // read; the rest wait in the sink, and the flush returns at once.
        let qlen: usize = std::fs::read_to_string("/proc/sys/net/unix/max_dgram_qlen")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let n = qlen + 100;
        log(&mut delivery, 0..n);
        let started = Instant::now();
        delivery.flush(Instant::now(), poll.registry());
        assert!(started.elapsed() < Duration::from_millis(500));
        assert!(!delivery.has_room(), "{} pending", delivery.pending.len());
        assert!(delivery.wake_at().is_some());
        server.set_nonblocking(true).unwrap();
        let mut got = Vec::new();
        let mut buf = [0; 4096];
        flush_until(&mut delivery, &poll, |d| {
            while let Ok(len) = server.recv(&mut buf) {
                got.push(buf[..len].to_vec());
            }
            d.pending.is_empty() && got.len() == n
        });
        assert_eq!(texts(&got), numbered(0..n));
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn a_stream_dev_log_gets_each_message_with_a_nul_byte() {
        let path = temp_path("stream");
        let listener = UnixListener::bind(&path).unwrap();
        let poll = mio::Poll::new().unwrap();
        let socket = SyslogSocket::unix(&path, TOKEN);
        let mut delivery = Delivery::new(socket, poll.registry(), Instant::now());
        assert_eq!(delivery.transport().state(), LinkState::Up);
        assert_eq!(delivery.transport().framing(), OutputFraming::NulTerminated);
        log(&mut delivery, 0..50);
        flush_until(&mut delivery, &poll, |d| d.pending.is_empty());
        drop(delivery);
        let (mut stream, _) = listener.accept().unwrap();
        let mut received = Vec::new();
        stream.read_to_end(&mut received).unwrap();
        assert_eq!(received.last(), Some(&0));
        let messages: Vec<Vec<u8>> = received[..received.len() - 1]
            .split(|&b| b == 0)
            .map(<[u8]>::to_vec)
            .collect();
        assert_eq!(texts(&messages), numbered(0..50));
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn tcp_connects_without_blocking_and_sends_octet_counted_frames() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let server = SyslogServer::Tcp(listener.local_addr().unwrap().to_string());
        let poll = mio::Poll::new().unwrap();
        let mut delivery = Delivery::new(
            SyslogSocket::new(&server, TOKEN),
            poll.registry(),
            Instant::now(),
        );
        log(&mut delivery, 0..200);
        flush_until(&mut delivery, &poll, |d| {
            d.pending.is_empty() && d.in_flight.is_empty()
        });
        assert_eq!(delivery.transport().framing(), OutputFraming::OctetCounting);
        drop(delivery);
        let (mut stream, _) = listener.accept().unwrap();
        let mut received = Vec::new();
        stream.read_to_end(&mut received).unwrap();
        let mut messages = Vec::new();
        let mut rest = &received[..];
        while !rest.is_empty() {
            let sp = rest.iter().position(|&b| b == b' ').unwrap();
            let len: usize = std::str::from_utf8(&rest[..sp]).unwrap().parse().unwrap();
            messages.push(rest[sp + 1..sp + 1 + len].to_vec());
            rest = &rest[sp + 1 + len..];
        }
        assert_eq!(texts(&messages), numbered(0..200));
    }

    #[test]
    fn a_refused_tcp_connect_starts_an_outage_and_is_retried_later() {
        // A port nobody listens on: bound, then closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = SyslogServer::Tcp(format!("127.0.0.1:{port}"));
        let poll = mio::Poll::new().unwrap();
        let mut delivery = Delivery::new(
            SyslogSocket::new(&server, TOKEN),
            poll.registry(),
            Instant::now(),
        );
        log(&mut delivery, 0..3);
        flush_until(&mut delivery, &poll, |d| {
            d.transport().state() == LinkState::Down
        });
        let retry = delivery.wake_at().expect("a retry");
        assert!(retry > Instant::now(), "retried later, not at once");
        assert_eq!(delivery.pending.len(), 3, "held");
    }
}
