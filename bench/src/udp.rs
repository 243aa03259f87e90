//! The UDP workload (issue 19): syslog datagrams at a stepped rate into tcp-listener
//! (`udp = true`) and rsyslog (imudp → omjournal), side by side, each step with a fresh
//! server and a fresh journald namespace; the highest rate without loss, what is logged and
//! counted at twice that rate, CPU per message and peak RSS, beside the limit probe. One ramp
//! per run (repetitions do not apply): its own markdown section.

use std::fmt::Write as _;
use std::time::Duration;

use crate::journal::{self, Journal};
use crate::load::{self, Payload};
use crate::run::Opts;
use crate::servers::{self, Kind, Server, UDP_RECEIVE_BUFFER};
use crate::util;

/// What one step (one rate, one server) gave.
#[derive(Debug, Default, Clone)]
struct Step {
    rate: u64,
    sent: u64,
    /// Datagrams/s the sender achieved (it may fall behind on a busy machine).
    achieved: f64,
    /// Test messages found in the journal (distinct).
    logged: u64,
    /// Of those, the ones journald received while the sender was sending.
    logged_in_step: u64,
    /// From the last send to journald's last entry, s (a server's queue draining).
    drain_secs: f64,
    /// What the server itself counted as dropped (tcp-listener's stop summary; rsyslog: none).
    counted: u64,
    /// The kernel's drops for the server's socket (/proc/net/udp).
    kernel: u64,
    cpu_us: u64,
    hwm_kb: u64,
    /// The receive buffer the socket had (ss -uamn, rb).
    rcvbuf: Option<u64>,
    /// tcp-listener's stop summary, its UDP part.
    summary: String,
    send_errors: u64,
}

impl Step {
    fn lost(&self) -> u64 {
        self.sent.saturating_sub(self.logged)
    }
    /// Sent and neither logged nor counted by the server.
    fn uncounted(&self) -> i64 {
        self.sent as i64 - self.logged as i64 - self.counted as i64
    }
}

