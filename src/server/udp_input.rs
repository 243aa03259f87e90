//! The server's side of the UDP input (`udp = true`, see [`udp`](crate::udp)): which socket it
//! starts with (a socket unit's, the previous process's from the file descriptor store, or a
//! new one beside the listener), its share of each turn, its reports at the tick, a reload
//! turning it on or off or changing its buffer, and its part of the stop. What a datagram
//! becomes is `udp/`'s.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Instant;

use super::Server;
use crate::config::Config;
use crate::entry::priority;
use crate::fdstore::Carried;
use crate::udp::{Passed, Udp};

impl Server {
    /// At start, with `udp = true`: the UDP socket a socket unit passed (`ListenDatagram=`),
    /// else the previous process's from the store (if it is on the listener's address), else
    /// a new one there. The store's copy of a socket unit's socket brings only the kernel's
    /// drop count. With `udp = false` a socket unit's is kept unread, for a reload.
    pub(super) fn start_udp(&mut self, carried: &mut Carried) -> io::Result<()> {
        let stored = carried.udp.take();
        let passed = match (carried.socket_unit_udp.take(), stored) {
            (Some(fd), stored) => {
                let kernel_drops = stored
                    .filter(|(_, copy)| same_socket(&fd, copy))
                    .map_or(0, |(drops, _)| drops);
                Some(Passed {
                    fd,
                    kernel_drops,
                    from_systemd: true,
                })
            }
            (None, Some((kernel_drops, fd))) => {
                let addr = socket2::SockRef::from(&fd)
                    .local_addr()
                    .ok()
                    .and_then(|a| a.as_socket());
                if addr == Some(self.acceptor.local_addr()) && self.config.udp {
                    Some(Passed {
                        fd,
                        kernel_drops,
                        from_systemd: false,
                    })
                } else {
                    let why = match self.config.udp {
                        true => format!("the listener is on {}", self.acceptor.local_addr()),
                        false => "udp = false".to_string(),
                    };
                    self.announce(
                        priority::WARNING,
                        &format!(
                            "the UDP socket carried over (on {}) is closed, {why}: datagrams \
                             waiting in it are not read",
                            addr.map_or("?".into(), |a| a.to_string()),
                        ),
                    );
                    None
                }
            }
            (None, None) => None,
        };
        if !self.config.udp {
            if let Some(passed) = passed.filter(|p| p.from_systemd) {
                self.announce(
                    priority::NOTICE,
                    "systemd passed a UDP socket (ListenDatagram=), but udp = false: it is not \
                     read (udp = true and a reload read it)",
                );
                self.udp_unit = Some(passed.fd);
            }
            return Ok(());
        }
        let (udp, notice) = Udp::open(
            &self.config,
            self.acceptor.local_addr(),
            passed,
            self.poll.registry(),
            Instant::now(),
        )
        .map_err(io::Error::other)?;
        self.udp = Some(udp);
        if let Some(notice) = notice {
            self.announce(priority::WARNING, &notice);
        }
        Ok(())
    }

    /// The UDP input's share of the turn (`udp::PER_TURN` datagrams at most, while the sink
    /// has room).
    pub(super) fn serve_udp(&mut self) {
        let Some(udp) = &mut self.udp else {
            return;
        };
        if let Some(error) = udp.serve(&mut self.sink, &self.admission) {
            self.announce(priority::ERR, &error);
        }
    }

    /// Whether the UDP input can do something now (log what it holds, or read).
    pub(super) fn udp_has_work(&self) -> bool {
        let room = self.sink.has_room();
        self.udp.as_ref().is_some_and(|u| u.has_work(room))
    }

    /// At a stop: 1 while the UDP socket has datagrams left to read.
    pub(super) fn udp_undrained(&self) -> usize {
        self.udp.as_ref().map_or(0, Udp::undrained)
    }

    /// The tick: the UDP `dropped` entries due.
    pub(super) fn report_udp(&mut self, now: Instant) {
        if let Some(udp) = &mut self.udp {
            udp.report(&mut self.sink, now, false);
        }
    }

