//! The systemd side: readiness and status notifications (`sd_notify`, a datagram to
//! `$NOTIFY_SOCKET`), the watchdog interval, and sockets passed by socket activation.

use std::fmt;
use std::io;
use std::net::TcpListener;
use std::os::fd::FromRawFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

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
}

impl Supervisor {
    pub fn from_env() -> Supervisor {
        Supervisor {
            notifier: Notifier::from_env(),
            watchdog: watchdog_interval(),
            status: String::new(),
        }
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

/// The listening socket systemd passed (`$LISTEN_FDS`, first fd 3), if it passed one to us.
pub fn listener_from_systemd() -> io::Result<Option<TcpListener>> {
    let for_us = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    let count: u32 = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    if !for_us || count == 0 {
        return Ok(None);
    }
    std::env::remove_var("LISTEN_PID");
    std::env::remove_var("LISTEN_FDS");
    std::env::remove_var("LISTEN_FDNAMES");
    const SD_LISTEN_FDS_START: i32 = 3;
    let fd = SD_LISTEN_FDS_START;
    // SAFETY: systemd hands this fd to us and nothing else in the process owns it.
    let socket = unsafe { Socket::from_raw_fd(fd) };
    let is_tcp_listener = socket.is_listener().unwrap_or(false)
        && socket.r#type().ok() == Some(Type::STREAM)
        && socket
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .is_some();
    if !is_tcp_listener {
        // Not ours to close: leave the descriptor as it was.
        std::mem::forget(socket);
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "systemd passed fd 3, but it is not a listening TCP socket",
        ));
    }
    socket.set_nonblocking(true)?;
    Ok(Some(socket.into()))
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
