//! The systemd side: readiness and status notifications (`sd_notify`, a datagram to
//! `$NOTIFY_SOCKET`), the watchdog interval, and sockets passed by socket activation.

use std::io;
use std::net::TcpListener;
use std::os::fd::FromRawFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

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
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
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
    let mut kind: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes one c_int into `kind`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ACCEPTCONN,
            (&mut kind as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 || kind == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "systemd passed fd 3, but it is not a listening stream socket",
        ));
    }
    // SAFETY: systemd hands this fd to us and nothing else in the process owns it.
    let listener = unsafe { TcpListener::from_raw_fd(fd) };
    listener.set_nonblocking(true)?;
    Ok(Some(listener))
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
