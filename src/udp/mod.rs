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
mod held;
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
use held::Held;
use receive::{Batch, Datagram, BATCH};
use sources::UdpSources;

/// The UDP socket's poll token.
pub const TOKEN: Token = Token(usize::MAX - 5);

/// Datagrams read in one turn of the loop at most (two batches); the TCP clients have their
/// share of each turn too, going first every other turn (`Server::serve_inputs`).
pub const PER_TURN: usize = 2 * BATCH;

/// The least a queued datagram takes of the receive buffer (the kernel charges a buffer's
/// overhead with it): a bound on how many a full buffer holds.
const MIN_TRUESIZE: usize = 256;

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
    /// The next datagram of the batch to handle (those before it are logged or held).
    next: usize,
    /// A reload's new `udp_max_datagram`, for the next batch.
    new_slot_size: Option<usize>,
    /// Datagrams read while the sink had no room (`udp_hold_buffer`).
    held: Held,
    intake: Intake,
    next_report: Instant,
    /// The socket may have datagrams not read yet.
    ready: bool,
    granted: usize,
}

/// What turns a datagram read into entries, and counts: the allow list's and the budgets'
/// verdicts, the kernel's drops, the messages logged.
struct Intake {
    sources: UdpSources,
    counts: UdpCounts,
    unreported: Unreported,
    kernel: KernelDrops,
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
            next: 0,
            new_slot_size: None,
            held: Held::new(config.udp_hold_buffer),
            intake: Intake {
                sources: UdpSources::new(config.max_lines_per_sec, config.max_lines_burst, now),
                counts: UdpCounts::default(),
                unreported: Unreported::default(),
                kernel: KernelDrops::starting_at(kernel_drops),
                number: 0,
                framing: config.framing,
                max_line_length: config.max_line_length,
                limit: (config.max_lines_per_sec, config.max_lines_burst),
                remote: Remote::new(config),
                fields: JournalFields::new(),
                sticky: Sticky::new(),
                message: String::with_capacity(1024),
                label: String::new(),
            },
            next_report: now + REPORT_INTERVAL,
            // Datagrams may be queued already.
            ready: true,
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
        (self.socket.as_fd(), self.intake.kernel.last())
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

    /// Whether [`Udp::serve`] can do something now: log what is held or waits in the batch
    /// (with `sink_room`), hold the next in the batch (if it fits), or read a new batch.
    pub fn has_work(&self, sink_room: bool) -> bool {
        match self.batch.get(self.next) {
            Some(_) if sink_room => true,
            Some(d) => self.held.fits(d.bytes.len()),
            None => (sink_room && !self.held.is_empty()) || self.ready,
        }
    }

    /// Datagrams still to log at a stop: those held or waiting in the batch, and 1 until the socket has none left.
    pub fn undrained(&self) -> usize {
        self.held.len() + self.pending() + usize::from(self.ready)
    }

    /// The stop begins: everything queued is read (as the TCP clients are).
    pub fn begin_stop(&mut self) {
        self.ready = true;
    }

    pub fn counts(&self) -> UdpCounts {
        self.intake.counts
    }

    /// A new configuration (the socket, its address and buffer stay as they are).
    pub fn reconfigure(&mut self, config: &Config, now: Instant) {
        let intake = &mut self.intake;
        intake.framing = config.framing;
        intake.max_line_length = config.max_line_length;
        intake.limit = (config.max_lines_per_sec, config.max_lines_burst);
        intake
            .sources
            .reconfigure(config.max_lines_per_sec, config.max_lines_burst, now);
        intake.remote = Remote::new(config);
        self.held.set_limit(config.udp_hold_buffer);
        // Applied before the next batch is read (the datagrams waiting in this one stay).
        self.new_slot_size =
            Some(config.udp_max_datagram).filter(|&size| size != self.batch.slot_size());
    }

