//! The handoff: what a stop hands to systemd's file descriptor store, and what the next start
//! takes back from it. At a stop ([`hand_over`]): every plain client connection (what it had
//! sent read and logged, its unfinished line logged as partial and kept), the listening
//! socket, the UDP socket (datagrams sent meanwhile wait in it for the next process) and the
//! [`State`]; a TLS session cannot be carried over, so those are closed. At a
//! start ([`take_back`]): each connection goes on where it was, or, if the state cannot be
//! used for it, as a new one; the daemon's counters and budgets go on from the state's.

use std::os::fd::{AsFd, BorrowedFd};
use std::time::Instant;

use mio::net::{TcpListener, TcpStream};
use mio::Registry;

use super::{connection_name, udp_name, Carried, State, LISTENER, STATE};
use crate::config::Config;
use crate::connection::{Connection, Connections, Line};
use crate::entry::priority;
use crate::memfd::{read_memfd, sealed_memfd};
use crate::source::Sources;
use crate::summary::Summary;
use crate::systemd::{connected_socket, Supervisor};

/// The parts of the running daemon the handoff reads and changes.
pub struct Parts<'a> {
    pub config: &'a Config,
    pub registry: &'a Registry,
    pub conns: &'a mut Connections,
    pub sources: &'a mut Sources,
    pub supervisor: &'a mut Supervisor,
    pub summary: &'a mut Summary,
    /// The id the next new connection gets.
    pub next_id: &'a mut u64,
}

/// Takes back what the previous process handed to systemd's file descriptor store: its
/// client connections (each goes on where it was, same connection id, its unfinished
/// line carried) and its counters. A state that cannot be used is reported, and the
/// connections are served on as new ones.
pub fn take_back(parts: Parts<'_>, mut carried: Carried) -> Vec<(u8, String)> {
    let Parts {
        config,
        registry,
        conns,
        sources,
        supervisor,
        summary,
        next_id,
    } = parts;
    let mut notices = Vec::new();
    let forget = carried.stored_names().to_vec();
    let now = Instant::now();
    let state = carried.state.take().map(|fd| {
        read_memfd(fd)
            .map_err(|e| format!("cannot read it: {e}"))
            .and_then(|bytes| State::decode(&bytes))
            .and_then(|state| state.check(config).map(|()| state))
    });
    let (mut saved, state_note) = match state {
        Some(Ok(state)) => {
            *next_id = (*next_id).max(state.next_id);
            let s = &mut *summary;
            s.connections = state.summary.connections;
            s.lines = state.summary.lines;
            s.refused = state.summary.refused;
            s.dropped = state.summary.dropped;
            for (ip, tokens) in &state.budgets {
                sources.restore_budget(*ip, *tokens, now);
            }
            (state.connections, None)
        }
        Some(Err(why)) => (Vec::new(), Some(why)),
        None => (
            Vec::new(),
            (!carried.connections.is_empty()).then(|| "there is none".into()),
        ),
    };
    let (mut restored, mut fresh, mut unfinished) = (0, 0, 0);
    for (id, fd) in std::mem::take(&mut carried.connections) {
        let stream = match connected_socket(fd) {
            Ok(s) => TcpStream::from_std(s),
            Err(e) => {
                notices.push((
                    priority::WARNING,
                    format!("connection {id} carried over: {e}; closed"),
                ));
                continue;
            }
        };
        let conn = match saved.iter().position(|c| c.id == id) {
            Some(i) => {
                let state = saved.swap_remove(i);
                Connection::restore(stream, &state, config, now)
            }
            None => Err((stream, "not in the state".to_string())),
        };
        let conn = match conn {
            Ok(conn) => {
                restored += 1;
                unfinished += conn.unfinished();
                conn
            }
            Err((stream, why)) => {
                notices.push((
                    priority::WARNING,
                    format!("connection {id} carried over: {why}; served as a new one"),
                ));
                // Served on as a new connection: a new id, nothing carried.
                let Ok(peer) = stream.peer_addr() else {
                    continue;
                };
                fresh += 1;
                let conn = Connection::new(stream, peer, *next_id, config, now);
                *next_id += 1;
                summary.connections += 1;
                conn
            }
        };
        let ip = conn.peer.addr.ip();
        match conns.insert(conn, registry) {
            Ok(_) => sources.connected(ip, now),
            Err(e) => notices.push((
                priority::WARNING,
                format!("connection {id} carried over: cannot watch it ({e}); closed"),
            )),
        }
    }
    for name in &carried.unknown {
        notices.push((
            priority::WARNING,
            format!("systemd passed a descriptor named {name:?}, which is not ours: closed"),
        ));
    }
    for name in forget {
        supervisor.forget_stored(&name);
    }
    if restored + fresh == 0 && state_note.is_none() {
        return notices;
    }
    let mut text = format!(
        "carried over {} connections from the previous process (file descriptor store)",
        restored + fresh
    );
    if restored > 0 {
        text.push_str(&format!(
            "; {restored} go on where they were, with {unfinished} bytes of unfinished lines"
        ));
    }
    let priority = match state_note {
        Some(why) => {
            text.push_str(&format!(
                "; its state could not be used ({why}): {fresh} go on as new connections"
            ));
            priority::WARNING
        }
        None => priority::NOTICE,
    };
    notices.push((priority, text));
    notices
}

