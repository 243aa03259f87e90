//! Test harness: a real journald in a private namespace, and the real daemon binary.
//!
//! Tests that need root or journald skip outside CI with a printed reason; under `CI=true`
//! they fail instead, so a skipped test is never counted as passed there.

#![allow(dead_code)]

pub mod backlog;
pub mod lines;
pub mod manager;
pub mod outage;
pub mod rsyslog;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

pub const JOURNALD: &str = "/lib/systemd/systemd-journald";
pub const BIN: &str = env!("CARGO_BIN_EXE_tcp-listener");

pub type Fields = Map<String, Value>;

/// Whether tests needing root and journald can run; under CI=true they must.
pub fn journald_available(test: &str) -> bool {
    let is_root = unsafe { libc::geteuid() } == 0;
    let reason = if !is_root {
        Some("needs root to start a journald namespace")
    } else if !Path::new(JOURNALD).exists() {
        Some("needs systemd-journald")
    } else {
        None
    };
    match reason {
        None => true,
        Some(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{test}: {why}, and under CI=true this test must run")
        }
        Some(why) => {
            eprintln!("SKIPPED {test}: {why}");
            false
        }
    }
}

/// Returns from the test (after printing why) when [`journald_available`] says it cannot run.
#[allow(unused_macros)]
macro_rules! need_journald {
    ($name:expr) => {
        if !journald_available($name) {
            return;
        }
    };
}

/// Whether `tools` are installed; outside CI a missing one skips the test (with a printed
/// reason), under CI=true it fails it (`.ci/run` installs them).
pub fn tools_available(test: &str, tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| {
            !["/usr/bin", "/usr/sbin", "/bin", "/sbin"]
                .iter()
                .any(|d| Path::new(d).join(t).exists())
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: needs {missing:?}, and under CI=true this test must run");
    }
    eprintln!("SKIPPED {test}: needs {missing:?}");
    false
}

/// Skips (outside CI) or fails (under CI=true) a test whose journald or tools are missing.
#[allow(unused_macros)]
macro_rules! need_tools {
    ($name:expr, $tools:expr) => {
        if !journald_available($name) || !tools_available($name, $tools) {
            return;
        }
    };
}

/// Sends all of `data` to the daemon.
pub fn send(stream: &mut TcpStream, data: &[u8]) {
    stream.write_all(data).expect("send to the daemon");
}

/// Takes `sample` until `done` accepts it or `timeout` passes, and returns the last sample
/// either way: for a test that prints what it saw before it asserts.
pub fn poll<T>(timeout: Duration, mut sample: impl FnMut() -> T, done: impl Fn(&T) -> bool) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        let v = sample();
        if done(&v) || Instant::now() >= deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `check` until it returns Some or `timeout` passes.
