//! The servers under test, each started fresh for every measurement: tcp-listener, rsyslog
//! (imtcp → omjournal) and `ncat -lk | systemd-cat`; for the UDP workload tcp-listener with
//! `udp = true` and rsyslog imudp → omjournal.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::journal;
use crate::load::Payload;
use crate::util;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    TcpListener,
    Rsyslog,
    Ncat,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::TcpListener => "tcp-listener",
            Kind::Rsyslog => "rsyslog",
            Kind::Ncat => "ncat | systemd-cat",
        }
    }

    pub fn port(self) -> u16 {
        match self {
            Kind::TcpListener => 18888,
            Kind::Rsyslog => 18889,
            Kind::Ncat => 18890,
        }
    }
}

/// Where a server's lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkMode {
    /// The benchmark's journald namespace.
    Journal,
    /// Nowhere: stderr (tcp-listener), omfile (rsyslog) or stdout (ncat) to /dev/null.
    Null,
}

pub struct Setup {
    /// The tcp-listener binary.
    pub daemon: PathBuf,
    /// bench/ (its configuration files).
    pub bench_dir: PathBuf,
    /// Scratch directory: rsyslog's configuration, pid and state files.
    pub work: PathBuf,
}

pub struct Server {
    pub kind: Kind,
    child: Child,
    /// The processes doing the work (their CPU and memory are measured).
    pub pids: Vec<i32>,
}

/// Runs `cmd` in a private mount namespace whose /run/systemd/journal is the benchmark
/// namespace's socket directory: omjournal and systemd-cat only know the default path.
const JOURNAL_BIND: &str = r#"set -e
W=$1; shift
mkdir -p "$W/journal-dir"
mount --bind "/run/systemd/journal.$NS" "$W/journal-dir"
mount -t tmpfs -o size=1m,mode=755 tlbench /run/systemd
mkdir /run/systemd/journal
mount --bind "$W/journal-dir" /run/systemd/journal
exec "$@"
"#;

/// A syslog message parsed (rsyslog's parsers), its fields as tcp-listener writes them: the
/// template of the syslog and UDP workloads' rsyslog.
const SYSLOG_TEMPLATE: &str = r#"template(name="tlbench_syslog" type="list") {
  property(name="msg" outname="MESSAGE")
  property(name="syslogseverity" outname="PRIORITY")
  property(name="syslogfacility" outname="SYSLOG_FACILITY")
  property(name="app-name" outname="SYSLOG_IDENTIFIER")
  property(name="procid" outname="SYSLOG_PID")
  property(name="hostname" outname="SYSLOG_HOSTNAME")
  property(name="timereported" dateFormat="rfc3339" outname="SYSLOG_TIMESTAMP")
  property(name="msgid" outname="SYSLOG_MSGID")
  property(name="structured-data" outname="SYSLOG_STRUCTURED_DATA")
  property(name="fromhost-ip" outname="REMOTE_ADDR")
}"#;

fn rsyslog_conf(setup: &Setup, mode: SinkMode, payload: Payload) -> PathBuf {
    let state = setup.work.join("rsyslog-state");
    std::fs::create_dir_all(&state).expect("rsyslog state directory");
    let action = match (mode, payload) {
        (SinkMode::Journal, Payload::Lines) => r#"action(type="omjournal" template="tlbench")"#,
        (SinkMode::Journal, Payload::Syslog) => {
            r#"action(type="omjournal" template="tlbench_syslog")"#
        }
        (SinkMode::Null, _) => r#"action(type="omfile" file="/dev/null" template="tlbench_file")"#,
    };
    let conf = format!(
        r#"# Written by tlbench: rsyslog as a TCP → journal logger, the peer address as a field.
global(workDirectory="{state}" net.enableDNS="off")
module(load="imtcp" MaxSessions="20000")
module(load="omjournal")
template(name="tlbench" type="list") {{
  property(name="rawmsg" outname="MESSAGE")
  property(name="fromhost-ip" outname="REMOTE_ADDR")
  constant(value="6" outname="PRIORITY")
  constant(value="rsyslog" outname="SYSLOG_IDENTIFIER")
}}
{SYSLOG_TEMPLATE}
template(name="tlbench_file" type="string" string="%fromhost-ip%: %rawmsg%\n")
input(type="imtcp" address="127.0.0.1" port="{port}" ruleset="tlbench")
ruleset(name="tlbench") {{
  {action}
}}
"#,
        state = state.display(),
        port = Kind::Rsyslog.port(),
    );
    let path = setup.work.join("rsyslog.conf");
    std::fs::write(&path, conf).expect("write rsyslog.conf");
    path
}

