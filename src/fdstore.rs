//! Restarts without dropping a connection: systemd's file descriptor store. This module owns
//! the whole of it: the names in the store and the sorting of what systemd passes at start
//! (here), the versioned state (`fdstore/state.rs`), and the handoff itself
//! (`fdstore/handoff.rs`): what a stop stores, what a start takes back.
//!
//! At a stop, once what clients had sent is read and logged, the daemon hands its listening
//! socket and every client socket to the service manager (`FDSTORE=1`, one `FDNAME=` each:
//! [`LISTENER`], `conn-ID`; with `udp = true` the UDP socket too, `udp-N`: see [`udp_name`]),
//! and beside them a sealed memfd ([`STATE`]) holding what each
//! connection needs to go on: peer, connection id, counters, the framer's unfinished line,
//! and the daemon's counters and rate-limit budgets. When the unit restarts, systemd passes
//! them to the next start (`LISTEN_FDS`, `LISTEN_FDNAMES`), which takes them back and reads on;
//! a client sees no reset and loses no byte. On a plain stop systemd closes them.
//!
//! The state is versioned ([`state::VERSION`]): a state this version cannot read, or one with
//! a value out of range ([`State::check`]: it is data, checked before anything is taken from
//! it), is refused with a reason, and the connections are served on as new ones (nothing that
//! can still be served is closed). `fuzz/run` fuzzes the decoder and the checks (`state`).

use std::os::fd::OwnedFd;

use socket2::{SockRef, Type};

pub mod handoff;
pub mod state;

pub use state::State;

/// The name of the listening socket in the store.
pub const LISTENER: &str = "listener";
/// The name of the state memfd in the store.
pub const STATE: &str = "state";
/// The store holds one client socket under this prefix and its connection id.
const CONNECTION_PREFIX: &str = "conn-";
/// The store holds the UDP socket under this prefix and the kernel's drop count.
const UDP_PREFIX: &str = "udp-";

/// The store name of a client socket.
pub fn connection_name(id: u64) -> String {
    format!("{CONNECTION_PREFIX}{id}")
}

/// The store name of the UDP socket: `udp-N`, N the kernel's count of the datagrams it
/// dropped (SO_RXQ_OVFL) as of the last datagram read, so that the next process counts only
/// the drops after it. The socket goes to the store even when a socket unit passed it (the
/// unit keeps its own copy), for this count.
pub fn udp_name(kernel_drops: u32) -> String {
    format!("{UDP_PREFIX}{kernel_drops}")
}

/// What systemd passed at start, sorted out by name.
#[derive(Debug, Default)]
pub struct Carried {
    /// Our own listening socket from the store.
    pub listener: Option<OwnedFd>,
    /// A listening socket from a socket unit (its address is the socket unit's).
    pub socket_unit: Option<OwnedFd>,
    /// Our own UDP socket from the store, with the kernel's drop count it was stored with.
    pub udp: Option<(u32, OwnedFd)>,
    /// A datagram socket from a socket unit (`ListenDatagram=`), told by its type.
    pub socket_unit_udp: Option<OwnedFd>,
    /// Client sockets, by connection id.
    pub connections: Vec<(u64, OwnedFd)>,
    pub state: Option<OwnedFd>,
    /// Names of descriptors that are none of these (closed).
    pub unknown: Vec<String>,
    /// The names of ours (the store's), as passed.
    stored: Vec<String>,
}

impl Carried {
    /// Sorts the descriptors systemd passed. A socket unit's descriptor is named after the
    /// unit (or `FileDescriptorName=`): any name not ours is taken for it, the first one.
    pub fn sort(fds: Vec<(String, OwnedFd)>) -> Carried {
        let mut carried = Carried::default();
        for (name, fd) in fds {
            let udp_drops = name
                .strip_prefix(UDP_PREFIX)
                .and_then(|n| n.parse::<u32>().ok());
            if name == LISTENER
                || name == STATE
                || name.starts_with(CONNECTION_PREFIX)
                || udp_drops.is_some()
            {
                carried.stored.push(name.clone());
            }
            if name == LISTENER {
                carried.listener = Some(fd);
            } else if let Some(drops) = udp_drops {
                carried.udp = Some((drops, fd));
            } else if name == STATE {
                carried.state = Some(fd);
            } else if let Some(id) = name
                .strip_prefix(CONNECTION_PREFIX)
                .and_then(|id| id.parse().ok())
            {
                carried.connections.push((id, fd));
            } else if is_datagram(&fd) && carried.socket_unit_udp.is_none() {
                carried.socket_unit_udp = Some(fd);
            } else if !is_datagram(&fd) && carried.socket_unit.is_none() {
                carried.socket_unit = Some(fd);
            } else {
                carried.unknown.push(name);
            }
        }
        carried.connections.sort_by_key(|(id, _)| *id);
        carried
    }

    /// The names of what came from the store, to tell systemd to forget them once taken
    /// back (`FDSTOREREMOVE`): else its copies would keep the connections open after the
    /// daemon closes them.
    pub fn stored_names(&self) -> &[String] {
        &self.stored
    }
}

/// Whether `fd` is a datagram socket (getsockopt SO_TYPE).
fn is_datagram(fd: &OwnedFd) -> bool {
    SockRef::from(fd).r#type().ok() == Some(Type::DGRAM)
}

#[cfg(test)]
mod tests {
    use std::fs::File;

    use super::*;

    #[test]
    fn passed_descriptors_are_sorted_by_name() {
        let fd = || File::open("/dev/null").unwrap().into();
        let datagram = || std::net::UdpSocket::bind("127.0.0.1:0").unwrap().into();
        let carried = Carried::sort(vec![
            ("tcp-listener.socket".into(), datagram()),
            ("udp-7".into(), datagram()),
            ("conn-9".into(), fd()),
            (STATE.into(), fd()),
            ("tcp-listener.socket".into(), fd()),
            (LISTENER.into(), fd()),
            ("conn-3".into(), fd()),
            ("stray".into(), fd()),
        ]);
        let ids: Vec<u64> = carried.connections.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, [3, 9]);
        assert!(carried.listener.is_some() && carried.state.is_some());
        assert!(carried.socket_unit.is_some());
        assert!(carried.socket_unit_udp.is_some(), "told by its type");
        assert_eq!(carried.udp.as_ref().map(|(n, _)| *n), Some(7));
        assert_eq!(carried.unknown, ["stray"]);
        assert_eq!(
            carried.stored_names(),
            ["udp-7", "conn-9", "state", "listener", "conn-3"]
        );
    }
}