pub fn wait_until<T>(timeout: Duration, what: &str, check: impl FnMut() -> Option<T>) -> T {
    poll(timeout, check, Option::is_some)
        .unwrap_or_else(|| panic!("timed out after {timeout:?} waiting for {what}"))
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A unique name for this test process and call.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A private systemd-journald namespace, stopped and removed on drop.
pub struct Journal {
    pub name: String,
    child: Option<Child>,
    keepalive: Option<UnixStream>,
}

impl Journal {
    pub fn start() -> Journal {
        let mut j = Journal::unstarted();
        j.spawn();
        j
    }

    /// A namespace with its configuration written and no journald yet: its socket does not
    /// exist until [`Journal::start_again`].
    pub fn unstarted() -> Journal {
        let name = unique("tcpl");
        std::fs::write(
            format!("/etc/systemd/journald@{name}.conf"),
            // No wall messages: a test that logs at emerg must not write to every terminal
            // of the machine running the tests (journald's ForwardToWall= is yes by default).
            "[Journal]\nStorage=volatile\nRateLimitIntervalSec=0\nRateLimitBurst=0\n\
             ForwardToWall=no\n",
        )
        .expect("write journald namespace config");
        Journal {
            name,
            child: None,
            keepalive: None,
        }
    }

    pub fn dir(&self) -> PathBuf {
        PathBuf::from(format!("/run/systemd/journal.{}", self.name))
    }

    pub fn socket(&self) -> PathBuf {
        self.dir().join("socket")
    }

    fn spawn(&mut self) {
        let _ = std::fs::remove_file(self.socket());
        let child = Command::new(JOURNALD)
            .arg(&self.name)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start systemd-journald");
        self.child = Some(child);
        let stdout = self.dir().join("stdout");
        // A namespace journald exits when idle for 30 s; a connected stream keeps it up.
        let stream = wait_until(Duration::from_secs(10), "journald sockets", || {
            if !self.socket().exists() {
                return None;
            }
            let mut s = UnixStream::connect(&stdout).ok()?;
            s.write_all(b"tcpl-test-keepalive\n\n6\n0\n0\n0\n0\n")
                .ok()?;
            Some(s)
        });
        self.keepalive = Some(stream);
    }

    /// Stops journald (SIGTERM) and waits for it to exit.
    pub fn stop(&mut self) {
        self.keepalive = None;
        if let Some(mut child) = self.child.take() {
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
        }
    }

    /// Kills journald (SIGKILL): what sits unread in its socket queue is lost.
    pub fn kill(&mut self) {
        self.keepalive = None;
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes journald (SIGSTOP): a sink that takes nothing.
    pub fn pause(&self) {
        if let Some(child) = &self.child {
            unsafe { libc::kill(child.id() as i32, libc::SIGSTOP) };
        }
    }

    pub fn resume(&self) {
        if let Some(child) = &self.child {
            unsafe { libc::kill(child.id() as i32, libc::SIGCONT) };
        }
    }

    /// Starts journald again after [`Journal::kill`] or [`Journal::stop`].
    pub fn start_again(&mut self) {
        self.spawn();
    }

    /// Starts journald again in the same namespace.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Every entry in the namespace, as JSON objects.
    pub fn entries(&self) -> Vec<Fields> {
        self.matching(&[])
    }

    /// The entries matching journalctl field matches such as `LISTENER_EVENT=notice`
    /// (journald's index answers these without reading every entry).
    pub fn matching(&self, matches: &[&str]) -> Vec<Fields> {
        self.json(&["--all"], matches)
    }

    /// Like [`Journal::matching`], as `journalctl -o json` prints them without `--all`: a
    /// field of 4096 bytes or more (its name and `=` included) is `null` there.
    pub fn matching_without_all(&self, matches: &[&str]) -> Vec<Fields> {
        self.json(&[], matches)
    }

    /// `journalctl --namespace=NAME -o json` with further `options` (such as `-p crit`).
    pub fn json(&self, options: &[&str], matches: &[&str]) -> Vec<Fields> {
        let out = Command::new("journalctl")
            .args([
                &format!("--namespace={}", self.name),
                "-o",
                "json",
                "--no-pager",
            ])
            .args(options)
            .args(matches)
            .output()
            .expect("run journalctl");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| match v {
                Value::Object(m) => Some(m),
                _ => None,
            })
            .collect()
    }

    /// Like [`Journal::matching`], with only the given fields of each entry (cheap when the
    /// entries are large).
    pub fn matching_fields(&self, matches: &[&str], fields: &[&str]) -> Vec<Fields> {
        let fields = format!("--output-fields={}", fields.join(","));
        let mut args = vec![fields.as_str()];
        args.extend_from_slice(matches);
        self.matching(&args)
    }

    /// The entries tcp-listener wrote: every one has LISTENER_EVENT (SYSLOG_IDENTIFIER is a
    /// remote program's for syslog messages).
    pub fn ours(&self) -> Vec<Fields> {
        self.entries()
            .into_iter()
            .filter(|e| e.contains_key("LISTENER_EVENT"))
            .collect()
    }

    /// Waits until `check` holds for our entries, and returns them.
    pub fn wait_for(&self, what: &str, check: impl Fn(&[Fields]) -> bool) -> Vec<Fields> {
        wait_until(Duration::from_secs(15), what, || {
            let e = self.ours();
            check(&e).then_some(e)
        })
    }

    /// The default `journalctl` view (`-o short`) of the namespace.
    pub fn short_view(&self) -> String {
        let out = Command::new("journalctl")
            .args([&format!("--namespace={}", self.name), "--no-pager", "--all"])
            .output()
            .expect("run journalctl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_file(format!("/etc/systemd/journald@{}.conf", self.name));
        let _ = std::fs::remove_dir_all(format!("/etc/systemd/journald@{}.conf.d", self.name));
        if let Ok(id) = std::fs::read_to_string("/etc/machine-id") {
            let _ =
                std::fs::remove_dir_all(format!("/run/log/journal/{}.{}", id.trim(), self.name));
            let _ =
                std::fs::remove_dir_all(format!("/var/log/journal/{}.{}", id.trim(), self.name));
        }
    }
}

/// A field of an entry as text ("" when absent).
pub fn text(e: &Fields, key: &str) -> String {
    match e.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(bytes)) => {
            let v: Vec<u8> = bytes
                .iter()
                .filter_map(|b| b.as_u64())
                .map(|b| b as u8)
                .collect();
            String::from_utf8_lossy(&v).into_owned()
        }
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// Line entries once each: an entry sent again after a journald crash (`REDELIVERED=1`) of a
/// piece already present is left out (a piece is its connection, LINE_NUMBER and LINE_PART).
/// Panics on an unmarked duplicate. The partial end of a line logged at a stop that handed
/// its connection to the next process (`LINE_CARRIED=1`) is superseded by the rest of the line
/// that process logs under the same number.
pub fn unique_lines(entries: &[Fields]) -> Vec<Fields> {
    use std::collections::{HashMap, HashSet};
    let mut seen: HashMap<(String, String, String), usize> = HashMap::new();
    let mut out: Vec<Option<Fields>> = Vec::new();
    // Per line (connection, number): its carried entries, and the lines whose carried
    // entries were superseded already.
    let mut carried_of: HashMap<(String, String), Vec<usize>> = HashMap::new();
    let mut superseded: HashSet<(String, String)> = HashSet::new();
    for e in entries
        .iter()
        .filter(|e| text(e, "LISTENER_EVENT") == "line")
    {
        let line = (text(e, "CONNECTION_ID"), text(e, "LINE_NUMBER"));
        let key = (line.0.clone(), line.1.clone(), text(e, "LINE_PART"));
        let carried = text(e, "LINE_CARRIED") == "1";
        if carried && superseded.contains(&line) {
            continue;
        }
        let new_piece = match seen.get(&key) {
            None => true,
            Some(&i) => out[i]
                .as_ref()
                .is_some_and(|o| text(o, "LINE_CARRIED") == "1" && !carried),
        };
        if !new_piece {
            assert_eq!(text(e, "REDELIVERED"), "1", "an unmarked duplicate: {e:?}");
            continue;
        }
        if !carried {
            if let Some(indices) = carried_of.remove(&line) {
                for i in indices {
                    let o = out[i].take().expect("a carried entry");
                    seen.remove(&(line.0.clone(), line.1.clone(), text(&o, "LINE_PART")));
                }
                superseded.insert(line.clone());
            }
        }
        if carried {
            carried_of.entry(line).or_default().push(out.len());
        }
        seen.insert(key, out.len());
        out.push(Some(e.clone()));
    }
    out.into_iter().flatten().collect()
}

/// The bytes a line entry stands for: its MESSAGE without the `peer: ` prefix and the
/// `[continued]`/`[partial]` marks, unescaped.
pub fn entry_bytes(e: &Fields) -> Vec<u8> {
    let message = text(e, "MESSAGE");
    let (_, mut body) = message
        .split_once(": ")
        .unwrap_or_else(|| panic!("no peer in {message:?}"));
    if text(e, "LINE_CONTINUED") == "1" {
        body = body.strip_suffix(" [continued]").expect("[continued] mark");
    }
    if text(e, "LINE_PARTIAL") == "1" {
        body = body.strip_suffix(" [partial]").expect("[partial] mark");
    }
    tcp_listener::escape::unescape(body)
        .unwrap_or_else(|| panic!("not escape()'s output: {body:?}"))
}

pub fn lines_of(entries: &[Fields]) -> Vec<String> {
    entries
        .iter()
        .filter(|e| text(e, "LISTENER_EVENT") == "line")
        .map(|e| text(e, "MESSAGE"))
        .collect()
}

/// The running daemon, with its stderr collected; killed on drop.
pub struct Daemon {
    child: Child,
    pub addr: SocketAddr,
    /// The port put in place of [`PORT`].
    pub port: u16,
    pub config_path: PathBuf,
    stderr: Arc<Mutex<Vec<String>>>,
    /// The daemon's stderr reached its end (every line of it is in `stderr`).
    stderr_closed: Arc<AtomicBool>,
    _dir: TempDir,
}

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let p = std::env::temp_dir().join(unique("tcpl-test-"));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Stands for the daemon's port in a test config: [`Daemon::start`] puts a free port there
/// (`port = 0` is not a valid configuration), and [`Daemon::reload_with`] the same port again.
pub const PORT: &str = "@PORT@";

/// A free port on loopback, as the kernel picks one.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// [`test_config`] with the client entries in the journal namespace of `clients`
/// (`[log] namespace`), the daemon's own in `main`.
pub fn namespace_config(main: &Journal, clients: &Journal, extra: &str) -> String {
    let mut c = test_config(Some(main), extra);
    c.push_str(&format!("namespace = \"{}\"\n", clients.name));
    c
}

/// A config for tests: loopback, a free port, and the journal namespace if given.
pub fn test_config(journal: Option<&Journal>, extra: &str) -> String {
    let mut c = format!("bind = \"127.0.0.1\"\nport = {PORT}\n");
    c.push_str(extra);
    c.push_str("\n[log]\n");
    match journal {
        Some(j) => c.push_str(&format!(
            "target = \"journald\"\njournal_socket = \"{}\"\n",
            j.socket().display()
        )),
        None => c.push_str("target = \"stderr\"\n"),
    }
    c
}

impl Daemon {
    /// Starts the daemon with `config` and waits until it listens.
    pub fn start(config: &str) -> Daemon {
        Daemon::start_with_env(config, &[])
    }

    pub fn start_with_env(config: &str, env: &[(&str, &str)]) -> Daemon {
        // A free port can be taken by someone else before the daemon binds it: try another.
        for _ in 0..5 {
            let port = free_port();
            let mut d = Daemon::spawn(
                &config.replace(PORT, &port.to_string()),
                env,
                port,
                Vec::new(),
            );
            match d.wait_stderr_addr(0) {
                Ok(addr) => {
                    d.addr = addr;
                    return d;
                }
                Err(lines) if lines.iter().any(|l| l.contains("Address already in use")) => {
                    continue
                }
                Err(lines) => panic!("daemon exited: {lines:?}"),
            }
        }
        panic!("no free port in 5 tries");
    }

    /// Starts the daemon as systemd does with descriptors to pass (socket activation, the
    /// file descriptor store): `fds` become 3, 4, … with `LISTEN_FDS`, `LISTEN_FDNAMES` and
    /// `LISTEN_PID` (the daemon's own pid: a shell sets it and execs the daemon). `config`
    /// has its port already (the listening socket may be among the descriptors).
    pub fn start_passing(
        config: &str,
        env: &[(&str, &str)],
        fds: Vec<(String, std::os::fd::OwnedFd)>,
    ) -> Daemon {
        let names: Vec<&str> = fds.iter().map(|(n, _)| n.as_str()).collect();
        let count = fds.len().to_string();
        let names = names.join(":");
        let mut env: Vec<(&str, &str)> = env.to_vec();
        env.push(("LISTEN_FDS", &count));
        env.push(("LISTEN_FDNAMES", &names));
        let fds: Vec<std::os::fd::OwnedFd> = fds.into_iter().map(|(_, fd)| fd).collect();
        let mut d = Daemon::spawn(config, &env, 0, fds);
        d.addr = d
            .wait_stderr_addr(0)
            .unwrap_or_else(|lines| panic!("daemon exited: {lines:?}"));
        d.port = d.addr.port();
        d
    }

    fn spawn(
        config: &str,
        env: &[(&str, &str)],
        port: u16,
        passed: Vec<std::os::fd::OwnedFd>,
    ) -> Daemon {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let dir = TempDir::new();
        let config_path = dir.0.join("config.toml");
        std::fs::write(&config_path, config).unwrap();
        let mut cmd = if passed.is_empty() {
            Command::new(BIN)
        } else {
            // LISTEN_PID must be the daemon's pid: the shell's, which exec keeps.
            let mut sh = Command::new("sh");
            sh.args(["-c", "LISTEN_PID=$$ exec \"$0\" \"$@\"", BIN]);
            let raw: Vec<i32> = passed.iter().map(|fd| fd.as_raw_fd()).collect();
            // SAFETY: only dup2 and close, which are async-signal-safe, between fork and exec.
            unsafe {
                sh.pre_exec(move || {
                    // Out of the way first, then to 3, 4, …: no source is overwritten.
                    for (i, fd) in raw.iter().enumerate() {
                        if libc::dup2(*fd, 1000 + i as i32) < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                    }
                    for i in 0..raw.len() as i32 {
                        if libc::dup2(1000 + i, 3 + i) < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        libc::close(1000 + i);
                    }
                    Ok(())
                });
            }
            sh
        };
        cmd.arg("--config")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .env_remove("JOURNAL_STREAM")
            .env_remove("NOTIFY_SOCKET");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start tcp-listener");
        drop(passed);
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let pipe = child.stderr.take().unwrap();
        let collected = Arc::clone(&stderr);
        let stderr_closed = Arc::new(AtomicBool::new(false));
        let closed = Arc::clone(&stderr_closed);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                collected.lock().unwrap().push(line);
            }
            closed.store(true, Ordering::SeqCst);
        });
        Daemon {
            child,
            addr: "0.0.0.0:0".parse().unwrap(),
            port,
            config_path,
            stderr,
            stderr_closed,
            _dir: dir,
        }
    }

    /// Waits for a "listening on ADDR" line after `skip` lines of stderr; if the daemon
    /// exits first, its stderr.
    fn wait_stderr_addr(&mut self, skip: usize) -> Result<SocketAddr, Vec<String>> {
        let stderr = Arc::clone(&self.stderr);
        let closed = Arc::clone(&self.stderr_closed);
        wait_until(Duration::from_secs(10), "the daemon to listen", || {
            let lines = stderr.lock().unwrap();
            let addr = lines.iter().skip(skip).find_map(|l| {
                let rest = l.split("listening on ").nth(1)?;
                let addr = rest.split([',', ' ']).next()?;
                addr.parse().ok()
            });
            match addr {
                Some(addr) => Some(Ok(addr)),
                // The daemon exited (or closed stderr) without listening.
                None if closed.load(Ordering::SeqCst) => Some(Err(lines.clone())),
                None => None,
            }
        })
    }

    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until a stderr line contains `needle`.
    pub fn wait_stderr(&self, needle: &str) -> String {
        wait_until(Duration::from_secs(10), needle, || {
            self.stderr
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(needle))
                .cloned()
        })
    }

    /// Waits until `n` stderr lines contain `needle` (the n-th reload, say).
    pub fn wait_stderr_count(&self, needle: &str, n: usize) {
        wait_until(Duration::from_secs(10), needle, || {
            let lines = self.stderr.lock().unwrap();
            (lines.iter().filter(|l| l.contains(needle)).count() >= n).then_some(())
        })
    }

    pub fn connect(&self) -> TcpStream {
        TcpStream::connect(self.addr).expect("connect to the daemon")
    }

    pub fn signal(&self, sig: i32) {
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A value from /proc/PID/status in kB, such as `VmRSS` or `VmHWM`.
    pub fn status_kb(&self, key: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {key} in /proc/PID/status"))
    }

    /// Rewrites the config file (with the daemon's port for [`PORT`]) and sends SIGHUP.
    pub fn reload_with(&self, config: &str) {
        let config = config.replace(PORT, &self.port.to_string());
        std::fs::write(&self.config_path, config).unwrap();
        self.signal(libc::SIGHUP);
    }

    /// Waits for the process to exit, at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let child = &mut self.child;
        wait_until(timeout, "the daemon to exit", || child.try_wait().unwrap())
    }

    /// The address the daemon announced after a reload moved it.
    pub fn wait_new_address(&mut self, old: SocketAddr) -> SocketAddr {
        let stderr = Arc::clone(&self.stderr);
        wait_until(Duration::from_secs(10), "the daemon to rebind", || {
            stderr.lock().unwrap().iter().rev().find_map(|l| {
                let rest = l.split("listening on ").nth(1)?;
                let addr: SocketAddr = rest.split([',', ' ']).next()?.parse().ok()?;
                (addr != old).then_some(addr)
            })
        })
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Connects to `addr` from the local address `source` (any of 127.0.0.0/8 on loopback), so
/// that a test has clients from several source addresses.
pub fn connect_from(addr: SocketAddr, source: &str) -> TcpStream {
    let source: std::net::IpAddr = source.parse().expect("a source address");
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )
    .expect("a socket");
    socket
        .bind(&SocketAddr::new(source, 0).into())
        .expect("bind the source address");
    socket.connect(&addr.into()).expect("connect to the daemon");
    socket.into()
}

/// Bytes of a TCP socket's send queue its peer has not acknowledged yet (SIOCOUTQ): more than
/// 0 for long means the daemon is not reading.
pub fn unacked(s: &TcpStream) -> usize {
    use std::os::fd::AsRawFd;
    let mut n: libc::c_int = 0;
    let rc = unsafe { libc::ioctl(s.as_raw_fd(), libc::TIOCOUTQ, &mut n) };
    assert_eq!(rc, 0);
    n as usize
}

/// Reads until the daemon closes the connection; false if it is still open after `timeout`.
pub fn closed_by_server(stream: &mut TcpStream, timeout: Duration) -> bool {
    stream.set_read_timeout(Some(timeout)).unwrap();
    let mut buf = [0; 64];
    match stream.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}
