//! The systemd side: readiness and status notifications (`sd_notify`, a datagram to
//! `$NOTIFY_SOCKET`), the watchdog interval, descriptors passed at start (socket activation,
//! the file descriptor store) and handed to the store at a stop.

use std::fmt;
use std::io::{self, IoSlice};
use std::net::TcpListener;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};
use socket2::{Socket, Type};

/// Sends notifications to systemd; does nothing when not started by systemd.
pub struct Notifier {
    socket: Option<(UnixDatagram, SocketAddr)>,
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
            Some((UnixDatagram::unbound().ok()?, addr))
        });
        Notifier { socket }
    }

    pub fn is_active(&self) -> bool {
        self.socket.is_some()
    }

    /// Sends `state` (such as `READY=1\nSTATUS=...`); errors are ignored, as sd_notify does.
    pub fn notify(&self, state: &str) {
        if let Some((socket, addr)) = &self.socket {
            let _ = socket.send_to_addr(state.as_bytes(), addr);
        }
    }

    /// Hands `fd` to the file descriptor store under `name` (`FDSTORE=1`).
    pub fn store(&self, name: &str, fd: BorrowedFd<'_>) -> io::Result<()> {
        let (socket, addr) = self
            .socket
            .as_ref()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "no NOTIFY_SOCKET"))?;
        let state = format!("FDSTORE=1\nFDNAME={name}");
        let fds = [fd.as_raw_fd()];
        let iov = [IoSlice::new(state.as_bytes())];
        let to = addr
            .as_pathname()
            .map(UnixAddr::new)
            .or_else(|| addr.as_abstract_name().map(UnixAddr::new_abstract))
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "unnamed socket"))??;
        sendmsg(
            socket.as_raw_fd(),
            &iov,
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            Some(&to),
        )?;
        Ok(())
    }

    /// Tells the store to let go of the descriptors named `name` (`FDSTOREREMOVE=1`).
    pub fn forget_stored(&self, name: &str) {
        self.notify(&format!("FDSTOREREMOVE=1\nFDNAME={name}"));
    }

    /// `RELOADING=1` with the monotonic timestamp systemd ≥ 253 asks for.
    pub fn reloading(&self) {
        self.notify(&format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec()));
    }
}

fn monotonic_usec() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always there");
    ts.tv_sec() as u64 * 1_000_000 + ts.tv_nsec() as u64 / 1_000
}

/// The housekeeping period: idle timeouts, rate-limit reports, status.
const TICK: Duration = Duration::from_secs(1);

/// The daemon's side of its service manager: readiness, reload and stop notifications, the
/// watchdog, and a status line sent when it changes.
pub struct Supervisor {
    notifier: Notifier,
    watchdog: Option<Duration>,
    status: String,
    /// Room in the file descriptor store, when there is one.
    fd_store: Option<usize>,
}

impl Supervisor {
    pub fn from_env() -> Supervisor {
        Supervisor {
            notifier: Notifier::from_env(),
            watchdog: watchdog_interval(),
            status: String::new(),
            fd_store: fd_store_size(),
        }
    }

    /// How many descriptors the file descriptor store takes, if there is one.
    pub fn fd_store(&self) -> Option<usize> {
        self.fd_store.filter(|_| self.notifier.is_active())
    }

    /// Hands a descriptor to the file descriptor store.
    pub fn store(&self, name: &str, fd: BorrowedFd<'_>) -> io::Result<()> {
        self.notifier.store(name, fd)
    }

    /// Lets the store forget descriptors taken back.
    pub fn forget_stored(&self, name: &str) {
        self.notifier.forget_stored(name);
    }

    /// How often [`Supervisor::tick`] must run: every second, or more often for the watchdog.
    pub fn tick_interval(&self) -> Duration {
        self.watchdog.map_or(TICK, |w| w.min(TICK))
    }

    pub fn ready(&self) {
        self.notifier.notify("READY=1");
    }

    pub fn reloading(&self) {
        self.notifier.reloading();
    }

    pub fn stopping(&self) {
        self.notifier.notify("STOPPING=1");
    }

    /// Pets the watchdog and sends the status line if it changed.
    pub fn tick(&mut self, status: impl fmt::Display) {
        if self.watchdog.is_some() {
            self.notifier.notify("WATCHDOG=1");
        }
        self.update_status(status);
    }

    /// Sends the status line if it changed.
    pub fn update_status(&mut self, status: impl fmt::Display) {
        if !self.notifier.is_active() {
            return;
        }
        let status = format!("STATUS={status}");
        if status != self.status {
            self.notifier.notify(&status);
            self.status = status;
        }
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

    #[test]
    fn notifications_reach_the_socket() {
        let dir = std::env::temp_dir().join(format!("tcpl-notify-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let server = UnixDatagram::bind(&path).unwrap();
        let notifier = Notifier {
            socket: Some((
                UnixDatagram::unbound().unwrap(),
                SocketAddr::from_pathname(&path).unwrap(),
            )),
        };
        notifier.notify("READY=1\nSTATUS=ok");
        let mut buf = [0; 64];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=ok");
        notifier.reloading();
        let n = server.recv(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"RELOADING=1\nMONOTONIC_USEC="));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
