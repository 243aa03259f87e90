//! The systemd side: readiness and status notifications (`sd_notify`, a datagram to
//! `$NOTIFY_SOCKET`, sent non-blocking: the daemon never waits for its manager), the watchdog
//! interval, descriptors passed at start (socket activation, the file descriptor store) and
//! handed to the store at a stop.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, IoSlice};
use std::net::TcpListener;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};
use socket2::{Socket, Type};

/// Sends notifications to systemd; does nothing when not started by systemd. The socket is
/// non-blocking: a service manager that reads late (its queue full: `net.unix.max_dgram_qlen`,
/// 10 by default, datagrams) makes a send fail at once with `WouldBlock`, never wait.
pub struct Notifier {
    socket: Option<NotifySocket>,
}

struct NotifySocket {
    socket: UnixDatagram,
    addr: SocketAddr,
    /// Connected to the manager's socket: then poll(2) says when its queue has room (an
    /// unconnected datagram socket is always "writable").
    connected: bool,
}

impl NotifySocket {
    fn open(addr: SocketAddr) -> io::Result<NotifySocket> {
        let socket = UnixDatagram::unbound()?;
        socket.set_nonblocking(true)?;
        let connected = socket.connect_addr(&addr).is_ok();
        Ok(NotifySocket {
            socket,
            addr,
            connected,
        })
    }

    fn send(&mut self, state: &[u8]) -> io::Result<()> {
        let sent = if self.connected {
            self.socket.send(state)
        } else {
            self.socket.send_to_addr(state, &self.addr)
        };
        match sent {
            // The manager bound its socket anew (a re-exec): connect to the new one.
            Err(e) if self.connected && e.raw_os_error() == Some(libc::ECONNREFUSED) => {
                *self = NotifySocket::open(self.addr.clone())?;
                self.socket.send_to_addr(state, &self.addr).map(drop)
            }
            sent => sent.map(drop),
        }
    }

    /// Waits until the manager's queue may have room, `deadline` at the latest.
    fn wait_room(&self, deadline: Instant) {
        let left = deadline.saturating_duration_since(Instant::now());
        if !self.connected {
            // Nothing to poll: a short pause between tries.
            std::thread::sleep(left.min(Duration::from_millis(10)));
            return;
        }
        let mut fd = libc::pollfd {
            fd: self.socket.as_raw_fd(),
            events: libc::POLLOUT,
            revents: 0,
        };
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one pollfd, ours.
        unsafe { libc::poll(&mut fd, 1, ms) };
    }
}

impl Notifier {
    /// Reads `$NOTIFY_SOCKET` (a path, or `@name` for an abstract socket).
    pub fn from_env() -> Notifier {
        let socket = std::env::var_os("NOTIFY_SOCKET").and_then(|path| {
            let path = path.to_str()?.to_owned();
            let addr = match path.strip_prefix('@') {
                Some(name) => SocketAddr::from_abstract_name(name.as_bytes()).ok()?,
                None => SocketAddr::from_pathname(&path).ok()?,
            };
            NotifySocket::open(addr).ok()
        });
        Notifier { socket }
    }

    pub fn is_active(&self) -> bool {
        self.socket.is_some()
    }

    /// Sends `state` (such as `READY=1\nSTATUS=...`) without waiting: `WouldBlock` when the
    /// manager's queue is full.
    pub fn notify(&mut self, state: &str) -> io::Result<()> {
        match &mut self.socket {
            Some(socket) => socket.send(state.as_bytes()),
            None => Ok(()),
        }
    }

    /// Hands `fd` to the file descriptor store under `name` (`FDSTORE=1`), waiting for room
    /// in the manager's queue until `deadline` at the latest (`TimedOut` then).
    pub fn store(&mut self, name: &str, fd: BorrowedFd<'_>, deadline: Instant) -> io::Result<()> {
        let socket = self
            .socket
            .as_mut()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "no NOTIFY_SOCKET"))?;
        let state = format!("FDSTORE=1\nFDNAME={name}");
        let fds = [fd.as_raw_fd()];
        let iov = [IoSlice::new(state.as_bytes())];
        let addr = &socket.addr;
        let to = addr
            .as_pathname()
            .map(UnixAddr::new)
            .or_else(|| addr.as_abstract_name().map(UnixAddr::new_abstract))
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "unnamed socket"))??;
        loop {
            let to = (!socket.connected).then_some(&to);
            match sendmsg(
                socket.socket.as_raw_fd(),
                &iov,
                &[ControlMessage::ScmRights(&fds)],
                MsgFlags::MSG_DONTWAIT,
                to,
            ) {
                Ok(_) => return Ok(()),
                Err(nix::errno::Errno::EAGAIN) if Instant::now() < deadline => {
                    socket.wait_room(deadline)
                }
                Err(nix::errno::Errno::EAGAIN) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the service manager's notify queue stayed full",
                    ))
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// `RELOADING=1` with the monotonic timestamp systemd ≥ 253 asks for.
    fn reloading_message() -> String {
        format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec())
    }
}

