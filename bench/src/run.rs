//! The whole benchmark: every workload against every server, repeated, medians in one table.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::journal::{self, Journal};
use crate::load::{self, Payload};
use crate::servers::{Kind, Server, Setup, SinkMode};
use crate::util::{self, median};

pub struct Opts {
    pub reps: u32,
    pub clients: u32,
    pub lines: u32,
    pub idle: usize,
    pub churn_secs: u64,
    pub churn_threads: u32,
    pub setup: Setup,
    /// A static (musl) build of the daemon, for its idle RSS.
    pub static_daemon: Option<PathBuf>,
    /// Lines printed under the table as they are (binary sizes, from bench/run).
    pub notes: Vec<String>,
    /// Workloads to run (probe, burst, null, idle, churn, syslog, udp); empty = all.
    pub only: Vec<String>,
    /// Servers to run; empty = all.
    pub servers: Vec<String>,
    /// The UDP workload's ramp, datagrams/s, and the seconds of each step.
    pub udp_rates: Vec<u64>,
    pub udp_secs: f64,
}

impl Opts {
    pub fn wants(&self, workload: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|w| w == workload)
    }
    pub fn kinds(&self, kinds: &[Kind]) -> Vec<Kind> {
        kinds
            .iter()
            .copied()
            .filter(|k| {
                self.servers.is_empty()
                    || self
                        .servers
                        .iter()
                        .any(|s| k.name().starts_with(s.as_str()))
            })
            .collect()
    }
}

const PROBE: &str = "limit probe";

