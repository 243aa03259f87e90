//! The load generator: a burst of numbered lines, idle connections, connect–send–close churn,
//! and the journald limit probe.

use std::io::Write;
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::util::{self, push_line, push_syslog_frame, realtime_us, syslog_header};

/// What the burst clients send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// Numbered lines of [`util::LINE_LEN`] bytes.
    Lines,
    /// The same lines as the MSG of octet-counted RFC 5424 syslog messages.
    Syslog,
}

pub struct BurstResult {
    /// When the first client started connecting, µs since the epoch.
    pub start_us: u64,
    pub send_secs: f64,
    pub errors: u64,
}

/// `clients` connections at once, each sending `lines` numbered lines (or syslog messages) as
/// fast as TCP takes them, then closing.
pub fn burst(port: u16, clients: u32, lines: u32, tag: u32, payload: Payload) -> BurstResult {
    let start_us = realtime_us();
    let t0 = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            std::thread::spawn(move || {
                let mut data = Vec::with_capacity(lines as usize * util::LINE_LEN);
                let (header, ..) = syslog_header(c);
                for n in 1..=lines {
                    match payload {
                        Payload::Lines => push_line(&mut data, tag, c, n),
                        Payload::Syslog => push_syslog_frame(&mut data, &header, tag, c, n),
                    }
                }
                let mut stream = util::connect_from(port, c as usize)?;
                stream.write_all(&data)?;
                stream.flush()?;
                Ok::<(), std::io::Error>(())
            })
        })
        .collect();
    let mut errors = 0;
    for h in handles {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                eprintln!("tlbench: burst client: {e}");
                errors += 1;
            }
            Err(_) => errors += 1,
        }
    }
    BurstResult {
        start_us,
        send_secs: t0.elapsed().as_secs_f64(),
        errors,
    }
}

/// Opens `count` connections and holds them; returns them (dropping closes them all).
pub fn idle(port: u16, count: usize) -> (Vec<TcpStream>, u64) {
    let mut held = Vec::with_capacity(count);
    let mut errors = 0;
    for n in 0..count {
        match util::connect_from(port, n) {
            Ok(s) => held.push(s),
            Err(e) => {
                errors += 1;
                if errors <= 3 {
                    eprintln!("tlbench: idle connection {n}: {e}");
                }
            }
        }
    }
    (held, errors)
}

pub struct ChurnResult {
    pub start_us: u64,
    /// Connections that connected and sent their line: (client thread, lines sent).
    pub sent: Vec<u32>,
    pub errors: u64,
    pub secs: f64,
}

/// `threads` clients, each connecting, sending one numbered line and closing, over and over,
/// for `duration`.
pub fn churn(port: u16, threads: u32, duration: Duration, tag: u32) -> ChurnResult {
    let stop = Arc::new(AtomicBool::new(false));
    let start_us = realtime_us();
    let t0 = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|c| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut sent = 0u32;
                let mut errors = 0u64;
                let mut line = Vec::with_capacity(util::LINE_LEN);
                let mut n = c as usize;
                while !stop.load(Ordering::Relaxed) {
                    line.clear();
                    push_line(&mut line, tag, c, sent + 1);
                    n += threads as usize;
                    match util::connect_from(port, n).and_then(|mut s| s.write_all(&line)) {
                        Ok(()) => sent += 1,
                        Err(_) => {
                            errors += 1;
                            std::thread::sleep(Duration::from_millis(1));
                        }
                    }
                }
                (sent, errors)
            })
        })
        .collect();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    let mut result = ChurnResult {
        start_us,
        sent: Vec::new(),
        errors: 0,
        secs: 0.0,
    };
    for h in handles {
        let (sent, errors) = h.join().unwrap_or((0, 0));
        result.sent.push(sent);
        result.errors += errors;
    }
    result.secs = t0.elapsed().as_secs_f64();
    result
}

pub struct ProbeResult {
    pub start_us: u64,
    pub entries: u64,
    /// The sender thread's own CPU time (getrusage RUSAGE_THREAD), µs.
    pub cpu_us: u64,
    pub secs: f64,
}

fn field(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

fn decimal(buf: &mut [u8; 10], mut v: u32) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return &buf[i..];
        }
    }
}

fn rusage_us() -> u64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    us(ru.ru_utime) + us(ru.ru_stime)
}

