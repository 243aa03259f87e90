//! The UDP syslog input (`udp = true`): a UDP socket on the TCP listener's address and port,
//! read in the same loop. RFC 5426: one datagram, one message (`datagram.rs`), logged with
//! the sender's REMOTE_ADDR and REMOTE_PORT, `TRANSPORT=udp`, CONNECTION_ID 0 (there is no
//! connection) and LINE_NUMBER counting the socket's messages from 1 (all senders together,
//! since the start). Owns the socket and the turn's reading: batches of datagrams
//! (`receive.rs`), at most [`PER_TURN`] a turn and only while the sink has room (so a slow
//! journald stops UDP reading as it stops TCP reading: the kernel then queues, up to the
//! receive buffer, and counts what it drops); the allow list; the senders' budgets
//! (`sources.rs`); what is counted and reported (`counters.rs`). The socket is opened here
//! (`socket.rs`) or taken as passed ([`Passed`]: a socket unit's, or the previous process's
//! from the file descriptor store, which keeps the datagrams sent during a restart).

mod counters;
mod datagram;
mod receive;
mod socket;
mod sources;

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Instant;

use mio::{Interest, Registry, Token};

use crate::admission::Admission;
use crate::config::{Config, Framing};
use crate::entry::{canonical, peer_label, text_room, Entry, Peer, Remote, Value};
use crate::sink::Sink;
use crate::syslog_message::{parse, JournalFields, Sticky};

pub use counters::{UdpCounts, REPORT_INTERVAL};
pub use datagram::{cut, trim};
pub use sources::MAX_SOURCES;

use counters::{dropped_entry, KernelDrops, Unreported, SOURCES_PER_REPORT, TRANSPORT};
use receive::{Batch, BATCH};
use sources::UdpSources;

/// The UDP socket's poll token.
pub const TOKEN: Token = Token(usize::MAX - 5);

/// Datagrams read in one turn of the loop at most (two batches): the TCP clients get their
/// turn between (`server.rs` reads up to 256 of them a turn).
pub const PER_TURN: usize = 2 * BATCH;

/// A UDP socket passed at start or kept from before: a socket unit's (`ListenDatagram=`),
/// or the previous process's from the file descriptor store.
pub struct Passed {
    pub fd: OwnedFd,
    /// The kernel's drop count as of the last datagram read from it (0 for a new socket).
    pub kernel_drops: u32,
    /// A socket unit's: its address is the unit's, and it stays with systemd.
    pub from_systemd: bool,
}

pub struct Udp {
    socket: mio::net::UdpSocket,
    /// A socket unit's (its address is the unit's, and systemd keeps it).
    from_systemd: bool,
    /// The receive buffer asked for (`udp_receive_buffer`).
    receive_buffer: usize,
    batch: Batch,
    sources: UdpSources,
    counts: UdpCounts,
    unreported: Unreported,
    kernel: KernelDrops,
    next_report: Instant,
    /// The socket may have datagrams not read yet.
    ready: bool,
    /// The messages logged so far (LINE_NUMBER).
    number: u64,
    framing: Framing,
    max_line_length: usize,
    limit: (u32, u32),
    remote: Remote,
    fields: JournalFields,
    sticky: Sticky,
    message: String,
    label: String,
    granted: usize,
}