/// A figure in the stop summary's UDP part: the number before `what`.
fn figure(summary: &str, what: &str) -> u64 {
    let Some(at) = summary.find(what) else {
        return 0;
    };
    summary[..at]
        .trim_end()
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn step(opts: &Opts, kind: Kind, rate: u64, tag: u32) -> Step {
    let port = kind.port();
    let j = Journal::start();
    let server = Server::start_udp(kind, &opts.setup);
    let mut watched = server.pids.clone();
    watched.push(j.pid());
    let rcvbuf = util::udp_receive_buffer(port);
    let (_, drops0) = util::udp_socket(port).unwrap_or((0, 0));
    let cpu0 = util::cpu_us_sum(&server.pids);
    let r = load::udp(port, rate, opts.udp_secs, tag, opts.clients);
    let settled = util::settle(
        &watched,
        Duration::from_millis(700),
        Duration::from_secs(120),
    );
    let cpu = util::cpu_us_sum(&server.pids) - cpu0;
    let hwm = util::status_kb_sum(&server.pids, "VmHWM");
    let (queued, drops1) = util::udp_socket(port).unwrap_or((0, drops0));
    if kind == Kind::TcpListener {
        // The kernel's count comes with the next datagram read: one more, then the stop.
        load::udp_marker(port);
    }
    server.stop();
    let summary = if kind == Kind::TcpListener {
        let text = std::fs::read_to_string(servers::udp_stderr(&opts.setup)).unwrap_or_default();
        text.lines()
            .rfind(|l| l.contains("stopping: served"))
            .and_then(|l| l.split("UDP: ").nth(1))
            .map(str::to_string)
            .unwrap_or_else(|| {
                format!(
                    "(no stop summary on stderr; its last line: {})",
                    text.lines().last().unwrap_or("none")
                )
            })
    } else {
        String::new()
    };
    let rb = journal::read_back_all_by(tag, r.sent, r.end_us);
    j.stop();
    let counted = figure(&summary, "datagrams dropped by the kernel")
        + figure(&summary, "messages over the rate limit")
        + figure(&summary, "datagrams from sources not in the allow list");
    let s = Step {
        rate,
        sent: r.sent,
        achieved: r.sent as f64 / r.secs,
        logged: rb.unique,
        logged_in_step: rb.by_cutoff,
        drain_secs: rb.last_us.saturating_sub(r.end_us) as f64 / 1e6,
        counted,
        kernel: drops1 - drops0,
        cpu_us: cpu,
        hwm_kb: hwm,
        rcvbuf,
        summary,
        send_errors: r.errors,
    };
    eprintln!(
        "  udp {} at {rate}/s: sent {} ({:.0}/s, {} send errors), logged {} ({} while sending, the last \
         {:.2} s after), counted {}, kernel drops {}, \
         {:.2} µs CPU/message, VmHWM {hwm} kB{}{}{}",
        kind.name(),
        s.sent,
        s.achieved,
        s.send_errors,
        s.logged,
        s.logged_in_step,
        s.drain_secs,
        s.counted,
        s.kernel,
        cpu as f64 / s.logged.max(1) as f64,
        if queued > 0 { format!(", {queued} bytes still queued") } else { String::new() },
        if settled { "" } else { " (did not settle)" },
        if s.summary.is_empty() { String::new() } else { format!("; {}", s.summary) },
    );
    s
}

/// The highest rate of the ramp up to which every step lost nothing (0: the first lost).
fn loss_free(steps: &[Step]) -> u64 {
    steps
        .iter()
        .take_while(|s| s.lost() == 0 && s.kernel == 0 && s.sent > 0)
        .map(|s| s.rate)
        .last()
        .unwrap_or(0)
}

struct Ramp {
    kind: Kind,
    steps: Vec<Step>,
    /// The step at twice the loss-free rate.
    double: Option<Step>,
}

impl Ramp {
    fn cpu_per_message(&self) -> f64 {
        let cpu: u64 = self.steps.iter().map(|s| s.cpu_us).sum();
        let logged: u64 = self.steps.iter().map(|s| s.logged).sum();
        cpu as f64 / logged.max(1) as f64
    }
    fn peak_rss(&self) -> u64 {
        self.steps
            .iter()
            .chain(self.double.iter())
            .map(|s| s.hwm_kb)
            .max()
            .unwrap_or(0)
    }
}

/// Runs the ramp for every server wanted, then twice each one's loss-free rate; returns the
/// markdown section.
pub fn run(opts: &Opts, tag: &mut u32) -> String {
    let kinds = opts.kinds(&[Kind::TcpListener, Kind::Rsyslog]);
    let mut ramps: Vec<Ramp> = kinds
        .iter()
        .map(|&kind| Ramp {
            kind,
            steps: Vec::new(),
            double: None,
        })
        .collect();
    // The probe: journald's entries/s for the entries tcp-listener writes for these messages.
    *tag += 1;
    let probe = Some(probe(opts, *tag % 10000));
    // Rate by rate, the servers side by side.
    for &rate in &opts.udp_rates {
        for ramp in &mut ramps {
            *tag += 1;
            let s = step(opts, ramp.kind, rate, *tag % 10000);
            ramp.steps.push(s);
        }
    }
    for ramp in &mut ramps {
        let free = loss_free(&ramp.steps);
        let rate = if free > 0 { 2 * free } else { 0 };
        if rate > 0 {
            *tag += 1;
            ramp.double = Some(step(opts, ramp.kind, rate, *tag % 10000));
        }
    }
    report(opts, &ramps, probe)
}

/// The limit probe's entries/s and µs/entry for the syslog burst's entries.
fn probe(opts: &Opts, tag: u32) -> (f64, f64) {
    let (r, rb, rate) = crate::run::run_probe(opts, tag, Payload::Syslog);
    let cpu = r.cpu_us as f64 / r.entries as f64;
    eprintln!(
        "  udp: limit probe {} entries, {rate:.0}/s, {cpu:.2} µs CPU/entry",
        rb.unique
    );
    (rate, cpu)
}

fn n(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) && s.len() > 4 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn signed(v: i64) -> String {
    if v < 0 {
        format!("−{}", n(v.unsigned_abs()))
    } else {
        n(v as u64)
    }
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 && a.is_finite() && b.is_finite() {
        format!("{:.2}×", a / b)
    } else {
        "–".to_string()
    }
}

fn report(opts: &Opts, ramps: &[Ramp], probe: Option<(f64, f64)>) -> String {
    let mut out = String::new();
    let rates: Vec<String> = opts.udp_rates.iter().map(|&r| n(r)).collect();
    let _ = writeln!(
        out,
        "## UDP syslog → journald (issue 19)\n\n\
         One ramp: {} datagrams/s, {} s each, one RFC 5424 message per datagram ({} bytes, \
         from {} source addresses in turn), one sender thread; then twice each server's \
         loss-free rate. Every step: a fresh server and a fresh journald namespace. \
         tcp-listener: `tcp-listener-udp.toml` (`udp = true`, `framing = \"syslog\"`, \
         `max_lines_per_sec = 0`); rsyslog: imudp → omjournal; both ask for a receive buffer \
         of {UDP_RECEIVE_BUFFER} bytes (SO_RCVBUF). After each step one more datagram (not a \
         test message) goes to tcp-listener before its stop, so that the kernel's last drops \
         reach its count (SO_RXQ_OVFL comes with the next datagram read): its summary reads \
         sent + 1.\n",
        rates.join(", "),
        opts.udp_secs,
        util::syslog_header(0).0.len() + util::LINE_LEN - 1,
        opts.clients,
    );
    let _ = writeln!(
        out,
        "| server | rate asked, /s | sent | sent/s | logged | of them while sending | last entry, s after the last send | counted by the server | kernel drops (/proc/net/udp) | sent − logged − counted | CPU µs/message | VmHWM, kB |"
    );
    let _ = writeln!(
        out,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for ramp in ramps {
        for (s, twice) in ramp
            .steps
            .iter()
            .map(|s| (s, false))
            .chain(ramp.double.iter().map(|s| (s, true)))
        {
            let _ = writeln!(
                out,
                "| {} | {}{} | {} | {} | {} | {} | {:.2} | {} | {} | {} | {:.2} | {} |",
                ramp.kind.name(),
                n(s.rate),
                if twice { " (2 × loss-free)" } else { "" },
                n(s.sent),
                n(s.achieved as u64),
                n(s.logged),
                n(s.logged_in_step),
                s.drain_secs,
                if ramp.kind == Kind::TcpListener {
                    n(s.counted)
                } else {
                    "none reported".to_string()
                },
                n(s.kernel),
                signed(s.uncounted()),
                s.cpu_us as f64 / s.logged.max(1) as f64,
                n(s.hwm_kb),
            );
        }
    }
    let _ = writeln!(
        out,
        "\n*logged*: test messages found in the journal; *while sending*: of them, those journald \
         received (`__REALTIME_TIMESTAMP`) before the last datagram was sent, the rest came from a \
         server's queue afterwards. *counted by the server*: tcp-listener's stop summary (kernel \
         drops it learnt by SO_RXQ_OVFL, over a budget, not allowed); rsyslog reports none, so its \
         *sent − logged − counted* is everything it lost, though the kernel counted its drops in \
         /proc/net/udp.\n"
    );
    let get = |kind: Kind| ramps.iter().find(|r| r.kind == kind);
    let (t, r) = (get(Kind::TcpListener), get(Kind::Rsyslog));
    let free = |x: Option<&Ramp>| x.map(|x| loss_free(&x.steps) as f64);
    let cpu = |x: Option<&Ramp>| x.map(Ramp::cpu_per_message);
    let rss = |x: Option<&Ramp>| x.map(|x| x.peak_rss() as f64);
    let cell = |v: Option<f64>, prec: usize| {
        v.map_or("–".to_string(), |v| {
            if prec == 0 {
                n(v as u64)
            } else {
                format!("{v:.prec$}")
            }
        })
    };
    let rat = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => ratio(a, b),
        _ => "–".to_string(),
    };
    let _ = writeln!(
        out,
        "| figure | tcp-listener | rsyslog | limit probe | tcp-listener ÷ rsyslog | goal |"
    );
    let _ = writeln!(out, "| --- | ---: | ---: | ---: | ---: | --- |");
    let _ = writeln!(
        out,
        "| loss-free rate, datagrams/s (highest step up to which nothing was lost) | {} | {} | {} | {} | ≥ 1× |",
        cell(free(t), 0),
        cell(free(r), 0),
        probe.map_or("–".to_string(), |p| format!("{} entries/s", n(p.0 as u64))),
        rat(free(t), free(r)),
    );
    let double = |x: Option<&Ramp>| {
        x.and_then(|x| x.double.as_ref()).map_or("–".to_string(), |s| {
            if x.is_some_and(|x| x.kind == Kind::TcpListener) {
                format!(
                    "{} sent, {} logged + {} counted = {} ({})",
                    n(s.sent),
                    n(s.logged),
                    n(s.counted),
                    n(s.logged + s.counted),
                    if s.uncounted() == 0 {
                        "= sent".to_string()
                    } else {
                        format!("{} uncounted", signed(s.uncounted()))
                    }
                )
            } else {
                format!(
                    "{} sent, {} logged, {} dropped by the kernel (not reported by rsyslog), {} otherwise lost",
                    n(s.sent),
                    n(s.logged),
                    n(s.kernel),
                    signed(s.sent as i64 - s.logged as i64 - s.kernel as i64)
                )
            }
        })
    };
    let _ = writeln!(
        out,
        "| at twice the loss-free rate | {} | {} | – | – | nothing lost uncounted |",
        double(t),
        double(r)
    );
    let _ = writeln!(
        out,
        "| CPU µs per message logged (utime + stime, all steps of the ramp) | {} | {} | {} µs/entry | {} | ≤ 0.3× |",
        cell(cpu(t), 2),
        cell(cpu(r), 2),
        probe.map_or("–".to_string(), |p| format!("{:.2}", p.1)),
        rat(cpu(t), cpu(r)),
    );
    let _ = writeln!(
        out,
        "| peak RSS, kB (VmHWM, highest of the steps) | {} | {} | – | {} | ≤ 0.1× |",
        cell(rss(t), 0),
        cell(rss(r), 0),
        rat(rss(t), rss(r)),
    );
    let _ = writeln!(out);
    let uncounted: Vec<String> = t
        .iter()
        .flat_map(|t| t.steps.iter().chain(t.double.iter()))
        .filter(|s| s.uncounted() != 0)
        .map(|s| format!("{}/s: {}", n(s.rate), s.uncounted()))
        .collect();
    let _ = writeln!(
        out,
        "UDP goals: loss-free rate {} rsyslog's (goal ≥ 1×); CPU per message {} rsyslog's (goal ≤ 0.3×); \
         peak RSS {} rsyslog's (goal ≤ 0.1×); tcp-listener steps with datagrams neither logged nor \
         counted: {}.",
        rat(free(t), free(r)),
        rat(cpu(t), cpu(r)),
        rat(rss(t), rss(r)),
        if uncounted.is_empty() { "none".to_string() } else { uncounted.join(", ") },
    );
    let bufs: Vec<String> = ramps
        .iter()
        .filter_map(|r| {
            r.steps
                .first()
                .and_then(|s| s.rcvbuf)
                .map(|b| format!("{} {} bytes", r.kind.name(), n(b)))
        })
        .collect();
    if !bufs.is_empty() {
        let _ = writeln!(
            out,
            "\nReceive buffers as the kernel set them (`ss -uamn`, rb): {}.",
            bufs.join(", ")
        );
    }
    if let Some(t) = t {
        let _ = writeln!(
            out,
            "\ntcp-listener's stop summaries (UDP part), step by step:\n"
        );
        for s in t.steps.iter().chain(t.double.iter()) {
            let _ = writeln!(out, "- {}/s: {}", n(s.rate), s.summary);
        }
    }
    out
}
