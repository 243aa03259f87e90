//! `tlbench tls`: TLS beside plain TCP, side by side in one run (issue 14): bursts into
//! journald (throughput ratio, CPU per line), handshakes per second (connect, handshake, one
//! line, close), and RSS per idle TLS connection, with rsyslog's gtls driver beside
//! tcp-listener. Clients use rustls (ring); the certificates come from the openssl command
//! line. Each measurement starts a fresh server and a fresh journald namespace.

use std::fmt::Write as _;
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use crate::journal::{self, Journal};
use crate::servers::journal_bound;
use crate::util::{self, median, push_line, realtime_us};

const PORT: u16 = 18888;
const RSYSLOG_PORT: u16 = 18889;

pub struct TlsOpts {
    pub daemon: PathBuf,
    pub bench_dir: PathBuf,
    pub work: PathBuf,
    pub reps: u32,
    pub clients: u32,
    pub lines: u32,
    pub idle: usize,
    pub churn_secs: u64,
    pub churn_threads: u32,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Srv {
    Plain,
    Tls,
    RsyslogGtls,
}

impl Srv {
    fn name(self) -> &'static str {
        match self {
            Srv::Plain => "tcp-listener, plain",
            Srv::Tls => "tcp-listener, TLS",
            Srv::RsyslogGtls => "rsyslog, gtls",
        }
    }
    fn port(self) -> u16 {
        match self {
            Srv::RsyslogGtls => RSYSLOG_PORT,
            _ => PORT,
        }
    }
    fn tls(self) -> bool {
        self != Srv::Plain
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let st = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run openssl");
    assert!(st.success(), "openssl {args:?}");
}

/// A CA and a server certificate for localhost (EC P-256), in `dir`.
fn make_pki(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut a = vec!["req", "-x509"];
    a.extend(ec);
    a.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "30",
        "-subj",
        "/CN=tlbench CA",
    ]);
    openssl(dir, &a);
    let mut a = vec!["req"];
    a.extend(ec);
    a.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    openssl(dir, &a);
    std::fs::write(dir.join("san.ext"), "subjectAltName=DNS:localhost\n").unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "30",
            "-extfile",
            "san.ext",
        ],
    );
}