fn monotonic_usec() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always there");
    ts.tv_sec() as u64 * 1_000_000 + ts.tv_nsec() as u64 / 1_000
}

/// The housekeeping period: idle timeouts, rate-limit reports, status.
const TICK: Duration = Duration::from_secs(1);

/// The most notifications held while the manager's queue is full (the FDSTOREREMOVE of a
/// full store and a few more); beyond, they are counted as not sent.
const MAX_PENDING: usize = 256;

/// How often a warning may say that notifications wait.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// The daemon's side of its service manager: readiness, reload and stop notifications, the
/// watchdog, and a status line sent when it changes. Nothing here waits for the manager in
/// the loop: a notification its full queue does not take is held (in order; of the status
/// lines only the latest) and sent again at the next call or tick; what cannot be sent at all
/// is counted, said in a warning and in the stop summary ([`Supervisor::take_warning`],
/// [`Supervisor::unsent`]). Only the hand-over at a stop waits for room, until the stop's
/// deadline.
pub struct Supervisor {
    notifier: Notifier,
    watchdog: Option<Duration>,
    /// The status line last sent, and one waiting to be.
    status: String,
    pending_status: Option<String>,
    /// Notifications the manager's queue did not take yet, in order.
    pending: VecDeque<String>,
    /// Room in the file descriptor store, when there is one.
    fd_store: Option<usize>,
    /// Notifications that had to wait, and those never sent (dropped or refused);
    /// descriptors the store did not take.
    delayed: u64,
    unsent: u64,
    not_stored: u64,
    /// What the last warning counted, and when it was.
    warned: (u64, u64, Option<Instant>),
}

impl Supervisor {
    pub fn from_env() -> Supervisor {
        Supervisor {
            notifier: Notifier::from_env(),
            watchdog: watchdog_interval(),
            status: String::new(),
            pending_status: None,
            pending: VecDeque::new(),
            fd_store: fd_store_size(),
            delayed: 0,
            unsent: 0,
            not_stored: 0,
            warned: (0, 0, None),
        }
    }

    /// How many descriptors the file descriptor store takes, if there is one.
    pub fn fd_store(&self) -> Option<usize> {
        self.fd_store.filter(|_| self.notifier.is_active())
    }

    /// Hands a descriptor to the file descriptor store, waiting for room in the manager's
    /// queue until `deadline` at the latest (the stop's).
    pub fn store(&mut self, name: &str, fd: BorrowedFd<'_>, deadline: Instant) -> io::Result<()> {
        let stored = self.notifier.store(name, fd, deadline);
        if stored.is_err() {
            self.not_stored += 1;
        }
        stored
    }

    /// Lets the store forget descriptors taken back.
    pub fn forget_stored(&mut self, name: &str) {
        self.send(format!("FDSTOREREMOVE=1\nFDNAME={name}"));
    }

    /// How often [`Supervisor::tick`] must run: every second, or more often for the watchdog.
    pub fn tick_interval(&self) -> Duration {
        self.watchdog.map_or(TICK, |w| w.min(TICK))
    }

    pub fn ready(&mut self) {
        self.send("READY=1".into());
    }

    pub fn reloading(&mut self) {
        self.send(Notifier::reloading_message());
    }

    pub fn stopping(&mut self) {
        self.send("STOPPING=1".into());
    }

    /// Pets the watchdog, sends what waits and the status line if it changed.
    pub fn tick(&mut self, status: impl fmt::Display) {
        if self.watchdog.is_some() && !self.pending.iter().any(|m| m == "WATCHDOG=1") {
            self.send("WATCHDOG=1".into());
        } else {
            self.flush();
        }
        self.update_status(status);
    }

    /// Sends the status line if it changed (held, the latest only, while the queue is full).
    pub fn update_status(&mut self, status: impl fmt::Display) {
        if !self.notifier.is_active() {
            return;
        }
        let status = format!("STATUS={status}");
        self.pending_status = (status != self.status).then_some(status);
        self.flush();
    }