/// The journald limit probe: the burst's lines as the entries tcp-listener would write
/// (same fields, same sizes; for [`Payload::Syslog`] those of a syslog message, its SYSLOG_*
/// fields included), sent straight to the journal socket by one thread with blocking sends:
/// the ceiling no TCP logger in front of this journald can pass. Each entry is assembled from
/// pre-built pieces without allocating, so the probe's CPU per entry is as close to the bare
/// send as it gets.
pub fn probe(socket: &Path, clients: u32, lines: u32, tag: u32, payload: Payload) -> ProbeResult {
    let sock = UnixDatagram::unbound().expect("unix datagram socket");
    sock.connect(socket).expect("connect to the journal socket");
    // Per client: `MESSAGE=<peer>: ` and the fields after MESSAGE up to LINE_NUMBER=, then
    // the fields after LINE_NUMBER's value (the SYSLOG_* ones of a syslog message).
    let pieces: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> = (0..clients)
        .map(|c| {
            let (ip, port) = (format!("127.0.0.{}", 2 + c), 40000 + c);
            let (_, host, app, pid, sd) = syslog_header(c);
            let head = match payload {
                Payload::Lines => format!("MESSAGE={ip}:{port}: "),
                Payload::Syslog => format!("MESSAGE={ip}:{port} {host}: "),
            }
            .into_bytes();
            let mut tail = Vec::new();
            let mut after = Vec::new();
            match payload {
                Payload::Lines => {
                    field(&mut tail, "PRIORITY", b"6");
                    field(&mut tail, "SYSLOG_IDENTIFIER", b"tcp-listener");
                    field(&mut tail, "SYSLOG_FACILITY", b"3");
                }
                Payload::Syslog => {
                    field(&mut tail, "PRIORITY", b"5");
                    field(&mut tail, "SYSLOG_IDENTIFIER", app.as_bytes());
                    field(&mut tail, "SYSLOG_FACILITY", b"20");
                    field(&mut after, "SYSLOG_PID", pid.as_bytes());
                    field(&mut after, "SYSLOG_HOSTNAME", host.as_bytes());
                    field(
                        &mut after,
                        "SYSLOG_TIMESTAMP",
                        util::SYSLOG_TIMESTAMP.as_bytes(),
                    );
                    field(&mut after, "SYSLOG_MSGID", b"ID47");
                    field(&mut after, "SYSLOG_STRUCTURED_DATA", sd.as_bytes());
                }
            }
            field(&mut tail, "LISTENER_EVENT", b"line");
            field(&mut tail, "REMOTE_ADDR", ip.as_bytes());
            field(&mut tail, "REMOTE_PORT", port.to_string().as_bytes());
            field(&mut tail, "CONNECTION_ID", (c + 1).to_string().as_bytes());
            tail.extend_from_slice(b"LINE_NUMBER=");
            (head, tail, after)
        })
        .collect();
    let mut entry = Vec::with_capacity(512);
    let mut line = Vec::with_capacity(util::LINE_LEN);
    let cpu0 = rusage_us();
    let start_us = realtime_us();
    let t0 = Instant::now();
    let mut entries = 0;
    let mut digits = [0u8; 10];
    for n in 1..=lines {
        for c in 0..clients {
            line.clear();
            push_line(&mut line, tag, c, n);
            let (head, tail, after) = &pieces[c as usize];
            entry.clear();
            entry.extend_from_slice(head);
            entry.extend_from_slice(&line);
            entry.extend_from_slice(tail);
            entry.extend_from_slice(decimal(&mut digits, n));
            entry.push(b'\n');
            entry.extend_from_slice(after);
            loop {
                match sock.send(&entry) {
                    Ok(_) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                        std::thread::sleep(Duration::from_micros(100))
                    }
                    Err(e) => panic!("probe: send to the journal: {e}"),
                }
            }
            entries += 1;
        }
    }
    ProbeResult {
        start_us,
        entries,
        cpu_us: rusage_us() - cpu0,
        secs: t0.elapsed().as_secs_f64(),
    }
}

pub struct UdpSendResult {
    /// When the last datagram was sent, µs since the epoch.
    pub end_us: u64,
    /// Datagrams handed to the kernel.
    pub sent: u64,
    pub secs: f64,
    /// Sends that failed (ECONNREFUSED and the like), not counted as sent.
    pub errors: u64,
}

/// Sends RFC 5424 syslog messages, one per datagram (RFC 5426), to 127.0.0.1:`port` at
/// `rate` datagrams/s for `secs`, from `sources` sockets on 127.0.0.2… in turn (source `c`
/// sends `app<c>`'s messages, numbered from 1): the same messages as the syslog burst's,
/// without octet counts. One thread, one send(2) per datagram, paced against the clock.
pub fn udp(port: u16, rate: u64, secs: f64, tag: u32, sources: u32) -> UdpSendResult {
    let socks: Vec<std::net::UdpSocket> = (0..sources)
        .map(|c| {
            let s = std::net::UdpSocket::bind((
                std::net::Ipv4Addr::new(127, 0, 0, 2 + (c % 250) as u8),
                0,
            ))
            .expect("bind a UDP sender");
            s.connect(("127.0.0.1", port))
                .expect("connect a UDP sender");
            s
        })
        .collect();
    let headers: Vec<String> = (0..sources).map(|c| syslog_header(c).0).collect();
    let mut seqs = vec![0u32; sources as usize];
    let total = (rate as f64 * secs) as u64;
    let mut datagram = Vec::with_capacity(256);
    let mut errors = 0;
    let mut sent = 0u64;
    let t0 = Instant::now();
    let mut attempt = 0u64;
    while attempt < total {
        // Due by now at `rate`; ahead of the clock, wait a little.
        let due = ((t0.elapsed().as_secs_f64() * rate as f64) as u64).min(total);
        if attempt >= due {
            std::thread::sleep(Duration::from_micros(100));
            continue;
        }
        while attempt < due {
            let c = (attempt % u64::from(sources)) as usize;
            seqs[c] += 1;
            datagram.clear();
            datagram.extend_from_slice(headers[c].as_bytes());
            push_line(&mut datagram, tag, c as u32, seqs[c]);
            datagram.pop(); // the LF: one datagram is one message
            attempt += 1;
            match socks[c].send(&datagram) {
                Ok(_) => sent += 1,
                Err(_) => errors += 1,
            }
        }
    }
    UdpSendResult {
        end_us: realtime_us(),
        sent,
        secs: t0.elapsed().as_secs_f64(),
        errors,
    }
}

/// Sends one datagram that is no test line to 127.0.0.1:`port`: read after every drop
/// before it, it tells tcp-listener the kernel's drop count (SO_RXQ_OVFL).
pub fn udp_marker(port: u16) {
    if let Ok(s) = std::net::UdpSocket::bind("127.0.0.1:0") {
        let _ = s.send_to(b"<14>tlbench: end of the step", ("127.0.0.1", port));
    }
}