fn client_config(pki: &Path) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(pki.join("ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// A connection to `port` from address number `n`, over TLS when `tls` is given, with the
/// handshake done.
enum Conn {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Conn {
    fn open(port: u16, n: usize, tls: Option<&Arc<ClientConfig>>) -> std::io::Result<Conn> {
        let sock = util::connect_from(port, n)?;
        let Some(config) = tls else {
            return Ok(Conn::Plain(sock));
        };
        let name = ServerName::try_from("localhost").unwrap();
        let conn =
            ClientConnection::new(Arc::clone(config), name).map_err(std::io::Error::other)?;
        let mut s = StreamOwned::new(conn, sock);
        while s.conn.is_handshaking() {
            s.conn.complete_io(&mut s.sock)?;
        }
        Ok(Conn::Tls(Box::new(s)))
    }

    fn send(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.write_all(data),
            Conn::Tls(s) => {
                s.write_all(data)?;
                s.flush()
            }
        }
    }

    fn close(self) {
        if let Conn::Tls(mut s) = self {
            s.conn.send_close_notify();
            let _ = s.conn.complete_io(&mut s.sock);
        }
    }
}

struct Running {
    child: Child,
    pids: Vec<i32>,
    port: u16,
}

impl Running {
    fn stop(mut self) {
        for &pid in &self.pids {
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let deadline = Instant::now() + Duration::from_secs(5);
        while util::listening(self.port) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn start(srv: Srv, opts: &TlsOpts, pki: &Path) -> Running {
    let mut cmd = match srv {
        Srv::Plain | Srv::Tls => {
            let mut conf = std::fs::read_to_string(opts.bench_dir.join("tcp-listener.toml"))
                .expect("bench/tcp-listener.toml");
            if srv == Srv::Tls {
                write!(
                    conf,
                    "\n[tls]\ncertificate = \"{0}/server.pem\"\nprivate_key = \"{0}/server.key\"\n\
                     max_handshakes = 1024\n",
                    pki.display()
                )
                .unwrap();
            }
            let path = opts.work.join(format!("tls-bench-{}.toml", srv.tls()));
            std::fs::write(&path, conf).unwrap();
            let mut c = Command::new(&opts.daemon);
            c.arg("--config").arg(path);
            c
        }
        Srv::RsyslogGtls => {
            let state = opts.work.join("rsyslog-gtls-state");
            std::fs::create_dir_all(&state).unwrap();
            let conf = format!(
                r#"# Written by tlbench tls: rsyslog imtcp over TLS (gtls) → omjournal.
global(workDirectory="{state}" net.enableDNS="off"
  DefaultNetstreamDriverCAFile="{pki}/ca.pem"
  DefaultNetstreamDriverCertFile="{pki}/server.pem"
  DefaultNetstreamDriverKeyFile="{pki}/server.key")
module(load="imtcp" MaxSessions="20000" StreamDriver.Name="gtls" StreamDriver.Mode="1"
       StreamDriver.AuthMode="anon")
module(load="omjournal")
template(name="tlbench" type="list") {{
  property(name="rawmsg" outname="MESSAGE")
  property(name="fromhost-ip" outname="REMOTE_ADDR")
  constant(value="6" outname="PRIORITY")
  constant(value="rsyslog" outname="SYSLOG_IDENTIFIER")
}}
input(type="imtcp" address="127.0.0.1" port="{RSYSLOG_PORT}" ruleset="tlbench")
ruleset(name="tlbench") {{
  action(type="omjournal" template="tlbench")
}}
"#,
                state = state.display(),
                pki = pki.display(),
            );
            let path = opts.work.join("rsyslog-gtls.conf");
            std::fs::write(&path, conf).unwrap();
            let pid = opts.work.join("rsyslogd-gtls.pid");
            let _ = std::fs::remove_file(&pid);
            let mut c = journal_bound(&opts.work.display().to_string());
            c.args(["rsyslogd", "-n", "-f"])
                .arg(path)
                .arg("-i")
                .arg(pid);
            c
        }
    };
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the server");
    assert!(
        util::wait_listening(srv.port(), Duration::from_secs(10)),
        "{} did not listen",
        srv.name()
    );
    let mut pids = vec![child.id() as i32];
    if srv == Srv::RsyslogGtls {
        // unshare and sh exec into rsyslogd: the child is rsyslogd itself once it listens.
        let kids = util::children(child.id() as i32);
        if !kids.is_empty() {
            pids = kids;
        }
    }
    util::settle(&pids, Duration::from_millis(300), Duration::from_secs(5));
    Running {
        child,
        pids,
        port: srv.port(),
    }
}

#[derive(Default)]
struct Results {
    /// (figure, server) → one value per repetition.
    values: std::collections::BTreeMap<(usize, &'static str), Vec<f64>>,
}

const FIGURES: [&str; 7] = [
    "burst → journald: lines/s until all are in the journal",
    "burst → journald: lost lines",
    "burst → journald: server CPU µs/line",
    "connect–handshake–send–close: connections/s logged",
    "connect–handshake–send–close: server CPU µs/connection",
    "idle connections: RSS bytes per connection",
    "idle connections: connections held",
];

fn burst(srv: Srv, opts: &TlsOpts, pki: &Path, cfg: &Arc<ClientConfig>, tag: u32, r: &mut Results) {
    let j = Journal::start();
    let server = start(srv, opts, pki);
    let cpu0 = util::cpu_us_sum(&server.pids);
    let start_us = realtime_us();
    let handles: Vec<_> = (0..opts.clients)
        .map(|c| {
            let cfg = Arc::clone(cfg);
            let (lines, port) = (opts.lines, srv.port());
            std::thread::spawn(move || {
                let mut data = Vec::with_capacity(lines as usize * util::LINE_LEN);
                for n in 1..=lines {
                    push_line(&mut data, tag, c, n);
                }
                let mut conn = Conn::open(port, c as usize, srv.tls().then_some(&cfg))?;
                conn.send(&data)?;
                conn.close();
                Ok::<(), std::io::Error>(())
            })
        })
        .collect();
    let errors = handles
        .into_iter()
        .filter(|_| true)
        .map(|h| h.join().map_or(1, |r| u32::from(r.is_err())))
        .sum::<u32>();
    let mut watched = server.pids.clone();
    watched.push(j.pid());
    util::settle(
        &watched,
        Duration::from_millis(700),
        Duration::from_secs(180),
    );
    let cpu = util::cpu_us_sum(&server.pids) - cpu0;
    let expected = u64::from(opts.clients) * u64::from(opts.lines);
    let rb = journal::read_back_all(tag, expected);
    server.stop();
    j.stop();
    let rate = rb.unique as f64 / ((rb.last_us.saturating_sub(start_us)) as f64 / 1e6);
    eprintln!(
        "  tls burst {}: {} of {expected} lines, {rate:.0}/s, {:.2} µs CPU/line, {errors} client errors",
        srv.name(),
        rb.unique,
        cpu as f64 / expected as f64
    );
    r.add(0, srv, rate);
    r.add(1, srv, (expected - rb.unique.min(expected)) as f64);
    r.add(2, srv, cpu as f64 / expected as f64);
}

fn churn(srv: Srv, opts: &TlsOpts, pki: &Path, cfg: &Arc<ClientConfig>, tag: u32, r: &mut Results) {
    let j = Journal::start();
    let server = start(srv, opts, pki);
    let cpu0 = util::cpu_us_sum(&server.pids);
    let stop = Arc::new(AtomicBool::new(false));
    let start_us = realtime_us();
    let handles: Vec<_> = (0..opts.churn_threads)
        .map(|c| {
            let (stop, cfg) = (Arc::clone(&stop), Arc::clone(cfg));
            let (threads, port) = (opts.churn_threads as usize, srv.port());
            std::thread::spawn(move || {
                let (mut sent, mut n, mut line) = (0u32, c as usize, Vec::new());
                while !stop.load(Ordering::Relaxed) {
                    line.clear();
                    push_line(&mut line, tag, c, sent + 1);
                    n += threads;
                    match Conn::open(port, n, srv.tls().then_some(&cfg)).and_then(|mut s| {
                        s.send(&line)?;
                        s.close();
                        Ok(())
                    }) {
                        Ok(()) => sent += 1,
                        Err(_) => std::thread::sleep(Duration::from_millis(1)),
                    }
                }
                sent
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(opts.churn_secs));
    stop.store(true, Ordering::Relaxed);
    let sent: u64 = handles
        .into_iter()
        .map(|h| u64::from(h.join().unwrap_or(0)))
        .sum();
    let mut watched = server.pids.clone();
    watched.push(j.pid());
    util::settle(
        &watched,
        Duration::from_millis(700),
        Duration::from_secs(120),
    );
    let cpu = util::cpu_us_sum(&server.pids) - cpu0;
    let rb = journal::read_back_all(tag, sent);
    server.stop();
    j.stop();
    let secs = ((rb.last_us.saturating_sub(start_us)) as f64 / 1e6).max(opts.churn_secs as f64);
    let rate = rb.unique as f64 / secs;
    eprintln!(
        "  tls churn {}: {} of {sent} connections' lines logged, {rate:.0}/s, {:.1} µs CPU/connection",
        srv.name(),
        rb.unique,
        cpu as f64 / sent.max(1) as f64
    );
    r.add(3, srv, rate);
    r.add(4, srv, cpu as f64 / sent.max(1) as f64);
}

fn idle(srv: Srv, opts: &TlsOpts, pki: &Path, cfg: &Arc<ClientConfig>, r: &mut Results) {
    let j = Journal::start();
    let server = start(srv, opts, pki);
    let pid = *server.pids.last().unwrap();
    let before = util::status_kb(pid, "VmRSS");
    let mut held = Vec::with_capacity(opts.idle);
    for n in 0..opts.idle {
        match Conn::open(srv.port(), n, srv.tls().then_some(cfg)) {
            Ok(c) => held.push(c),
            Err(e) => {
                eprintln!("  idle {}: connection {n}: {e}", srv.name());
                break;
            }
        }
    }
    // Every connection accepted (handshake done), and the server idle again.
    let deadline = Instant::now() + Duration::from_secs(60);
    while util::fd_count(pid) < held.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut watched = server.pids.clone();
    watched.push(j.pid());
    util::settle(
        &watched,
        Duration::from_millis(700),
        Duration::from_secs(60),
    );
    let after = util::status_kb(pid, "VmRSS");
    let per = (after.saturating_sub(before)) as f64 * 1024.0 / held.len().max(1) as f64;
    eprintln!(
        "  idle {}: {} connections, VmRSS {before} → {after} kB, {per:.0} B each",
        srv.name(),
        held.len()
    );
    r.add(5, srv, per);
    r.add(6, srv, held.len() as f64);
    drop(held);
    server.stop();
    j.stop();
}

impl Results {
    fn add(&mut self, fig: usize, srv: Srv, v: f64) {
        self.values.entry((fig, srv.name())).or_default().push(v);
    }
    fn med(&self, fig: usize, srv: Srv) -> Option<f64> {
        self.values.get(&(fig, srv.name())).map(|v| median(v))
    }
}

fn fmt(v: Option<f64>, prec: usize) -> String {
    v.map_or("–".into(), |v| format!("{v:.prec$}"))
}

/// Runs every TLS workload `reps` times, side by side; returns the markdown table.
pub fn run(opts: &TlsOpts) -> String {
    util::raise_nofile();
    std::fs::create_dir_all(&opts.work).unwrap();
    let pki = opts.work.join("tls-pki");
    make_pki(&pki);
    let cfg = client_config(&pki);
    let mut r = Results::default();
    let mut tag = (realtime_us() / 1_000_000).rem_euclid(1000) as u32 * 10 + 5000;
    for rep in 1..=opts.reps {
        eprintln!("tlbench tls: repetition {rep} of {}", opts.reps);
        for srv in [Srv::Plain, Srv::Tls, Srv::RsyslogGtls] {
            tag += 1;
            burst(srv, opts, &pki, &cfg, tag % 10000, &mut r);
        }
        for srv in [Srv::Plain, Srv::Tls] {
            tag += 1;
            churn(srv, opts, &pki, &cfg, tag % 10000, &mut r);
        }
        for srv in [Srv::Plain, Srv::Tls, Srv::RsyslogGtls] {
            idle(srv, opts, &pki, &cfg, &mut r);
        }
    }
    let mut t = String::new();
    let _ = writeln!(
        t,
        "Medians of {} repetitions. burst: {} clients × {} lines of 64 bytes; handshakes: {} \
         client threads for {} s (a new TLS session each: no resumption); idle: {} connections \
         (TLS: handshake done).\n",
        opts.reps, opts.clients, opts.lines, opts.churn_threads, opts.churn_secs, opts.idle
    );
    let _ = writeln!(
        t,
        "| figure | tcp-listener, plain | tcp-listener, TLS | rsyslog, gtls | TLS ÷ plain | TLS ÷ rsyslog gtls |"
    );
    let _ = writeln!(t, "| --- | ---: | ---: | ---: | ---: | ---: |");
    for (i, name) in FIGURES.iter().enumerate() {
        let prec = if i == 2 || i == 4 { 2 } else { 0 };
        let (p, s, g) = (
            r.med(i, Srv::Plain),
            r.med(i, Srv::Tls),
            r.med(i, Srv::RsyslogGtls),
        );
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 && i != 1 && i != 6 => format!("{:.2}×", a / b),
            _ => "–".into(),
        };
        let _ = writeln!(
            t,
            "| {name} | {} | {} | {} | {} | {} |",
            fmt(p, prec),
            fmt(s, prec),
            fmt(g, prec),
            ratio(s, p),
            ratio(s, g)
        );
    }
    let _ = writeln!(t, "\nEvery repetition:\n");
    for ((fig, srv), v) in &r.values {
        let vals: Vec<String> = v.iter().map(|x| format!("{x:.2}")).collect();
        let _ = writeln!(t, "- {} / {srv}: {}", FIGURES[*fig], vals.join(", "));
    }
    t
}