    /// Sends `message` after what waits, or holds it.
    fn send(&mut self, message: String) {
        if !self.notifier.is_active() {
            return;
        }
        self.flush();
        if self.pending.is_empty() {
            match self.notifier.notify(&message) {
                Ok(()) => return,
                Err(e) if e.kind() != io::ErrorKind::WouldBlock => {
                    self.unsent += 1;
                    return;
                }
                Err(_) => {}
            }
        }
        self.delayed += 1;
        if self.pending.len() >= MAX_PENDING {
            self.unsent += 1;
            return;
        }
        self.pending.push_back(message);
    }

    /// Sends what waits, in order, as far as the manager's queue takes it.
    fn flush(&mut self) {
        while let Some(message) = self.pending.front() {
            match self.notifier.notify(message) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => self.unsent += 1,
            }
            self.pending.pop_front();
        }
        if let Some(status) = self.pending_status.take() {
            match self.notifier.notify(&status) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.pending_status = Some(status)
                }
                // (Sent, or refused: then the next change tries again.)
                _ => self.status = status,
            }
        }
    }

    /// Notifications waiting for room in the manager's queue.
    fn waiting(&self) -> usize {
        self.pending.len() + usize::from(self.pending_status.is_some())
    }

    /// A warning to log when notifications have had to wait or could not be sent since the
    /// last one (at most one per 10 s).
    pub fn take_warning(&mut self, now: Instant) -> Option<String> {
        let (delayed, unsent, at) = self.warned;
        if (self.delayed, self.unsent) == (delayed, unsent)
            || at.is_some_and(|at| now.duration_since(at) < WARN_EVERY)
        {
            return None;
        }
        self.warned = (self.delayed, self.unsent, Some(now));
        let oldest = self.pending.front().map_or(String::new(), |m| {
            format!(" (the oldest: {})", m.replace('\n', " "))
        });
        let lost = match self.unsent - unsent {
            0 => String::new(),
            n => format!(", {n} could not be sent at all"),
        };
        Some(format!(
            "the service manager does not read its notify socket: {} notifications wait to be \
             sent{oldest}{lost}; the daemon goes on without waiting for it",
            self.waiting()
        ))
    }

    /// For the stop: notifications never sent (refused, dropped, or still waiting now), and
    /// descriptors the file descriptor store did not take.
    pub fn unsent(&self) -> (u64, u64) {
        (self.unsent + self.waiting() as u64, self.not_stored)
    }
}

/// How often to send `WATCHDOG=1`: half of `$WATCHDOG_USEC`, when it is meant for us.
pub fn watchdog_interval() -> Option<Duration> {
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.parse::<u32>().ok() != Some(std::process::id()) {
            return None;
        }
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

/// The descriptors systemd passed to this process (`$LISTEN_FDS` from fd 3, named by
/// `$LISTEN_FDNAMES`), from socket activation or the file descriptor store; the variables are
/// removed so that no child sees them.
pub fn passed_fds() -> Vec<(String, OwnedFd)> {
    let for_us = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    let count: i32 = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let names = std::env::var("LISTEN_FDNAMES").unwrap_or_default();
    std::env::remove_var("LISTEN_PID");
    std::env::remove_var("LISTEN_FDS");
    std::env::remove_var("LISTEN_FDNAMES");
    if !for_us || !(1..=65536).contains(&count) {
        return Vec::new();
    }
    const SD_LISTEN_FDS_START: i32 = 3;
    let mut names = names.split(':');
    (0..count)
        .map(|i| {
            let name = names.next().filter(|n| !n.is_empty()).unwrap_or("unknown");
            // SAFETY: systemd hands these descriptors to this process, and nothing else in
            // it owns them.
            let fd = unsafe { OwnedFd::from_raw_fd(SD_LISTEN_FDS_START + i) };
            let _ = fcntl(fd.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
            (name.to_string(), fd)
        })
        .collect()
}

/// A passed descriptor as a listening TCP socket, checked: a listening stream socket of
/// IPv4 or IPv6.
pub fn listening_socket(fd: OwnedFd) -> io::Result<TcpListener> {
    let socket = Socket::from(fd);
    let is_tcp_listener = socket.is_listener().unwrap_or(false)
        && socket.r#type().ok() == Some(Type::STREAM)
        && socket
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .is_some();
    if !is_tcp_listener {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "systemd passed a descriptor that is not a listening TCP socket",
        ));
    }
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// A passed descriptor as a connected TCP socket (a client carried over), checked.
pub fn connected_socket(fd: OwnedFd) -> io::Result<std::net::TcpStream> {
    let socket = Socket::from(fd);
    if socket.r#type()? != Type::STREAM || socket.is_listener()? {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a connected stream socket",
        ));
    }
    socket
        .peer_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a TCP socket"))?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// How many descriptors systemd's file descriptor store takes for this service (`$FDSTORE`,
