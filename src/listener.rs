//! The listening socket and accepting clients. The socket is made with socket2 (SO_REUSEADDR,
//! the configured backlog, non-blocking; `::` is dual-stack and falls back to `0.0.0.0` on a
//! host without IPv6) or passed by systemd. [`Acceptor`] accepts from it, backs off when the
//! process runs out of file descriptors, and rebinds when a reload changes the address.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use mio::{Interest, Registry, Token};
use socket2::{Domain, Protocol, SockRef, Socket, Type};

use crate::config::Config;
use crate::entry::priority;
use crate::systemd;
use crate::throttle::Throttle;

/// A bind failure that names the address.
#[derive(Debug)]
pub struct BindError {
    pub addr: SocketAddr,
    pub error: io::Error,
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot listen on {}: {}", self.addr, self.error)
    }
}

impl std::error::Error for BindError {}

/// Binds the address of `config`. The second value says whether it fell back to IPv4.
pub fn bind(config: &Config) -> Result<(TcpListener, Option<String>), BindError> {
    let addr = SocketAddr::new(config.bind, config.port);
    match bind_addr(addr, config.backlog) {
        Ok(l) => Ok((l, None)),
        Err(e) if config.bind == IpAddr::from([0u16; 8]) && no_ipv6(&e) => {
            let v4 = SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), config.port);
            let l = bind_addr(v4, config.backlog).map_err(|error| BindError { addr: v4, error })?;
            let notice = format!("no IPv6 on this host ({e}): listening on {v4} instead");
            Ok((l, Some(notice)))
        }
        Err(error) => Err(BindError { addr, error }),
    }
}

fn no_ipv6(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EAFNOSUPPORT) | Some(libc::EADDRNOTAVAIL) | Some(libc::EPROTONOSUPPORT)
    )
}