/// The UDP workload's rsyslog: imudp → its syslog parsers → omjournal, the fields written as
/// tcp-listener names them (the syslog workload's template), the receive buffer asked for as
/// tcp-listener asks for it.
fn rsyslog_udp_conf(setup: &Setup) -> PathBuf {
    let state = setup.work.join("rsyslog-state");
    std::fs::create_dir_all(&state).expect("rsyslog state directory");
    let conf = format!(
        r#"# Written by tlbench: rsyslog as a UDP syslog → journal logger.
global(workDirectory="{state}" net.enableDNS="off")
module(load="imudp")
module(load="omjournal")
{SYSLOG_TEMPLATE}
input(type="imudp" address="127.0.0.1" port="{port}" rcvbufSize="{UDP_RECEIVE_BUFFER}" ruleset="tlbench")
ruleset(name="tlbench") {{
  action(type="omjournal" template="tlbench_syslog")
}}
"#,
        state = state.display(),
        port = Kind::Rsyslog.port(),
    );
    let path = setup.work.join("rsyslog-udp.conf");
    std::fs::write(&path, conf).expect("write rsyslog-udp.conf");
    path
}

/// The receive buffer both UDP servers ask for (SO_RCVBUF; the kernel doubles it): tcp-listener's
/// default `udp_receive_buffer`, written in tcp-listener-udp.toml too.
pub const UDP_RECEIVE_BUFFER: usize = 212_992;

/// Where the UDP workload's tcp-listener writes its stderr (its stop summary).
pub fn udp_stderr(setup: &Setup) -> PathBuf {
    setup.work.join("tcp-listener-udp.stderr")
}