/// set by systemd 254 and later from `FileDescriptorStoreMax=`; the unit also sets it for
/// older systemd), when there is a service manager to hand them to.
pub fn fd_store_size() -> Option<usize> {
    std::env::var_os("NOTIFY_SOCKET")?;
    let n: usize = std::env::var("FDSTORE").ok()?.parse().ok()?;
    (n > 0).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn notifications_reach_the_socket() {
        let dir = std::env::temp_dir().join(format!("tcpl-notify-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let server = UnixDatagram::bind(&path).unwrap();
        let mut notifier = Notifier {
            socket: Some(NotifySocket::open(SocketAddr::from_pathname(&path).unwrap()).unwrap()),
        };
        notifier.notify("READY=1\nSTATUS=ok").unwrap();
        let mut buf = [0; 64];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=ok");
        notifier.notify(&Notifier::reloading_message()).unwrap();
        let n = server.recv(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"RELOADING=1\nMONOTONIC_USEC="));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Issue 17 item 6: a manager that does not read never makes a notification wait; what
    /// its full queue does not take waits in order and goes once there is room, and what
    /// could not be sent is counted and said.
    #[test]
    fn a_full_notify_queue_holds_notifications_without_waiting() {
        let dir = std::env::temp_dir().join(format!("tcpl-notify-full-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let manager = UnixDatagram::bind(&path).unwrap();
        // The manager's queue full before the daemon sends anything, whatever its length
        // (`net.unix.max_dgram_qlen`: the kernel's 10, systemd's 512).
        // One sender's send buffer holds only about 270 of them: senders until a new one
        // cannot send either.
        let mut fillers = Vec::new();
        loop {
            let filler = UnixDatagram::unbound().unwrap();
            filler.set_nonblocking(true).unwrap();
            let mut sent = 0;
            while filler.send_to(b"X_FILLER=1", &path).is_ok() {
                sent += 1;
            }
            fillers.push(filler);
            assert!(fillers.len() < 1000, "the queue never fills");
            if sent == 0 {
                break;
            }
        }
        let mut supervisor = Supervisor {
            notifier: Notifier {
                socket: Some(
                    NotifySocket::open(SocketAddr::from_pathname(&path).unwrap()).unwrap(),
                ),
            },
            ..Supervisor::from_env()
        };
        let t0 = Instant::now();
        // Far more than the queue takes: none of these waits.
        for i in 0..100 {
            supervisor.forget_stored(&format!("conn-{i:03}"));
            supervisor.update_status(i);
        }
        supervisor.ready();
        assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
        let (waiting, not_stored) = supervisor.unsent();
        assert!(waiting > 0 && not_stored == 0, "{waiting}");
        let warning = supervisor.take_warning(t0).expect("a warning");
        assert!(
            warning.contains("wait to be sent (the oldest: FDSTOREREMOVE=1 FDNAME=conn-"),
            "{warning}"
        );
        assert_eq!(supervisor.take_warning(t0), None, "once per 10 s");
        // A descriptor to store times out at its deadline instead of waiting for ever.
        let fd = std::fs::File::open("/dev/null").unwrap();
        let deadline = Instant::now() + Duration::from_millis(200);
        let e = supervisor
            .store("conn-1", fd.as_fd(), deadline)
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(Instant::now() < deadline + Duration::from_millis(500));
        assert_eq!(supervisor.unsent().1, 1);
        // The manager reads: what waited goes, in order, then the latest status only.
        let mut got = Vec::new();
        let mut buf = [0; 256];
        manager.set_nonblocking(true).unwrap();
        while got.last().map(String::as_str) != Some("STATUS=99") {
            while let Ok(n) = manager.recv(&mut buf) {
                got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
            supervisor.tick("99");
            assert!(t0.elapsed() < Duration::from_secs(10), "{got:?}");
        }
        let removes: Vec<&String> = got
            .iter()
            .filter(|m| m.starts_with("FDSTOREREMOVE"))
            .collect();
        assert_eq!(removes.len(), 100, "{got:?}");
        assert!(removes.windows(2).all(|w| w[0] < w[1]), "in order");
        assert!(got.iter().any(|m| m == "READY=1"));
        assert_eq!(supervisor.unsent(), (0, 1), "all sent in the end");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