/// Figures per (row, column), one value per repetition.
#[derive(Default)]
struct Figures {
    values: BTreeMap<(usize, &'static str), Vec<f64>>,
}

impl Figures {
    fn add(&mut self, row: usize, col: &'static str, v: f64) {
        self.values.entry((row, col)).or_default().push(v);
    }
    fn median(&self, row: usize, col: &'static str) -> Option<f64> {
        self.values.get(&(row, col)).map(|v| median(v))
    }
    fn all(&self, row: usize, col: &'static str) -> Option<&Vec<f64>> {
        self.values.get(&(row, col))
    }
}

// Rows of the table.
const B_RATE: usize = 0;
const B_LOST: usize = 1;
const B_CPU: usize = 2;
const B_HWM: usize = 3;
const B_ADDR: usize = 4;
const N_CPU: usize = 5;
const I_BEFORE: usize = 6;
const I_AFTER: usize = 7;
const I_PER: usize = 8;
const C_RATE: usize = 9;
const C_LOST: usize = 10;
const C_SENT: usize = 11;
const S_RATE: usize = 12;
const S_LOST: usize = 13;
const S_CPU: usize = 14;
const S_HWM: usize = 15;
const S_FIELDS: usize = 16;

struct Row {
    workload: &'static str,
    figure: &'static str,
    /// Digits after the decimal point.
    prec: usize,
}

const ROWS: [Row; 17] = [
    Row {
        workload: "burst → journald",
        figure: "lines/s until all are in the journal",
        prec: 0,
    },
    Row {
        workload: "burst → journald",
        figure: "lost lines",
        prec: 0,
    },
    Row {
        workload: "burst → journald",
        figure: "server CPU µs/line (probe: µs/entry)",
        prec: 2,
    },
    Row {
        workload: "burst → journald",
        figure: "server peak RSS, kB (VmHWM)",
        prec: 0,
    },
    Row {
        workload: "burst → journald",
        figure: "entries with REMOTE_ADDR, %",
        prec: 0,
    },
    Row {
        workload: "burst → /dev/null",
        figure: "server CPU µs/line",
        prec: 2,
    },
    Row {
        workload: "idle connections",
        figure: "server RSS before, kB",
        prec: 0,
    },
    Row {
        workload: "idle connections",
        figure: "server RSS with them, kB",
        prec: 0,
    },
    Row {
        workload: "idle connections",
        figure: "RSS bytes per connection",
        prec: 0,
    },
    Row {
        workload: "connect–send–close",
        figure: "connections/s logged",
        prec: 0,
    },
    Row {
        workload: "connect–send–close",
        figure: "lost lines",
        prec: 0,
    },
    Row {
        workload: "connect–send–close",
        figure: "connections made by the clients",
        prec: 0,
    },
    Row {
        workload: "syslog burst → journald",
        figure: "messages/s until all are in the journal",
        prec: 0,
    },
    Row {
        workload: "syslog burst → journald",
        figure: "lost messages",
        prec: 0,
    },
    Row {
        workload: "syslog burst → journald",
        figure: "server CPU µs/message (probe: µs/entry)",
        prec: 2,
    },
    Row {
        workload: "syslog burst → journald",
        figure: "server peak RSS, kB (VmHWM)",
        prec: 0,
    },
    Row {
        workload: "syslog burst → journald",
        figure: "entries with the sender's SYSLOG_IDENTIFIER and REMOTE_ADDR, %",
        prec: 0,
    },
];

/// The rows of the burst figures, for lines or for syslog messages.
struct BurstRows {
    rate: usize,
    lost: usize,
    cpu: usize,
    hwm: usize,
    /// Entries that say who sent them: REMOTE_ADDR (and for syslog the sender's program).
    addr: usize,
}

const LINE_ROWS: BurstRows = BurstRows {
    rate: B_RATE,
    lost: B_LOST,
    cpu: B_CPU,
    hwm: B_HWM,
    addr: B_ADDR,
};

const SYSLOG_ROWS: BurstRows = BurstRows {
    rate: S_RATE,
    lost: S_LOST,
    cpu: S_CPU,
    hwm: S_HWM,
    addr: S_FIELDS,
};

fn rows(payload: Payload) -> BurstRows {
    match payload {
        Payload::Lines => LINE_ROWS,
        Payload::Syslog => SYSLOG_ROWS,
    }
}

const COLS: [&str; 4] = ["tcp-listener", "rsyslog", "ncat | systemd-cat", PROBE];

pub fn run(opts: &Opts) -> String {
    let nofile = util::raise_nofile();
    eprintln!("tlbench: RLIMIT_NOFILE {nofile}");
    let mut f = Figures::default();
    let mut tag = (util::realtime_us() / 1_000_000).rem_euclid(1000) as u32 * 10;
    let mut idle_rss = Vec::new();
    let kinds = [Kind::TcpListener, Kind::Rsyslog, Kind::Ncat];
    let tcp_wanted = TCP_WORKLOADS.iter().any(|w| opts.wants(w));
    for rep in (1..=opts.reps).filter(|_| tcp_wanted) {
        eprintln!("tlbench: repetition {rep} of {}", opts.reps);
        tag += 1;
        if opts.wants("probe") {
            probe(opts, &mut f, tag % 10000, Payload::Lines);
        }
        for kind in opts
            .kinds(&kinds)
            .into_iter()
            .filter(|_| opts.wants("burst"))
        {
            tag += 1;
            burst(opts, &mut f, kind, tag % 10000, Payload::Lines);
        }
        // Syslog messages in, parsed: tcp-listener (framing = "syslog") and rsyslog (its
        // RFC 5424 parser), with the probe writing the entries tcp-listener writes.
        if opts.wants("syslog") {
            tag += 1;
            probe(opts, &mut f, tag % 10000, Payload::Syslog);
            for kind in opts.kinds(&[Kind::TcpListener, Kind::Rsyslog]) {
                tag += 1;
                burst(opts, &mut f, kind, tag % 10000, Payload::Syslog);
            }
        }
        for kind in opts
            .kinds(&kinds)
            .into_iter()
            .filter(|_| opts.wants("null"))
        {
            tag += 1;
            burst_null(opts, &mut f, kind, tag % 10000);
        }
        // ncat's listen mode is select(2)-based: it cannot hold 10,000 connections.
        let idle_kinds = [Kind::TcpListener, Kind::Rsyslog];
        for kind in opts
            .kinds(&idle_kinds)
            .into_iter()
            .filter(|_| opts.wants("idle"))
        {
            if let Some(r) = idle(opts, &mut f, kind) {
                idle_rss.push(r);
            }
        }
        for kind in opts
            .kinds(&kinds)
            .into_iter()
            .filter(|_| opts.wants("churn"))
        {
            tag += 1;
            churn(opts, &mut f, kind, tag % 10000);
        }
    }
    // The UDP workload: one ramp, after the repetitions (its steps are its own repetitions).
    let udp = opts.wants("udp").then(|| crate::udp::run(opts, &mut tag));
    let mut out = String::new();
    if tcp_wanted {
        let static_rss = opts
            .static_daemon
            .as_ref()
            .map(|p| idle_daemon_rss(opts, p));
        out = report(opts, &f, &idle_rss, static_rss);
    }
    if let Some(udp) = udp {
        if tcp_wanted {
            out.push('\n');
        } else {
            // The notes (binary sizes, the journal socket queue) would be lost otherwise.
            let mut udp = udp;
            for note in &opts.notes {
                udp.push_str(&format!("\n{note}"));
            }
            udp.push('\n');
            return udp;
        }
        out.push_str(&udp);
    }
    out
}

/// The workloads of the main table (the repeated ones).
const TCP_WORKLOADS: [&str; 6] = ["probe", "burst", "null", "idle", "churn", "syslog"];

fn col(kind: Kind) -> &'static str {
    kind.name()
}