/// At the end of a stop, with a file descriptor store to hand them to: every client
/// connection (what it had sent is read and logged; an unfinished line goes with it), the
/// listening socket, the UDP socket (`udp`: with the kernel's drop count as of the last
/// datagram read, for [`udp_name`]) and the state, each waiting for room in the manager's queue until
/// `until` at the latest. Returns what to say in the last entry; the connections that did
/// not fit in the store, or that the manager did not take in time, are closed as usual by
/// the caller.
pub fn hand_over(
    parts: Parts<'_>,
    listener: &mut Option<TcpListener>,
    udp: Option<(BorrowedFd<'_>, u32)>,
    until: Instant,
    mut log_carried: impl FnMut(Line<'_>),
) -> Option<HandOver> {
    let Parts {
        conns,
        sources,
        supervisor,
        summary,
        next_id,
        registry,
        ..
    } = parts;
    let room = supervisor.fd_store()?;
    let now = Instant::now();
    let listener = listener.take();
    // The state and the listening socket take a place each.
    let mut room =
        room.saturating_sub(1 + usize::from(listener.is_some()) + usize::from(udp.is_some()));
    let mut saved = Vec::new();
    let (mut unfinished, mut unread, mut not_taken) = (0, 0, 0);
    let mut why_not = None;
    // A TLS session cannot be carried over: those are closed by the caller (an end of
    // file, which makes a relay reconnect to the next process), after what they sent was
    // read and logged.
    let mut keys = conns.keys_where(|c| !c.is_tls());
    keys.sort_by_key(|&k| conns.get_mut(k).map(|c| c.peer.connection_id));
    for key in keys {
        if room == 0 {
            break;
        }
        let Some(conn) = conns.get_mut(key) else {
            continue;
        };
        let name = connection_name(conn.peer.connection_id);
        if let Err(e) = supervisor.store(&name, conn.socket(), until) {
            not_taken += 1;
            why_not.get_or_insert(e.to_string());
            continue;
        }
        room -= 1;
        saved.push(conn.save(now));
        unfinished += conn.unfinished();
        conn.log_carried(&mut log_carried);
        unread += conn.stop_quota().unwrap_or(0);
        let ip = conn.peer.addr.ip();
        drop(conns.remove(key, registry));
        sources.disconnected(ip);
    }
    let listener_stored = match &listener {
        Some(listener) => match supervisor.store(LISTENER, listener.as_fd(), until) {
            Ok(()) => true,
            Err(e) => {
                why_not.get_or_insert(e.to_string());
                false
            }
        },
        None => false,
    };
    let udp_stored = match udp {
        Some((fd, drops)) => match supervisor.store(&udp_name(drops), fd, until) {
            Ok(()) => true,
            Err(e) => {
                why_not.get_or_insert(e.to_string());
                false
            }
        },
        None => false,
    };
    let state = State {
        next_id: *next_id,
        summary: *summary,
        budgets: sources.budgets(now),
        connections: saved,
    };
    let handed = state.connections.len();
    let mut not_handed = String::new();
    if not_taken > 0 {
        not_handed.push_str(&format!(
            "; {not_taken} connections could not be handed over ({}): closed now, what \
             they sent logged",
            why_not.as_deref().unwrap_or("")
        ));
    }
    if listener.is_some() && !listener_stored {
        not_handed.push_str(&format!(
            "; the listening socket could not be handed over ({}): clients waiting in its \
             queue are reset",
            why_not.as_deref().unwrap_or("")
        ));
    }
    if udp.is_some() && !udp_stored {
        not_handed.push_str(&format!(
            "; the UDP socket could not be handed over ({}): datagrams sent until the next \
             start are lost",
            why_not.as_deref().unwrap_or("")
        ));
    }
    let stored = sealed_memfd(&state.encode(), c"tcp-listener-state")
        .and_then(|fd| supervisor.store(STATE, fd.as_fd(), until));
    if handed == 0 && !listener_stored && !udp_stored && !not_handed.is_empty() {
        return Some(HandOver {
            text: format!("handed nothing to systemd's file descriptor store{not_handed}"),
            whole: false,
            udp_stored,
        });
    }
    if let Err(e) = stored {
        return Some(HandOver {
            text: format!(
                "handed {handed} connections to systemd's file descriptor store, but not \
                 their state ({e}): a restart serves them as new connections{not_handed}"
            ),
            whole: false,
            udp_stored,
        });
    }
    let text =
        format!(
        "handed {handed} connections{}{} to systemd's file descriptor store, with {unfinished} \
         bytes of unfinished lines (logged now as partial, LINE_CARRIED=1; a restart logs \
         them whole) and {unread} bytes not read yet (a restart goes on with them; a plain \
         stop closes them){not_handed}",
        if listener_stored {
            " and the listening socket"
        } else {
            ""
        },
        if udp_stored { " and the UDP socket" } else { "" }
    );
    Some(HandOver {
        text,
        whole: not_handed.is_empty(),
        udp_stored,
    })
}

/// What a stop handed to the file descriptor store, as its last entry says it.
pub struct HandOver {
    pub text: String,
    /// Everything that was to be handed over was (else the entry is a warning).
    pub whole: bool,
    /// The UDP socket is in the store: what it still queues is the next process's.
    pub udp_stored: bool,
}