    /// A reload: `udp` turned on opens the socket (a socket unit's if systemd passed one),
    /// turned off closes it (what it had counted said first); on, it takes the new budgets,
    /// framing and limits, a changed `udp_receive_buffer`, and follows the listener to a new
    /// address. What cannot be done is said, and `new` set back to what is in force.
    pub(super) fn reload_udp(&mut self, new: &mut Config) {
        let now = Instant::now();
        let addr = self.acceptor.local_addr();
        match self.udp.as_mut() {
            Some(_) if !new.udp => self.close_udp("reload: udp = false"),
            Some(udp) => {
                udp.reconfigure(new, now);
                match udp.set_receive_buffer(new.udp_receive_buffer) {
                    Ok(None) => {}
                    Ok(Some(notice)) => self.announce(priority::WARNING, &notice),
                    Err(e) => {
                        self.announce(priority::ERR, &format!("reload: {e}"));
                        new.udp_receive_buffer = self.config.udp_receive_buffer;
                    }
                }
                let moved = self
                    .udp
                    .as_ref()
                    .is_some_and(|u| !u.from_systemd() && u.local_addr().ok() != Some(addr));
                if moved {
                    self.close_udp("reload: the listener moved");
                    self.open_udp(new);
                }
            }
            None if new.udp => self.open_udp(new),
            None => {}
        }
    }

    /// Opens the UDP socket on the listener's address at a reload, or says why not (`new`
    /// then says `udp = false`, so that the next reload tries again).
    fn open_udp(&mut self, new: &mut Config) {
        let addr = self.acceptor.local_addr();
        let passed = self.udp_unit.take().map(|fd| Passed {
            fd,
            kernel_drops: 0,
            from_systemd: true,
        });
        match Udp::open(new, addr, passed, self.poll.registry(), Instant::now()) {
            Ok((udp, notice)) => {
                let on = udp.local_addr().map_or(addr, |a| a);
                self.announce(
                    priority::NOTICE,
                    &format!(
                        "reload: UDP on {on} too (receive buffer {} bytes)",
                        udp.granted()
                    ),
                );
                if let Some(notice) = notice {
                    self.announce(priority::WARNING, &notice);
                }
                self.udp = Some(udp);
            }
            Err(e) => {
                self.announce(priority::ERR, &format!("reload: {e}; UDP stays off"));
                new.udp = false;
            }
        }
    }

    /// Closes the UDP socket (a socket unit's is kept, unread, for a later reload), after
    /// its last counts are reported and said.
    fn close_udp(&mut self, why: &str) {
        let Some(mut udp) = self.udp.take() else {
            return;
        };
        // A socket unit's stays with systemd, its queue for a later reload.
        let closing = !udp.from_systemd();
        udp.log_rest(&mut self.sink, &self.admission, closing);
        udp.report(&mut self.sink, Instant::now(), true);
        let text = format!(
            "{why}: the UDP socket is closed; {}",
            udp.counts().summary()
        );
        if udp.from_systemd() {
            self.udp_unit = Some(udp.into_fd(self.poll.registry()));
        } else {
            udp.close(self.poll.registry());
        }
        self.announce(priority::NOTICE, &text);
    }

    /// The stop begins: the UDP socket is read to its end, as the clients are.
    pub(super) fn begin_stop_udp(&mut self) {
        if let Some(udp) = &mut self.udp {
            udp.begin_stop();
        }
    }

    /// The end of the stop (after the handoff, which stored the socket if there is a
    /// store): what is held logged, and unless the socket is in the store (whose queue is
    /// the next process's), what it still has; the last UDP counts reported and kept for
    /// the summary, the socket closed.
    pub(super) fn finish_udp(&mut self, stored: bool) {
        if let Some(mut udp) = self.udp.take() {
            let closing = !stored && !udp.from_systemd();
            udp.log_rest(&mut self.sink, &self.admission, closing);
            udp.report(&mut self.sink, Instant::now(), true);
            self.summary.udp = Some(udp.counts());
            udp.close(self.poll.registry());
        }
    }
}

/// Whether two descriptors are the same socket (its inode).
fn same_socket(a: &OwnedFd, b: &OwnedFd) -> bool {
    let inode = |fd: &OwnedFd| {
        nix::sys::stat::fstat(fd.as_raw_fd())
            .ok()
            .map(|s| (s.st_dev, s.st_ino))
    };
    inode(a).is_some() && inode(a) == inode(b)
}