/// The journald limit probe once, against a journald of its own: what it sent, what the
/// journal holds, and the entries/s from its first send to the last entry stored. The main
/// table's probe and the UDP workload's both run it.
pub fn run_probe(
    opts: &Opts,
    tag: u32,
    payload: Payload,
) -> (load::ProbeResult, journal::Readback, f64) {
    let j = Journal::start();
    util::settle(
        &[j.pid()],
        Duration::from_millis(300),
        Duration::from_secs(5),
    );
    let r = load::probe(&journal::socket(), opts.clients, opts.lines, tag, payload);
    util::settle(
        &[j.pid()],
        Duration::from_millis(500),
        Duration::from_secs(120),
    );
    let rb = journal::read_back_all(tag, r.entries);
    j.stop();
    let secs = (rb.last_us.saturating_sub(r.start_us)) as f64 / 1e6;
    let rate = rb.unique as f64 / secs;
    (r, rb, rate)
}

fn probe(opts: &Opts, f: &mut Figures, tag: u32, payload: Payload) {
    let rows = rows(payload);
    let (r, rb, rate) = run_probe(opts, tag, payload);
    eprintln!(
        "  probe ({payload:?}): {} entries in the journal of {} sent, {:.0}/s, {:.2} µs CPU/entry (send loop {:.2} s)",
        rb.unique,
        r.entries,
        rate,
        r.cpu_us as f64 / r.entries as f64,
        r.secs
    );
    f.add(rows.rate, PROBE, rate);
    f.add(
        rows.lost,
        PROBE,
        (r.entries - rb.unique.min(r.entries)) as f64,
    );
    f.add(rows.cpu, PROBE, r.cpu_us as f64 / r.entries as f64);
    f.add(rows.addr, PROBE, identified(&rb, payload));
}

/// The share of the entries found that say who sent them, in %.
fn identified(rb: &journal::Readback, payload: Payload) -> f64 {
    let n = match payload {
        Payload::Lines => rb.with_addr,
        Payload::Syslog => rb.with_sender,
    };
    100.0 * n as f64 / rb.matched.max(1) as f64
}

fn burst(opts: &Opts, f: &mut Figures, kind: Kind, tag: u32, payload: Payload) {
    let rows = rows(payload);
    let j = Journal::start();
    let server = Server::start(kind, SinkMode::Journal, payload, &opts.setup);
    let mut watched = server.pids.clone();
    watched.push(j.pid());
    let cpu0 = util::cpu_us_sum(&server.pids);
    let r = load::burst(kind.port(), opts.clients, opts.lines, tag, payload);
    let settled = util::settle(
        &watched,
        Duration::from_millis(700),
        Duration::from_secs(180),
    );
    let cpu = util::cpu_us_sum(&server.pids) - cpu0;
    let hwm = util::status_kb_sum(&server.pids, "VmHWM");
    let expected = u64::from(opts.clients) * u64::from(opts.lines);
    let rb = journal::read_back_all(tag, expected);
    server.stop();
    j.stop();
    let secs = (rb.last_us.saturating_sub(r.start_us)) as f64 / 1e6;
    let rate = rb.unique as f64 / secs;
    eprintln!(
        "  burst ({payload:?}) {}: {} of {expected} in the journal ({} entries matched), {rate:.0}/s, \
         {:.2} µs CPU each, VmHWM {hwm} kB; clients sent in {:.2} s, {} client errors{}",
        kind.name(),
        rb.unique,
        rb.matched,
        cpu as f64 / expected as f64,
        r.send_secs,
        r.errors,
        if settled { "" } else { " (did not settle)" }
    );
    f.add(rows.rate, col(kind), rate);
    f.add(
        rows.lost,
        col(kind),
        (expected - rb.unique.min(expected)) as f64,
    );
    f.add(rows.cpu, col(kind), cpu as f64 / expected as f64);
    f.add(rows.hwm, col(kind), hwm as f64);
    f.add(rows.addr, col(kind), identified(&rb, payload));
}

