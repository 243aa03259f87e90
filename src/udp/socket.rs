//! Opening the UDP socket: socket2 with SO_REUSEADDR (dual-stack on `::`), the receive
//! buffer `udp_receive_buffer` asks for (and, when `net.core.rmem_max` caps it, what the
//! kernel granted, with the sysctl that raises the cap), and SO_RXQ_OVFL, so that every
//! datagram read says how many the kernel dropped for want of buffer before it. Or taking
//! one that was passed (a socket unit's `ListenDatagram=`, the previous process's from the
//! file descriptor store), checked and set the same way.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};

use socket2::{Domain, Protocol, Socket, Type};

/// An open, bound, non-blocking UDP socket, and the receive buffer the kernel granted.
pub struct Opened {
    pub socket: std::net::UdpSocket,
    /// Bytes of datagrams the kernel queues (what SO_RCVBUF reads back, halved: Linux
    /// doubles the value asked for, for its bookkeeping).
    pub granted: usize,
    /// Said at start (and on reload) when the kernel granted less than asked.
    pub notice: Option<String>,
}

/// Opens the UDP socket on `addr` with a receive buffer of `receive_buffer` bytes.
pub fn open(addr: SocketAddr, receive_buffer: usize) -> Result<Opened, String> {
    let fail =
        |what: &str, e: io::Error| format!("cannot open the UDP socket on {addr}: {what}: {e}");
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
        .map_err(|e| fail("socket", e))?;
    socket
        .set_reuse_address(true)
        .map_err(|e| fail("SO_REUSEADDR", e))?;
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        // `::` takes IPv4 senders too, as the TCP listener does.
        socket
            .set_only_v6(false)
            .map_err(|e| fail("IPV6_V6ONLY", e))?;
    }
    socket
        .set_recv_buffer_size(receive_buffer)
        .map_err(|e| fail("SO_RCVBUF", e))?;
    set_rxq_ovfl(&socket).map_err(|e| fail("SO_RXQ_OVFL", e))?;
    socket
        .set_nonblocking(true)
        .map_err(|e| fail("O_NONBLOCK", e))?;
    socket.bind(&addr.into()).map_err(|e| fail("bind", e))?;
    let granted = socket
        .recv_buffer_size()
        .map_err(|e| fail("SO_RCVBUF", e))?
        / 2;
    let notice = (granted < receive_buffer).then(|| capped(receive_buffer, granted));
    Ok(Opened {
        socket: socket.into(),
        granted,
        notice,
    })
}

/// Takes a passed descriptor as the UDP socket: checked (a datagram socket bound to an IP
/// address), non-blocking, SO_RXQ_OVFL on, its receive buffer set to `receive_buffer`.
pub fn adopt(fd: OwnedFd, receive_buffer: usize) -> Result<Opened, String> {
    let socket = Socket::from(fd);
    let addr = socket.local_addr().ok().and_then(|a| a.as_socket());
    let (Ok(Type::DGRAM), Some(addr)) = (socket.r#type(), addr) else {
        return Err("the socket passed for UDP is not a bound UDP socket".into());
    };
    let fail = |what: &str, e: io::Error| {
        format!("cannot use the UDP socket passed on {addr}: {what}: {e}")
    };
    set_rxq_ovfl(&socket).map_err(|e| fail("SO_RXQ_OVFL", e))?;
    socket
        .set_nonblocking(true)
        .map_err(|e| fail("O_NONBLOCK", e))?;
    let (granted, notice) = set_buffer(socket2::SockRef::from(&socket), receive_buffer)
        .map_err(|e| fail("SO_RCVBUF", e))?;
    Ok(Opened {
        socket: socket.into(),
        granted,
        notice,
    })
}

/// Sets the receive buffer of an open socket (at start, or a reload's new size): what the
/// kernel granted, and the notice if that is less.
pub fn set_buffer(
    socket: socket2::SockRef<'_>,
    receive_buffer: usize,
) -> io::Result<(usize, Option<String>)> {
    socket.set_recv_buffer_size(receive_buffer)?;
    let granted = socket.recv_buffer_size()? / 2;
    let notice = (granted < receive_buffer).then(|| capped(receive_buffer, granted));
    Ok((granted, notice))
}

/// The notice for a receive buffer smaller than asked for.
fn capped(asked: usize, granted: usize) -> String {
    let max = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into());
    format!(
        "UDP: udp_receive_buffer = {asked}, but the kernel granted {granted} bytes \
         (net.core.rmem_max = {max} caps it): datagrams that arrive while the buffer is full \
         are dropped by the kernel (counted); to raise the cap: sysctl -w \
         net.core.rmem_max={asked} (and a file in /etc/sysctl.d to keep it)"
    )
}

/// SO_RXQ_OVFL: each datagram comes with the socket's count of datagrams dropped so far.
fn set_rxq_ovfl(socket: &Socket) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: a valid socket and a c_int option value of the size given.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RXQ_OVFL,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_on_a_free_port_with_the_buffer_and_sharing_it_with_a_second_socket() {
        let opened = open("127.0.0.1:0".parse().unwrap(), 65536).unwrap();
        let addr = opened.socket.local_addr().unwrap();
        assert!(opened.granted >= 4096, "{}", opened.granted);
        // SO_REUSEADDR: a second socket binds the same port (a restart's next process).
        let again = open(addr, 8192).unwrap();
        assert_eq!(again.socket.local_addr().unwrap(), addr);
    }

    #[test]
    fn a_capped_buffer_is_said_with_the_sysctl_that_raises_it() {
        let text = capped(1 << 20, 212_992);
        assert!(text.contains("granted 212992 bytes"), "{text}");
        assert!(
            text.contains("sysctl -w net.core.rmem_max=1048576"),
            "{text}"
        );
    }
}