impl Udp {
    /// Opens the socket on `addr` (the TCP listener's), or takes the one `passed`, and
    /// watches it; the notice, if any, says the kernel granted a smaller receive buffer than
    /// asked for.
    pub fn open(
        config: &Config,
        addr: SocketAddr,
        passed: Option<Passed>,
        registry: &Registry,
        now: Instant,
    ) -> Result<(Udp, Option<String>), String> {
        let (from_systemd, kernel_drops) = passed
            .as_ref()
            .map_or((false, 0), |p| (p.from_systemd, p.kernel_drops));
        let opened = match passed {
            Some(passed) => socket::adopt(passed.fd, config.udp_receive_buffer)?,
            None => socket::open(addr, config.udp_receive_buffer)?,
        };
        let mut socket = mio::net::UdpSocket::from_std(opened.socket);
        registry
            .register(&mut socket, TOKEN, Interest::READABLE)
            .map_err(|e| format!("cannot watch the UDP socket on {addr}: {e}"))?;
        let udp = Udp {
            socket,
            from_systemd,
            receive_buffer: config.udp_receive_buffer,
            batch: Batch::new(config.udp_max_datagram),
            sources: UdpSources::new(config.max_lines_per_sec, config.max_lines_burst, now),
            counts: UdpCounts::default(),
            unreported: Unreported::default(),
            kernel: KernelDrops::starting_at(kernel_drops),
            next_report: now + REPORT_INTERVAL,
            // Datagrams may be queued already.
            ready: true,
            number: 0,
            framing: config.framing,
            max_line_length: config.max_line_length,
            limit: (config.max_lines_per_sec, config.max_lines_burst),
            remote: Remote::new(config),
            fields: JournalFields::new(),
            sticky: Sticky::new(),
            message: String::with_capacity(1024),
            label: String::new(),
            granted: opened.granted,
        };
        Ok((udp, opened.notice))
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// The socket, to hand to the file descriptor store, and the kernel's drop count as of
    /// the last datagram read (the next process counts from it).
    pub fn to_store(&self) -> (BorrowedFd<'_>, u32) {
        (self.socket.as_fd(), self.kernel.last())
    }

    /// A socket unit's socket (its address is the unit's; systemd keeps it).
    pub fn from_systemd(&self) -> bool {
        self.from_systemd
    }

    /// The receive buffer a reload asks for; the notice, if the kernel granted less.
    pub fn set_receive_buffer(&mut self, size: usize) -> Result<Option<String>, String> {
        if size == self.receive_buffer {
            return Ok(None);
        }
        let (granted, notice) = socket::set_buffer(socket2::SockRef::from(&self.socket), size)
            .map_err(|e| format!("UDP: cannot set the receive buffer to {size} bytes: {e}"))?;
        self.receive_buffer = size;
        self.granted = granted;
        Ok(notice)
    }

    /// The receive buffer the kernel granted, in bytes.
    pub fn granted(&self) -> usize {
        self.granted
    }

    /// The poll said the socket is readable.
    pub fn readable(&mut self) {
        self.ready = true;
    }

    pub fn has_ready(&self) -> bool {
        self.ready
    }

    /// Datagrams still to read at a stop: 1 until the socket has none left, else 0.
    pub fn undrained(&self) -> usize {
        usize::from(self.ready)
    }

    /// The stop begins: everything queued is read (as the TCP clients are).
    pub fn begin_stop(&mut self) {
        self.ready = true;
    }

    pub fn counts(&self) -> UdpCounts {
        self.counts
    }

    /// A new configuration (the socket, its address and buffer stay as they are).
    pub fn reconfigure(&mut self, config: &Config, now: Instant) {
        self.framing = config.framing;
        self.max_line_length = config.max_line_length;
        self.limit = (config.max_lines_per_sec, config.max_lines_burst);
        self.sources
            .reconfigure(config.max_lines_per_sec, config.max_lines_burst, now);
        self.remote = Remote::new(config);
        if config.udp_max_datagram != self.batch.slot_size() {
            self.batch = Batch::new(config.udp_max_datagram);
        }
    }

    /// Reads up to [`PER_TURN`] datagrams while the sink has room and logs their messages.
    /// An error other than "nothing more" is returned in words (the socket is read again at
    /// its next readiness).
    pub fn serve(&mut self, sink: &mut Sink, admission: &Admission) -> Option<String> {
        let mut left = PER_TURN;
        while left > 0 && self.ready {
            if !sink.has_room() {
                return None;
            }
            let n = match self.batch.receive(self.socket.as_fd(), left) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.ready = false;
                    return None;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.ready = false;
                    return Some(format!("UDP: cannot read the socket: {e}"));
                }
            };
            let now = Instant::now();
            for i in 0..n {
                self.log_datagram(i, sink, admission, now);
            }
            // Fewer than asked for: the socket's queue is empty.
            if n < left.min(BATCH) {
                self.ready = false;
            }
            left -= n;
        }
        None
    }

    /// Logs the messages of datagram `i` of the batch, or counts why not.
    fn log_datagram(&mut self, i: usize, sink: &mut Sink, admission: &Admission, now: Instant) {
        let Udp {
            batch,
            sources,
            counts,
            unreported,
            kernel,
            number,
            framing,
            max_line_length,
            remote,
            fields,
            sticky,
            message,
            label,
            ..
        } = self;
        let Some(d) = batch.get(i) else {
            return;
        };
        counts.datagrams += 1;
        if let Some(count) = d.kernel_drops {
            let new = kernel.seen(count);
            counts.kernel_dropped += new;
            unreported.kernel_dropped += new;
        }
        let addr = canonical(d.from);
        let ip = addr.ip();
        if !admission.allows(ip) {
            counts.not_allowed += 1;
            unreported.not_allowed += 1;
            unreported.not_allowed_from = Some(ip);
            return;
        }
        let truncated = d.truncated();
        if truncated {
            counts.truncated += 1;
            unreported.truncated += 1;
        }
        label.clear();
        label.push_str(&peer_label(addr));
        let room = text_room(*max_line_length, label);
        let peer = Peer {
            addr,
            connection_id: 0,
        };
        let source = sources.get(ip, now);
        let mut dropping = false;
        let mode = *framing;
        let any = datagram::cut(mode, room, d.bytes, truncated, |frame| {
            if frame.part <= 1 {
                dropping = !source.admit(now);
                if dropping {
                    counts.over_limit += 1;
                } else {
                    *number += 1;
                    counts.messages += 1;
                }
            }
            if dropping {
                return;
            }
            let mut entry = if mode == Framing::Syslog {
                let header = if frame.part <= 1 {
                    let header = parse(frame.bytes);
                    if frame.part == 1 {
                        sticky.remember(&header);
                    }
                    header
                } else {
                    sticky.continuation(frame.bytes)
                };
                Entry::syslog(
                    message, fields, label, peer, *number, &frame, &header, remote,
                )
            } else {
                Entry::line(message, label, peer, *number, &frame)
            };
            entry.fields.push(TRANSPORT.0, Value::Text(TRANSPORT.1));
            if truncated {
                entry
                    .fields
                    .push("DATAGRAM_TRUNCATED", Value::Number(d.sent_len as u64));
            }
            sink.log(&entry);
        });
        if !any {
            counts.empty += 1;
        }
    }

    /// The `dropped` entries due (at most once per [`REPORT_INTERVAL`]); `all` at the stop:
    /// whatever is left.
    pub fn report(&mut self, sink: &mut Sink, now: Instant, all: bool) {
        if !all && now < self.next_report {
            return;
        }
        self.next_report = now + REPORT_INTERVAL;
        let buf = &mut self.message;
        let u = std::mem::take(&mut self.unreported);
        if u.kernel_dropped > 0 {
            sink.log(&dropped_entry(
                buf,
                format_args!(
                    "UDP: the kernel dropped {} datagrams: the receive buffer ({} bytes, \
                     udp_receive_buffer) was full",
                    u.kernel_dropped, self.granted
                ),
                "DROPPED_DATAGRAMS",
                u.kernel_dropped,
                None,
            ));
        }
        if u.not_allowed > 0 {
            let last = u
                .not_allowed_from
                .map(|ip| ip.to_string())
                .unwrap_or_default();
            sink.log(&dropped_entry(
                buf,
                format_args!(
                    "UDP: dropped {} datagrams from sources not in the allow list (the last \
                     from {last})",
                    u.not_allowed
                ),
                "DROPPED_DATAGRAMS",
                u.not_allowed,
                None,
            ));
        }
        if u.truncated > 0 {
            sink.log(&dropped_entry(
                buf,
                format_args!(
                    "UDP: {} datagrams longer than udp_max_datagram ({} bytes) were logged \
                     cut (DATAGRAM_TRUNCATED= says how long each was)",
                    u.truncated,
                    self.batch.slot_size()
                ),
                "TRUNCATED_DATAGRAMS",
                u.truncated,
                None,
            ));
        }
        let (rate, burst) = self.limit;
        let reports = self.sources.reports(SOURCES_PER_REPORT);
        for s in reports.sources {
            let ip = s.ip.to_string();
            sink.log(&dropped_entry(
                buf,
                format_args!(
                    "{ip}: dropped {} UDP messages over the limit of {rate} lines/s (burst \
                     {burst}); {} dropped in all",
                    s.count, s.total
                ),
                "DROPPED_LINES",
                s.count,
                Some(&ip),
            ));
        }
        if let Some((n, count)) = reports.others {
            sink.log(&dropped_entry(
                buf,
                format_args!(
                    "UDP: dropped {count} messages from {n} more sources over the limit of \
                     {rate} lines/s (burst {burst}) each"
                ),
                "DROPPED_LINES",
                count,
                None,
            ));
        }
    }

    /// Stops watching the socket and gives it back (a socket unit's, kept for a reload).
    pub fn into_fd(mut self, registry: &Registry) -> OwnedFd {
        let _ = registry.deregister(&mut self.socket);
        self.socket.into()
    }

    /// Stops watching the socket; dropping it closes it.
    pub fn close(mut self, registry: &Registry) {
        let _ = registry.deregister(&mut self.socket);
    }
}