fn burst_null(opts: &Opts, f: &mut Figures, kind: Kind, tag: u32) {
    let server = Server::start(kind, SinkMode::Null, Payload::Lines, &opts.setup);
    let cpu0 = util::cpu_us_sum(&server.pids);
    let r = load::burst(kind.port(), opts.clients, opts.lines, tag, Payload::Lines);
    util::settle(
        &server.pids,
        Duration::from_millis(500),
        Duration::from_secs(120),
    );
    let cpu = util::cpu_us_sum(&server.pids) - cpu0;
    server.stop();
    let expected = u64::from(opts.clients) * u64::from(opts.lines);
    eprintln!(
        "  burst → /dev/null {}: {:.2} µs CPU/line; clients sent in {:.2} s",
        kind.name(),
        cpu as f64 / expected as f64,
        r.send_secs
    );
    f.add(N_CPU, col(kind), cpu as f64 / expected as f64);
}

/// VmRSS and RssAnon (kB) of an idle tcp-listener.
struct IdleRss {
    vm_rss: u64,
    rss_anon: u64,
}

fn idle(opts: &Opts, f: &mut Figures, kind: Kind) -> Option<IdleRss> {
    let j = Journal::start();
    let server = Server::start(kind, SinkMode::Journal, Payload::Lines, &opts.setup);
    let pid = server.pids[0];
    let before = util::status_kb(pid, "VmRSS");
    let idle_rss = (kind == Kind::TcpListener).then(|| IdleRss {
        vm_rss: before,
        rss_anon: util::status_kb(pid, "RssAnon"),
    });
    let fds0 = util::fd_count(pid);
    let (held, errors) = load::idle(kind.port(), opts.idle);
    let want = fds0 + held.len();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while util::fd_count(pid) < want && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let accepted = util::fd_count(pid).saturating_sub(fds0);
    let mut watched = server.pids.clone();
    watched.push(j.pid());
    util::settle(
        &watched,
        Duration::from_millis(500),
        Duration::from_secs(60),
    );
    let after = util::status_kb(pid, "VmRSS");
    drop(held);
    server.stop();
    j.stop();
    let per = (after.saturating_sub(before)) as f64 * 1024.0 / accepted.max(1) as f64;
    eprintln!(
        "  idle {}: {} connections held ({} accepted, {errors} failed), VmRSS {before} → {after} kB, \
         {per:.0} B/connection",
        kind.name(),
        opts.idle - errors as usize,
        accepted
    );
    f.add(I_BEFORE, col(kind), before as f64);
    f.add(I_AFTER, col(kind), after as f64);
    f.add(I_PER, col(kind), per);
    idle_rss
}

fn churn(opts: &Opts, f: &mut Figures, kind: Kind, tag: u32) {
    let j = Journal::start();
    let server = Server::start(kind, SinkMode::Journal, Payload::Lines, &opts.setup);
    let mut watched = server.pids.clone();
    watched.push(j.pid());
    let r = load::churn(
        kind.port(),
        opts.churn_threads,
        Duration::from_secs(opts.churn_secs),
        tag,
    );
    util::settle(
        &watched,
        Duration::from_millis(700),
        Duration::from_secs(120),
    );
    let sent: u64 = r.sent.iter().map(|&n| u64::from(n)).sum();
    let rb = journal::read_back_all(tag, sent);
    server.stop();
    j.stop();
    let secs = (rb.last_us.saturating_sub(r.start_us)) as f64 / 1e6;
    let rate = rb.unique as f64 / secs.max(r.secs);
    eprintln!(
        "  churn {}: {sent} connections made in {:.1} s ({} client errors), {} lines in the journal, \
         {rate:.0} connections/s logged",
        kind.name(),
        r.secs,
        r.errors,
        rb.unique
    );
    f.add(C_RATE, col(kind), rate);
    f.add(C_LOST, col(kind), (sent - rb.unique.min(sent)) as f64);
    f.add(C_SENT, col(kind), sent as f64);
}

fn idle_daemon_rss(opts: &Opts, daemon: &Path) -> IdleRss {
    let j = Journal::start();
    let setup = Setup {
        daemon: daemon.to_path_buf(),
        bench_dir: opts.setup.bench_dir.clone(),
        work: opts.setup.work.clone(),
    };
    let server = Server::start(Kind::TcpListener, SinkMode::Journal, Payload::Lines, &setup);
    let pid = server.pids[0];
    let r = IdleRss {
        vm_rss: util::status_kb(pid, "VmRSS"),
        rss_anon: util::status_kb(pid, "RssAnon"),
    };
    server.stop();
    j.stop();
    r
}

