//! The listening socket, made with socket2: SO_REUSEADDR, the configured backlog, non-blocking;
//! `::` is dual-stack and falls back to `0.0.0.0` on a host without IPv6.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

use crate::config::Config;

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

#[cfg(test)]
mod tests {
    use super::*;

    fn config(bind: &str, port: u16) -> Config {
        Config {
            bind: bind.parse().unwrap(),
            port,
            ..Config::default()
        }
    }

    #[test]
    fn dual_stack_accepts_ipv4_clients() {
        let (l, _) = bind(&config("::", 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (_, peer) = l.accept().unwrap();
        assert_eq!(peer.ip().to_canonical(), IpAddr::from([127, 0, 0, 1]));
    }

    #[test]
    fn a_bind_failure_names_the_address() {
        let (l, _) = bind(&config("127.0.0.1", 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        // Someone already listens there (SO_REUSEADDR does not allow two listeners).
        let e = bind(&config("127.0.0.1", port)).unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with(&format!("cannot listen on 127.0.0.1:{port}: ")),
            "{text}"
        );
        assert!(text.contains("in use"), "{text}");
    }
}
