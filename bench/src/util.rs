//! Small helpers: the numbered test lines, /proc readings, client sockets, time.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::os::fd::FromRawFd;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Every test line is this long on the wire, the LF included.
pub const LINE_LEN: usize = 64;

/// Microseconds since the epoch (the clock journald stamps entries with).
pub fn realtime_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_micros() as u64
}

/// Appends line `seq` of client `client` in run `tag`: `T0007C003N00000042 xxxx…x\n`,
/// [`LINE_LEN`] bytes, so a reader can tell exactly which lines arrived.
pub fn push_line(out: &mut Vec<u8>, tag: u32, client: u32, seq: u32) {
    let start = out.len();
    out.push(b'T');
    push_padded(out, tag, 4);
    out.push(b'C');
    push_padded(out, client, 3);
    out.push(b'N');
    push_padded(out, seq, 8);
    out.push(b' ');
    out.resize(start + LINE_LEN - 1, b'x');
    out.push(b'\n');
}

/// The host, program and structured data of client `client`'s syslog messages (RFC 5424):
/// `(header before the line, hostname, app-name, procid, structured data)`. The timestamp is
/// fixed: the benchmark is about throughput, not clocks.
pub fn syslog_header(client: u32) -> (String, &'static str, String, String, String) {
    let (host, app, pid) = (
        SYSLOG_HOST,
        format!("app{client}"),
        format!("{}", 4000 + client),
    );
    let sd = format!("[tlbench@32473 client=\"{client}\"]");
    let header = format!("<165>1 {SYSLOG_TIMESTAMP} {host} {app} {pid} ID47 {sd} ");
    (header, host, app, pid, sd)
}

/// What every benchmark syslog message says about its origin.
pub const SYSLOG_HOST: &str = "bench.example";
pub const SYSLOG_TIMESTAMP: &str = "2026-11-27T16:09:48.908392+00:00";

/// Appends message `seq` of client `client` in run `tag` as an octet-counted RFC 5424 frame
/// (RFC 6587): `LEN <165>1 … T0007C003N00000042 xxxx…x`, the message being `header` (from
/// [`syslog_header`]) and the test line without its LF.
pub fn push_syslog_frame(out: &mut Vec<u8>, header: &str, tag: u32, client: u32, seq: u32) {
    let len = header.len() + LINE_LEN - 1;
    let mut digits = [0u8; 10];
    let mut i = digits.len();
    let mut v = len;
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
    out.push(b' ');
    out.extend_from_slice(header.as_bytes());
    push_line(out, tag, client, seq);
    out.pop(); // the LF: octet counting needs none
}

/// `v` in decimal, zero-padded to `width` digits (the last `width` digits if longer), without
/// allocating: the limit probe builds its lines inside the measured loop.
fn push_padded(out: &mut Vec<u8>, mut v: u32, width: usize) {
    let start = out.len();
    out.resize(start + width, b'0');
    for i in (start..start + width).rev() {
        out[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// Finds a test line of run `tag` in a journal MESSAGE: `(client, seq)`.
pub fn parse_line(message: &str, tag: u32) -> Option<(u32, u32)> {
    let marker = format!("T{tag:04}C");
    let i = message.find(&marker)?;
    let rest = &message[i + marker.len()..];
    let client: u32 = rest.get(..3)?.parse().ok()?;
    let rest = rest.get(3..)?.strip_prefix('N')?;
    let seq: u32 = rest.get(..8)?.parse().ok()?;
    // A whole line only: the padding must be there too (ncat can mix pieces of lines).
    let pad = rest.get(9..)?;
    if pad.len() < LINE_LEN - 20 || !pad.bytes().take(LINE_LEN - 20).all(|b| b == b'x') {
        return None;
    }
    Some((client, seq))
}

fn proc_stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces: fields start after the last ')'.
    let after = &stat[stat.rfind(')')? + 2..];
    Some(after.split_whitespace().map(str::to_string).collect())
}

/// utime + stime of a process (all its threads), in microseconds.
pub fn cpu_us(pid: i32) -> u64 {
    let Some(f) = proc_stat_fields(pid) else {
        return 0;
    };
    // Fields 14 and 15 of /proc/PID/stat; `f` starts at field 3.
    let ticks: u64 = f[11].parse::<u64>().unwrap_or(0) + f[12].parse::<u64>().unwrap_or(0);
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    ticks * 1_000_000 / hz
}

pub fn cpu_us_sum(pids: &[i32]) -> u64 {
    pids.iter().map(|&p| cpu_us(p)).sum()
}

/// A `kB` field of /proc/PID/status (VmRSS, VmHWM, RssAnon, …), in kB.
pub fn status_kb(pid: i32, key: &str) -> u64 {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return 0;
    };
    for line in s.lines() {
        if let Some(rest) = line.strip_prefix(key) {
            if let Some(v) = rest.strip_prefix(':') {
                return v.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
            }
        }
    }
    0
}

pub fn status_kb_sum(pids: &[i32], key: &str) -> u64 {
    pids.iter().map(|&p| status_kb(p, key)).sum()
}

/// Open file descriptors of a process.
pub fn fd_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Direct children of a process.
pub fn children(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// Waits until the processes have used no CPU for `quiet` (they are done with what was sent).
/// Returns false on timeout.
pub fn settle(pids: &[i32], quiet: Duration, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut last = cpu_us_sum(pids);
    let mut since = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(50));
        let now_cpu = cpu_us_sum(pids);
        if now_cpu != last {
            last = now_cpu;
            since = Instant::now();
        } else if since.elapsed() >= quiet {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
    }
}

/// Whether something listens on TCP `port` (from /proc/net/tcp and tcp6).
pub fn listening(port: u16) -> bool {
    let want = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|path| {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .skip(1)
            .any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() > 3 && f[1].ends_with(&want) && f[3] == "0A"
            })
    })
}