fn bind_addr(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        socket.set_only_v6(false)?;
    }
    socket.set_cloexec(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// The listening socket to start with: a socket unit's if systemd passed one; the previous
/// process's from the file descriptor store if it still has the configured address (its
/// backlog set again); else a new one bound from the configuration. The notices say what
/// is worth knowing (a fallback to IPv4, a stored socket not taken).
pub fn open(
    config: &Config,
    carried: &mut crate::fdstore::Carried,
) -> Result<(ListenSocket, Vec<String>), String> {
    let mut notices = Vec::new();
    if let Some(fd) = carried.socket_unit.take() {
        let l = systemd::listening_socket(fd).map_err(|e| e.to_string())?;
        return Ok((ListenSocket::FromSystemd(l), notices));
    }
    if let Some(fd) = carried.listener.take() {
        match systemd::listening_socket(fd) {
            Ok(l) if has_address(&l, config) => {
                if let Err(e) = SockRef::from(&l).listen(config.backlog) {
                    notices.push(format!("the carried-over listening socket: backlog: {e}"));
                }
                return Ok((ListenSocket::Bound(l), notices));
            }
            Ok(l) => notices.push(format!(
                "the listening socket carried over is on {}, the configuration says {}: binding that",
                l.local_addr().map_or("?".into(), |a| a.to_string()),
                SocketAddr::new(config.bind, config.port)
            )),
            Err(e) => notices.push(format!("the listening socket carried over: {e}")),
        }
    }
    let (l, notice) = bind(config).map_err(|e| e.to_string())?;
    notices.extend(notice);
    Ok((ListenSocket::Bound(l), notices))
}

/// Whether `l` listens where `config` says (`::` may have fallen back to `0.0.0.0`).
fn has_address(l: &TcpListener, config: &Config) -> bool {
    let Ok(addr) = l.local_addr() else {
        return false;
    };
    addr.port() == config.port
        && (addr.ip() == config.bind
            || (config.bind.is_unspecified() && addr.ip().is_unspecified()))
}

/// Where the listening socket came from.
pub enum ListenSocket {
    /// Bound by the daemon from the configuration; rebound on reload when it changes.
    Bound(TcpListener),
    /// Passed by systemd socket activation; the configuration's address is not used.
    FromSystemd(TcpListener),
}

/// The listening socket's poll token.
pub const TOKEN: Token = Token(usize::MAX - 1);
/// How long to stop accepting after running out of file descriptors.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(200);
/// accept(2) errors of single connections (ECONNABORTED…) skipped in one call at most.
const TRANSIENT_ERRORS_PER_CALL: usize = 64;
/// Warnings about running out of file descriptors: at most one per this interval.
pub const ACCEPT_ERROR_WINDOW: Duration = Duration::from_secs(10);

/// What [`Acceptor::accept`] found.
#[derive(Debug)]
pub enum Accepted {
    Client(mio::net::TcpStream, SocketAddr),
    /// Nobody waiting (or not accepting now).
    Nobody,
    /// accept(2) failed for want of resources: accepting pauses for [`ACCEPT_BACKOFF`]. The
    /// text, when present, is a warning to log (at most one per [`ACCEPT_ERROR_WINDOW`]).
    OutOfResources(Option<String>),
}

/// Accepts clients from the listening socket.
pub struct Acceptor {
    /// `None` once the daemon stopped accepting.
    listener: Option<mio::net::TcpListener>,
    /// Clients accepted from a socket closed by a rebind, to be admitted first.
    carried: VecDeque<(mio::net::TcpStream, SocketAddr)>,
    local_addr: SocketAddr,
    from_systemd: bool,
    /// Connections may be waiting (a readable event came, or accepting was paused).
    pending: bool,
    paused_until: Option<Instant>,
    errors: Throttle,
    last_error: String,
}

impl Acceptor {
    pub fn new(listen: ListenSocket, registry: &Registry) -> io::Result<Acceptor> {
        let (listener, from_systemd) = match listen {
            ListenSocket::Bound(l) => (l, false),
            ListenSocket::FromSystemd(l) => (l, true),
        };
        listener.set_nonblocking(true)?;
        let local_addr = listener.local_addr()?;
        let mut listener = mio::net::TcpListener::from_std(listener);
        registry.register(&mut listener, TOKEN, Interest::READABLE)?;
        Ok(Acceptor {
            listener: Some(listener),
            carried: VecDeque::new(),
            local_addr,
            from_systemd,
            pending: true,
            paused_until: None,
            errors: Throttle::new(1, ACCEPT_ERROR_WINDOW),
            last_error: String::new(),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn from_systemd(&self) -> bool {
        self.from_systemd
    }

    /// A readable event on the listening socket.
    pub fn readable(&mut self) {
        self.pending = true;
    }

    /// The next client waiting, if the daemon accepts now.
    pub fn accept(&mut self, now: Instant) -> Accepted {
        if let Some((stream, addr)) = self.carried.pop_front() {
            return Accepted::Client(stream, addr);
        }
        if !self.pending || self.paused_until.is_some_and(|t| t > now) {
            return Accepted::Nobody;
        }
        self.paused_until = None;
        let Some(listener) = &self.listener else {
            return Accepted::Nobody;
        };
        for _ in 0..TRANSIENT_ERRORS_PER_CALL {
            match listener.accept() {
                Ok((stream, addr)) => return Accepted::Client(stream, addr),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.pending = false;
                    return Accepted::Nobody;
                }
                Err(e) if out_of_resources(&e) => {
                    // Leave the connection in the backlog and come back later, instead of
                    // spinning on an error that will not go away by itself.
                    self.paused_until = Some(now + ACCEPT_BACKOFF);
                    self.last_error = e.to_string();
                    let report = self.errors.admit(now).then(|| {
                        format!(
                            "cannot accept connections: {e}; serving current clients, \
                             retrying every {} ms",
                            ACCEPT_BACKOFF.as_millis()
                        )
                    });
                    return Accepted::OutOfResources(report);
                }
                // ECONNABORTED and the like concern one connection only.
                Err(_) => continue,
            }
        }
        Accepted::Nobody
    }

    /// Accept errors not logged one by one, once their window is over (housekeeping).
    pub fn error_summary_due(&mut self, now: Instant) -> Option<String> {
        let n = self.errors.close_expired(now)?;
        Some(format!(
            "cannot accept connections: {} {n} more times in the last {} s; serving current \
             clients, retrying every {} ms",
            self.last_error,
            ACCEPT_ERROR_WINDOW.as_secs(),
            ACCEPT_BACKOFF.as_millis()
        ))
    }

    /// When accepting should be tried again without an event: after a pause, or at once
    /// while clients may still be waiting (the listening socket's events are edge-triggered).
    pub fn wake_at(&self, now: Instant) -> Option<Instant> {
        if !self.carried.is_empty() {
            return Some(now);
        }
        if !self.pending || self.listener.is_none() {
            return None;
        }
        Some(self.paused_until.unwrap_or(now))
    }

    /// Stops accepting for good: the listening socket is closed.
    pub fn close(&mut self, registry: &Registry) {
        drop(self.take(registry));
    }

    /// Stops accepting and hands the listening socket over (to the file descriptor store):
    /// clients that connect meanwhile wait in its queue for the next process.
    pub fn take(&mut self, registry: &Registry) -> Option<mio::net::TcpListener> {
        let mut listener = self.listener.take()?;
        let _ = registry.deregister(&mut listener);
        Some(listener)
    }

    /// Applies the address of a new configuration; returns what to announce, with its
    /// priority. When the new address cannot be had, `new` is set back to the one in use.
    ///
    /// - Only the backlog changed: listen(2) again on the same socket (Linux takes the new
    ///   backlog), nothing is closed.
    /// - The address changed, the port stayed: the old socket holds the port, so it is closed
    ///   first (the connections waiting in its queue are accepted before, and served); if the
    ///   new address cannot be bound, the old one is bound again.
    /// - The port changed: the new socket is bound first, then the old one closed.
    /// - A socket from systemd stays as it is.
    pub fn reconfigure(
        &mut self,
        old: &Config,
        new: &mut Config,
        registry: &Registry,
    ) -> Vec<(u8, String)> {
        let old_address = (old.bind, old.port, old.backlog);
        if (new.bind, new.port, new.backlog) == old_address || self.listener.is_none() {
            return Vec::new();
        }
        if self.from_systemd {
            (new.bind, new.port, new.backlog) = old_address;
            return vec![(
                priority::NOTICE,
                "reload: bind, port and backlog come from the systemd socket unit and stay as \
                 they are"
                    .to_string(),
            )];
        }
        let result = if (new.bind, new.port) == (old.bind, old.port) {
            self.relisten(new.backlog)
        } else if new.port == old.port {
            self.rebind_same_port(old, new, registry)
        } else {
            self.rebind(new, registry)
        };
        match result {
            Ok(notice) => notice.into_iter().map(|n| (priority::WARNING, n)).collect(),
            Err(e) => {
                (new.bind, new.port, new.backlog) = old_address;
                let listening = match &self.listener {
                    Some(_) => format!("still listening on {}", self.local_addr),
                    None => "NOT LISTENING: no new client can connect".to_string(),
                };
                vec![(priority::ERR, format!("reload: {e}; {listening}"))]
            }
        }
    }

    /// A new backlog for the socket in use.
    fn relisten(&mut self, backlog: i32) -> Result<Option<String>, BindError> {
        let listener = self.listener.as_ref().expect("listening");
        SockRef::from(listener)
            .listen(backlog)
            .map_err(|error| BindError {
                addr: self.local_addr,
                error,
            })?;
        Ok(None)
    }

    /// Another address on the same port. Tried first beside the old socket, which stays
    /// open (and its port ours) when the new address cannot be had for another reason than
    /// the old socket holding it; only an address that overlaps the old one (`0.0.0.0` after
    /// `127.0.0.1`, say) makes the old socket close first. (Closed first every time, its port
    /// was free for a moment: another program's outgoing connection could take it as its
    /// own port, and then neither address could be bound again.)
    fn rebind_same_port(
        &mut self,
        old: &Config,
        new: &Config,
        registry: &Registry,
    ) -> Result<Option<String>, BindError> {
        // Clients in the old socket's accept queue would be reset with it: taken first.
        if let Some(listener) = &self.listener {
            while let Ok(client) = listener.accept() {
                self.carried.push_back(client);
            }
        }
        match self.rebind(new, registry) {
            Err(e) if e.error.kind() == io::ErrorKind::AddrInUse => {}
            done => return done,
        }
        if let Some(mut listener) = self.listener.take() {
            // Clients in its accept queue would be reset with it: take them first.
            while let Ok(client) = listener.accept() {
                self.carried.push_back(client);
            }
            let _ = registry.deregister(&mut listener);
        }
        match self.rebind(new, registry) {
            Ok(notice) => Ok(notice),
            Err(e) => match self.rebind(old, registry) {
                Ok(_) => Err(e),
                Err(again) => Err(BindError {
                    addr: e.addr,
                    error: io::Error::new(
                        e.error.kind(),
                        format!("{}, and the old address failed too: {again}", e.error),
                    ),
                }),
            },
        }
    }

    fn rebind(&mut self, new: &Config, registry: &Registry) -> Result<Option<String>, BindError> {
        let (std_listener, notice) = bind(new)?;
        let local_addr = std_listener.local_addr().map_err(|error| BindError {
            addr: SocketAddr::new(new.bind, new.port),
            error,
        })?;
        let mut listener = mio::net::TcpListener::from_std(std_listener);
        registry
            .register(&mut listener, TOKEN, Interest::READABLE)
            .map_err(|error| BindError {
                addr: local_addr,
                error,
            })?;
        if let Some(mut old) = self.listener.replace(listener) {
            let _ = registry.deregister(&mut old);
        }
        self.local_addr = local_addr;
        self.pending = true;
        Ok(notice)
    }
}

fn out_of_resources(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS) | Some(libc::ENOMEM)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;

    fn config(bind: &str, port: u16, backlog: i32) -> Config {
        Config {
            bind: bind.parse().unwrap(),
            port,
            backlog,
            ..Config::default()
        }
    }

    fn acceptor(config: &Config, poll: &mio::Poll) -> Acceptor {
        let (l, _) = bind(config).unwrap();
        Acceptor::new(ListenSocket::Bound(l), poll.registry()).unwrap()
    }

    /// The backlog of the socket listening on `port`, as `ss -ltn` shows it (Send-Q).
    fn backlog_of(port: u16) -> Option<u32> {
        let out = std::process::Command::new("ss")
            .args(["-ltnH", &format!("sport = :{port}")])
            .output()
            .expect("run ss");
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().next()?;
        line.split_whitespace().nth(2)?.parse().ok()
    }

    /// Accepts the next client, waiting (with a deadline) for the kernel to have it.
    fn next_client(a: &mut Acceptor) -> SocketAddr {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            a.readable();
            match a.accept(Instant::now()) {
                Accepted::Client(_, addr) => return addr,
                _ => assert!(Instant::now() < deadline, "no client"),
            }
            std::thread::yield_now();
        }
    }

    #[test]
    fn dual_stack_accepts_ipv4_clients() {
        let (l, _) = bind(&config("::", 0, 3)).unwrap();
        let port = l.local_addr().unwrap().port();
        std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (_, peer) = l.accept().unwrap();
        assert_eq!(peer.ip().to_canonical(), IpAddr::from([127, 0, 0, 1]));
    }

    #[test]
    fn a_bind_failure_names_the_address() {
        let (l, _) = bind(&config("127.0.0.1", 0, 3)).unwrap();
        let port = l.local_addr().unwrap().port();
        // Someone already listens there (SO_REUSEADDR does not allow two listeners).
        let e = bind(&config("127.0.0.1", port, 3)).unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with(&format!("cannot listen on 127.0.0.1:{port}: ")),
            "{text}"
        );
        assert!(text.contains("in use"), "{text}");
    }

    #[test]
    fn a_backlog_change_applies_to_the_same_socket() {
        let poll = mio::Poll::new().unwrap();
        let old = config("127.0.0.1", 0, 3);
        let mut a = acceptor(&old, &poll);
        let port = a.local_addr().port();
        let old = config("127.0.0.1", port, 3);
        assert_eq!(backlog_of(port), Some(3));
        let mut new = config("127.0.0.1", port, 17);
        assert_eq!(a.reconfigure(&old, &mut new, poll.registry()), []);
        assert_eq!(backlog_of(port), Some(17));
        assert_eq!(new.backlog, 17);
        assert_eq!(a.local_addr().port(), port);
    }

    #[test]
    fn another_address_on_the_same_port_closes_the_old_socket_first_and_keeps_its_queue() {
        let poll = mio::Poll::new().unwrap();
        let mut a = acceptor(&config("127.0.0.1", 0, 3), &poll);
        let port = a.local_addr().port();
        let old = config("127.0.0.1", port, 3);
        // A client waiting in the old socket's queue, not accepted yet.
        let queued = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut new = config("0.0.0.0", port, 3);
        assert_eq!(a.reconfigure(&old, &mut new, poll.registry()), []);
        assert_eq!(a.local_addr(), SocketAddr::from(([0, 0, 0, 0], port)));
        assert_eq!(next_client(&mut a), queued.local_addr().unwrap());
        let later = TcpStream::connect(("127.0.0.1", port)).unwrap();
        assert_eq!(next_client(&mut a), later.local_addr().unwrap());
    }

    #[test]
    fn an_address_that_cannot_be_bound_leaves_the_old_one_listening() {
        let poll = mio::Poll::new().unwrap();
        let mut a = acceptor(&config("127.0.0.1", 0, 3), &poll);
        let port = a.local_addr().port();
        let old = config("127.0.0.1", port, 3);
        // TEST-NET-1: no interface of this host has it.
        let mut new = config("192.0.2.1", port, 3);
        let notices = a.reconfigure(&old, &mut new, poll.registry());
        assert_eq!(notices.len(), 1, "{notices:?}");
        let (priority, text) = &notices[0];
        assert_eq!(*priority, priority::ERR);
        assert!(
            text.starts_with(&format!("reload: cannot listen on 192.0.2.1:{port}: "))
                && text.ends_with(&format!("still listening on 127.0.0.1:{port}")),
            "{text}"
        );
        assert_eq!(
            new.bind, old.bind,
            "the configuration says what is in force"
        );
        let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        assert_eq!(next_client(&mut a), client.local_addr().unwrap());
    }
}