    /// The turn's share: up to [`PER_TURN`] datagrams. What is held is logged first, then
    /// the datagrams of the last batch not handled yet, then a new batch is read. While the
    /// sink has room and nothing is held, a datagram is logged; while it has none, held,
    /// until one does not fit in the hold: it waits in the batch (bounded, like the hold),
    /// reading stops, and the kernel queues (and counts what it drops). An error other than
    /// "nothing more" is returned in words (the socket is read again at its next readiness).
    pub fn serve(&mut self, sink: &mut Sink, admission: &Admission) -> Option<String> {
        let now = Instant::now();
        let mut left = PER_TURN;
        loop {
            while left > 0 && sink.has_room() {
                let Some(d) = self.held.pop() else {
                    break;
                };
                self.intake.log(d, sink, now);
                left -= 1;
            }
            while let Some(d) = self.batch.get(self.next) {
                let log = self.held.is_empty() && sink.has_room();
                if !log && !self.held.fits(d.bytes.len()) {
                    return None;
                }
                self.next += 1;
                if self.intake.admit(&d, admission) {
                    if log {
                        self.intake.log(d, sink, now);
                    } else {
                        self.held.push(&d);
                    }
                }
            }
            if left == 0 || !self.ready {
                return None;
            }
            if let Some(size) = self.new_slot_size.take() {
                self.batch = Batch::new(size);
            }
            let asked = left.min(BATCH);
            self.next = 0;
            let n = match self.batch.receive(self.socket.as_fd(), asked) {
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
            // Fewer than asked for: the socket's queue is empty.
            if n < asked {
                self.ready = false;
            }
            left -= n;
        }
    }

    /// The datagrams of the last batch not handled yet.
    fn pending(&self) -> usize {
        self.batch.len().saturating_sub(self.next)
    }

    /// Before the socket is let go: everything held logged (the sink queues what it has no
    /// room for, and counts what it cannot deliver), and with `read_socket` (the socket is
    /// about to be closed, not kept by systemd or the store) what the socket still holds,
    /// so that nothing the kernel took is lost without a word. Reads no more than a full
    /// receive buffer's worth (a flood does not hold the stop up).
    pub fn log_rest(&mut self, sink: &mut Sink, admission: &Admission, read_socket: bool) {
        let now = Instant::now();
        while let Some(d) = self.held.pop() {
            self.intake.log(d, sink, now);
        }
        while let Some(d) = self.batch.get(self.next) {
            self.next += 1;
            if self.intake.admit(&d, admission) {
                self.intake.log(d, sink, now);
            }
        }
        let mut left = if read_socket {
            self.granted / MIN_TRUESIZE + BATCH
        } else {
            0
        };
        while left > 0 {
            let n = match self.batch.receive(self.socket.as_fd(), left) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            for d in (0..n).filter_map(|i| self.batch.get(i)) {
                if self.intake.admit(&d, admission) {
                    self.intake.log(d, sink, now);
                }
            }
            self.next = n;
            left = left.saturating_sub(n);
        }
    }

    /// The `dropped` entries due (at most once per [`REPORT_INTERVAL`]); `all` at the stop:
    /// whatever is left.
    pub fn report(&mut self, sink: &mut Sink, now: Instant, all: bool) {
        if !all && now < self.next_report {
            return;
        }
        self.next_report = now + REPORT_INTERVAL;
        let buf = &mut self.intake.message;
        let u = std::mem::take(&mut self.intake.unreported);
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
        let (rate, burst) = self.intake.limit;
        let reports = self.intake.sources.reports(SOURCES_PER_REPORT);
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

impl Intake {
    /// Counts a datagram read and the kernel's drops it tells of; false (counted) if its
    /// sender is not in the allow list.
    fn admit(&mut self, d: &Datagram<'_>, admission: &Admission) -> bool {
        self.counts.datagrams += 1;
        if let Some(count) = d.kernel_drops {
            let new = self.kernel.seen(count);
            self.counts.kernel_dropped += new;
            self.unreported.kernel_dropped += new;
        }
        let ip = canonical(d.from).ip();
        if !admission.allows(ip) {
            self.counts.not_allowed += 1;
            self.unreported.not_allowed += 1;
            self.unreported.not_allowed_from = Some(ip);
            return false;
        }
        true
    }

    /// Logs the messages of an admitted datagram, or counts those over its source's budget.
    fn log(&mut self, d: Datagram<'_>, sink: &mut Sink, now: Instant) {
        let Intake {
            sources,
            counts,
            unreported,
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
        let addr = canonical(d.from);
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
        let source = sources.get(addr.ip(), now);
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
}