impl Server {
    pub fn start(kind: Kind, mode: SinkMode, payload: Payload, setup: &Setup) -> Server {
        let work = setup.work.display().to_string();
        let mut cmd;
        match (kind, mode) {
            (Kind::TcpListener, _) => {
                let conf = match (mode, payload) {
                    (SinkMode::Journal, Payload::Lines) => "tcp-listener.toml",
                    (SinkMode::Journal, Payload::Syslog) => "tcp-listener-syslog.toml",
                    (SinkMode::Null, _) => "tcp-listener-stderr.toml",
                };
                cmd = Command::new(&setup.daemon);
                cmd.arg("--config").arg(setup.bench_dir.join(conf));
            }
            (Kind::Rsyslog, _) => {
                let conf = rsyslog_conf(setup, mode, payload);
                let pidfile = setup.work.join("rsyslogd.pid");
                let _ = std::fs::remove_file(&pidfile);
                let mut rsyslogd = vec![
                    "rsyslogd".to_string(),
                    "-n".into(),
                    "-f".into(),
                    conf.display().to_string(),
                    "-i".into(),
                    pidfile.display().to_string(),
                ];
                if mode == SinkMode::Journal {
                    cmd = journal_bound(&work);
                    cmd.args(&rsyslogd);
                } else {
                    cmd = Command::new(rsyslogd.remove(0));
                    cmd.args(&rsyslogd);
                }
            }
            (Kind::Ncat, SinkMode::Journal) => {
                cmd = journal_bound(&work);
                cmd.args(["sh", "-c", &ncat_cmd("| systemd-cat -t ncat-bench")]);
            }
            (Kind::Ncat, SinkMode::Null) => {
                cmd = Command::new("sh");
                cmd.args(["-c", &format!("exec {}", ncat_cmd("> /dev/null"))]);
            }
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", kind.name()));
        let mut server = Server {
            kind,
            pids: vec![child.id() as i32],
            child,
        };
        assert!(
            util::wait_listening(kind.port(), Duration::from_secs(10)),
            "{} did not start listening on port {}",
            kind.name(),
            kind.port()
        );
        if kind == Kind::Ncat && mode == SinkMode::Journal {
            // sh runs ncat and systemd-cat: measure those two.
            let deadline = Instant::now() + Duration::from_secs(5);
            let want = 2;
            loop {
                let kids = util::children(server.child.id() as i32);
                if kids.len() >= want || Instant::now() >= deadline {
                    if !kids.is_empty() {
                        server.pids = kids;
                    }
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // Let it finish starting up before anything is measured.
        util::settle(
            &server.pids,
            Duration::from_millis(300),
            Duration::from_secs(5),
        );
        server
    }

    /// A server for the UDP workload, into the benchmark's journal namespace: tcp-listener
    /// with `tcp-listener-udp.toml` (its stderr to [`udp_stderr`]), or rsyslog imudp.
    pub fn start_udp(kind: Kind, setup: &Setup) -> Server {
        let mut cmd;
        let mut stderr = Stdio::null();
        match kind {
            Kind::TcpListener => {
                cmd = Command::new(&setup.daemon);
                cmd.arg("--config")
                    .arg(setup.bench_dir.join("tcp-listener-udp.toml"));
                let file =
                    std::fs::File::create(udp_stderr(setup)).expect("create the stderr file");
                stderr = Stdio::from(file);
            }
            Kind::Rsyslog => {
                let conf = rsyslog_udp_conf(setup);
                let pidfile = setup.work.join("rsyslogd.pid");
                let _ = std::fs::remove_file(&pidfile);
                cmd = journal_bound(&setup.work.display().to_string());
                cmd.args(["rsyslogd", "-n", "-f"])
                    .arg(conf)
                    .arg("-i")
                    .arg(pidfile);
            }
            Kind::Ncat => panic!("the UDP workload has no ncat"),
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", kind.name()));
        let server = Server {
            kind,
            pids: vec![child.id() as i32],
            child,
        };
        assert!(
            util::wait_udp_bound(kind.port(), Duration::from_secs(10)),
            "{} did not bind UDP port {}",
            kind.name(),
            kind.port()
        );
        util::settle(
            &server.pids,
            Duration::from_millis(300),
            Duration::from_secs(5),
        );
        server
    }

    pub fn stop(mut self) {
        // One SIGTERM each: a second one makes tcp-listener exit at once, without its stop
        // (and its summary), and the child is often one of the pids.
        let mut pids = self.pids.clone();
        pids.push(self.child.id() as i32);
        pids.sort_unstable();
        pids.dedup();
        for pid in pids {
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => break,
                _ if Instant::now() >= deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        // Wait for the port to be free for the next start.
        let deadline = Instant::now() + Duration::from_secs(5);
        while (util::listening(self.kind.port()) || util::udp_socket(self.kind.port()).is_some())
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn ncat_cmd(sink: &str) -> String {
    // -n: no DNS (rsyslog runs without it too). -m: ncat's listen mode uses select(2), so
    // at most FD_SETSIZE connections.
    format!(
        "ncat -lkn 127.0.0.1 {} -m 1000 --recv-only {sink}",
        Kind::Ncat.port()
    )
}

pub fn journal_bound(work: &str) -> Command {
    let mut cmd = Command::new("unshare");
    cmd.env("NS", journal::NAMESPACE)
        .args([
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            JOURNAL_BIND,
            "sh",
        ])
        .arg(work);
    cmd
}