/// The UDP socket bound to 127.0.0.1:`port` as /proc/net/udp shows it: `(bytes queued for
/// its reader, datagrams the kernel dropped for it)`, or None when nothing is bound there.
pub fn udp_socket(port: u16) -> Option<(u64, u64)> {
    let want = format!("0100007F:{port:04X}");
    let table = std::fs::read_to_string("/proc/net/udp").ok()?;
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 13 || f[1] != want {
            return None;
        }
        let queued = u64::from_str_radix(f[4].split(':').nth(1)?, 16).ok()?;
        let drops = f.last()?.parse().ok()?;
        Some((queued, drops))
    })
}

/// The receive buffer of the UDP socket on 127.0.0.1:`port`, bytes (`rb` of `ss -uamn`).
pub fn udp_receive_buffer(port: u16) -> Option<u64> {
    let out = std::process::Command::new("ss")
        .args(["-uamnH", &format!("sport = :{port}")])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let at = text.find(",rb")? + 3;
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

pub fn wait_udp_bound(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if udp_socket(port).is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

pub fn wait_listening(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if listening(port) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Connects to 127.0.0.1:`port` from source address 127.0.0.(2 + n % 250), the port chosen
/// at connect time (IP_BIND_ADDRESS_NO_PORT): many connections without running out of
/// ephemeral ports, TIME_WAIT included.
pub fn connect_from(port: u16, n: usize) -> io::Result<TcpStream> {
    let src = Ipv4Addr::new(127, 0, 0, 2 + (n % 250) as u8);
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let stream = TcpStream::from_raw_fd(fd);
        let one: libc::c_int = 1;
        // IP_BIND_ADDRESS_NO_PORT = 24
        libc::setsockopt(
            fd,
            libc::IPPROTO_IP,
            24,
            &one as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        let sa = sockaddr(SocketAddrV4::new(src, 0));
        if libc::bind(
            fd,
            &sa as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        ) < 0
        {
            return Err(io::Error::last_os_error());
        }
        let da = sockaddr(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
        if libc::connect(
            fd,
            &da as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        ) < 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(stream)
    }
}

fn sockaddr(a: SocketAddrV4) -> libc::sockaddr_in {
    let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    sa.sin_family = libc::AF_INET as libc::sa_family_t;
    sa.sin_port = a.port().to_be();
    sa.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
    sa
}

/// Raises RLIMIT_NOFILE to its hard limit.
pub fn raise_nofile() -> u64 {
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        r.rlim_cur = r.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        r.rlim_cur as u64
    }
}

pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syslog_frames_are_counted_exactly() {
        let (header, ..) = syslog_header(3);
        let mut v = Vec::new();
        push_syslog_frame(&mut v, &header, 7, 3, 42);
        let text = String::from_utf8(v).unwrap();
        let (len, msg) = text.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), msg.len());
        assert!(msg.starts_with("<165>1 2026-11-27T16:09:48.908392+00:00 bench.example app3 4003"));
        assert_eq!(parse_line(msg, 7), Some((3, 42)));
    }

    #[test]
    fn lines_round_trip() {
        let mut v = Vec::new();
        push_line(&mut v, 7, 3, 42);
        assert_eq!(v.len(), LINE_LEN);
        let s = String::from_utf8(v).unwrap();
        let msg = format!("127.0.0.1:5000: {}", s.trim_end());
        assert_eq!(parse_line(&msg, 7), Some((3, 42)));
        assert_eq!(parse_line(&msg, 8), None);
        assert_eq!(parse_line(&msg[..40], 7), None);
        assert!(msg.contains("T0007C003N00000042 xxx"));
    }
}
