//! The server's side of the UDP input (`udp = true`, see [`udp`](crate::udp)): opening it
//! beside the listener, its share of each turn, its reports at the tick, a reload turning it
//! on or off, and its part of the stop. What a datagram becomes is `udp/`'s.

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use mio::Registry;

use super::Server;
use crate::config::Config;
use crate::entry::priority;
use crate::udp::Udp;

/// With `udp = true`: the UDP socket on the listener's `addr`, and a notice about its
/// buffer, if any.
pub(super) fn open(
    config: &Config,
    addr: SocketAddr,
    registry: &Registry,
) -> io::Result<(Option<Udp>, Option<String>)> {
    if !config.udp {
        return Ok((None, None));
    }
    let (udp, notice) =
        Udp::open(config, addr, registry, Instant::now()).map_err(io::Error::other)?;
    Ok((Some(udp), notice))
}

impl Server {
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

    /// Whether the UDP socket may have datagrams to read.
    pub(super) fn udp_ready(&self) -> bool {
        self.udp.as_ref().is_some_and(Udp::has_ready)
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

    /// A reload: the new budgets, framing and limits; the socket opened or closed when `udp`
    /// changed.
    pub(super) fn reload_udp(&mut self, new: &Config) {
        if let Some(udp) = &mut self.udp {
            udp.reconfigure(new, Instant::now());
        }
    }

    /// The stop begins: the UDP socket is read to its end, as the clients are.
    pub(super) fn begin_stop_udp(&mut self) {
        if let Some(udp) = &mut self.udp {
            udp.begin_stop();
        }
    }

    /// The end of the stop: the last UDP counts reported and kept for the summary, the
    /// socket closed.
    pub(super) fn finish_udp(&mut self) {
        if let Some(mut udp) = self.udp.take() {
            udp.report(&mut self.sink, Instant::now(), true);
            self.summary.udp = Some(udp.counts());
            udp.close(self.poll.registry());
        }
    }
}