fn fmt(v: Option<f64>, prec: usize) -> String {
    match v {
        Some(v) if v.is_finite() => {
            let s = format!("{v:.prec$}");
            // Thousands separators for big numbers.
            if prec == 0 && v.abs() >= 10000.0 {
                let neg = s.starts_with('-');
                let digits: Vec<char> = s.trim_start_matches('-').chars().collect();
                let mut out = String::new();
                for (i, c) in digits.iter().enumerate() {
                    if i > 0 && (digits.len() - i).is_multiple_of(3) {
                        out.push(',');
                    }
                    out.push(*c);
                }
                if neg {
                    format!("-{out}")
                } else {
                    out
                }
            } else {
                s
            }
        }
        _ => "–".to_string(),
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 && a.is_finite() && b.is_finite() => {
            format!("{:.2}×", a / b)
        }
        _ => "–".to_string(),
    }
}

/// The syslog workload's goals (issue 11), from the medians: printed, not asserted.
fn syslog_goals(f: &Figures) -> Option<String> {
    let t = "tcp-listener";
    let lost = f.median(S_LOST, t)?;
    let all_lost = f.all(S_LOST, t).map_or(0.0, |v| v.iter().sum::<f64>());
    let r = |row: usize, col: &'static str| Some(f.median(row, t)? / f.median(row, col)?);
    let fmt = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.2}×"));
    Some(format!(
        "Syslog goals (medians): lost messages {lost:.0} (all repetitions: {all_lost:.0}; goal 0); \
         messages/s {} the probe's (goal ≥ 0.95×); CPU per message {} rsyslog's (goal ≤ 0.5×); \
         peak RSS {} rsyslog's (goal ≤ 0.1×).",
        fmt(r(S_RATE, PROBE)),
        fmt(r(S_CPU, "rsyslog")),
        fmt(r(S_HWM, "rsyslog")),
    ))
}

fn report(opts: &Opts, f: &Figures, idle: &[IdleRss], static_rss: Option<IdleRss>) -> String {
    let mut out = String::new();
    let total = u64::from(opts.clients) * u64::from(opts.lines);
    let _ = writeln!(
        out,
        "Medians of {} repetitions. burst: {} clients × {} lines of 64 bytes ({total} lines); \
         idle: {} connections; connect–send–close: {} client threads for {} s.\n",
        opts.reps, opts.clients, opts.lines, opts.idle, opts.churn_threads, opts.churn_secs
    );
    let _ = writeln!(
        out,
        "| workload | figure | tcp-listener | rsyslog | ncat \\| systemd-cat | limit probe | \
         tcp-listener ÷ rsyslog | tcp-listener ÷ probe |"
    );
    let _ = writeln!(
        out,
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for (i, row) in ROWS.iter().enumerate() {
        let cells: Vec<String> = COLS.iter().map(|c| fmt(f.median(i, c), row.prec)).collect();
        let t = f.median(i, COLS[0]);
        let ratio_probe = if matches!(i, B_RATE | B_CPU | B_ADDR | S_RATE | S_CPU | S_FIELDS) {
            ratio(t, f.median(i, PROBE))
        } else {
            "–".to_string()
        };
        let ratio_rsyslog = if matches!(i, B_LOST | C_LOST | B_ADDR | S_LOST | S_FIELDS) {
            "–".to_string()
        } else {
            ratio(t, f.median(i, COLS[1]))
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            row.workload,
            row.figure,
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            ratio_rsyslog,
            ratio_probe
        );
    }
    let _ = writeln!(out);
    if let Some(goals) = syslog_goals(f) {
        let _ = writeln!(out, "{goals}\n");
    }
    let med = |v: Vec<f64>| median(&v);
    if !idle.is_empty() {
        let _ = writeln!(
            out,
            "Idle tcp-listener (this build, glibc), median: VmRSS {:.0} kB, RssAnon {:.0} kB.",
            med(idle.iter().map(|r| r.vm_rss as f64).collect()),
            med(idle.iter().map(|r| r.rss_anon as f64).collect()),
        );
    }
    if let (Some(r), Some(p)) = (&static_rss, &opts.static_daemon) {
        let _ = writeln!(
            out,
            "Idle tcp-listener, static musl build ({}): VmRSS {} kB, RssAnon {} kB.",
            p.display(),
            r.vm_rss,
            r.rss_anon
        );
    }
    for note in &opts.notes {
        let _ = writeln!(out, "{note}");
    }
    let _ = writeln!(out, "\nEvery repetition (in order):\n");
    for (i, row) in ROWS.iter().enumerate() {
        for c in COLS {
            if let Some(v) = f.all(i, c) {
                let vals: Vec<String> = v.iter().map(|x| fmt(Some(*x), row.prec)).collect();
                let _ = writeln!(
                    out,
                    "- {} / {} / {c}: {}",
                    row.workload,
                    row.figure,
                    vals.join(", ")
                );
            }
        }
    }
    out
}
