//! tlbench: tcp-listener against rsyslog and `ncat | systemd-cat`, and a journald limit probe.
//! `bench/run` builds everything and runs `tlbench run`; see bench/README.md.

mod journal;
mod load;
mod run;
mod servers;
mod tls;
mod udp;
mod util;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "\
usage:
  tlbench run   [--reps N] [--daemon PATH] [--static-daemon PATH] [--work DIR] [--out FILE]
                [--clients 8] [--lines 25000] [--idle 10000] [--churn-secs 10] [--churn-threads 4]
                [--only probe,burst,null,idle,churn,syslog,udp] [--servers tcp-listener,rsyslog,ncat]
                [--udp-rates 5000,10000,20000,40000,80000] [--udp-secs 3] [--note TEXT]...
  tlbench burst --port P [--clients 8] [--lines 25000] [--tag T] [--syslog 1]
  tlbench idle  --port P [--idle 10000] [--hold-secs 30]
  tlbench churn --port P [--churn-secs 10] [--churn-threads 4] [--tag T]
  tlbench tls   [--reps N] [--daemon PATH] [--work DIR] [--out FILE] [--clients 8]
                [--lines 25000] [--idle 2000] [--churn-secs 10] [--churn-threads 4]
  tlbench journal [--secs 600]      (the benchmark's journal namespace, for experiments)
  tlbench count --tag T             (counts run T's lines in that namespace)
  tlbench probe [--socket /run/systemd/journal/socket] [--clients 8] [--lines 25000] [--tag T]
                [--syslog 1]
";

struct Args {
    flags: HashMap<String, String>,
    notes: Vec<String>,
}

impl Args {
    fn get<T: std::str::FromStr>(&self, key: &str, default: T) -> T {
        match self.flags.get(key) {
            None => default,
            Some(v) => v.parse().unwrap_or_else(|_| {
                eprintln!("tlbench: bad value for --{key}: {v}");
                std::process::exit(2)
            }),
        }
    }
    fn list(&self, key: &str) -> Vec<String> {
        self.flags
            .get(key)
            .map(|v| v.split(',').map(str::to_string).collect())
            .unwrap_or_default()
    }
    fn path(&self, key: &str) -> Option<PathBuf> {
        self.flags.get(key).map(PathBuf::from)
    }
}

fn parse(args: &[String]) -> Args {
    let mut flags = HashMap::new();
    let mut notes = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let Some(key) = a.strip_prefix("--") else {
            eprintln!("tlbench: unexpected argument {a}\n{USAGE}");
            std::process::exit(2);
        };
        let Some(v) = it.next() else {
            eprintln!("tlbench: --{key} needs a value\n{USAGE}");
            std::process::exit(2);
        };
        if key == "note" {
            notes.push(v.clone());
        } else {
            flags.insert(key.to_string(), v.clone());
        }
    }
    Args { flags, notes }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = argv.first() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let a = parse(&argv[1..]);
    let tag = a.get("tag", (util::realtime_us() / 1_000_000 % 10000) as u32);
    let clients = a.get("clients", 8u32);
    let lines = a.get("lines", 25_000u32);
    let payload = if a.get("syslog", 0u32) == 1 {
        load::Payload::Syslog
    } else {
        load::Payload::Lines
    };
    match cmd.as_str() {
        "run" => {
            let bench_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
            let opts = run::Opts {
                reps: a.get("reps", 3),
                clients,
                lines,
                idle: a.get("idle", 10_000),
                churn_secs: a.get("churn-secs", 10),
                churn_threads: a.get("churn-threads", 4),
                setup: servers::Setup {
                    daemon: a
                        .path("daemon")
                        .unwrap_or_else(|| bench_dir.join("../target/release/tcp-listener")),
                    bench_dir,
                    work: a
                        .path("work")
                        .unwrap_or_else(|| PathBuf::from("/tmp/tlbench")),
                },
                static_daemon: a.path("static-daemon"),
                notes: a.notes.clone(),
                only: a.list("only"),
                servers: a.list("servers"),
                udp_rates: a
                    .list("udp-rates")
                    .iter()
                    .map(|r| {
                        r.parse().unwrap_or_else(|_| {
                            eprintln!("tlbench: bad value for --udp-rates: {r}");
                            std::process::exit(2)
                        })
                    })
                    .collect(),
                udp_secs: a.get("udp-secs", 3.0),
            };
            let mut opts = opts;
            if opts.udp_rates.is_empty() {
                opts.udp_rates = vec![5_000, 10_000, 20_000, 40_000, 80_000];
            }
            std::fs::create_dir_all(&opts.setup.work).expect("create the work directory");
            let table = run::run(&opts);
            print!("{table}");
            if let Some(out) = a.path("out") {
                std::fs::write(&out, &table).expect("write --out");
            }
        }
        "tls" => {
            let bench_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
            let opts = tls::TlsOpts {
                daemon: a
                    .path("daemon")
                    .unwrap_or_else(|| bench_dir.join("../target/release/tcp-listener")),
                bench_dir,
                work: a
                    .path("work")
                    .unwrap_or_else(|| PathBuf::from("/tmp/tlbench")),
                reps: a.get("reps", 3),
                clients,
                lines,
                idle: a.get("idle", 2000),
                churn_secs: a.get("churn-secs", 10),
                churn_threads: a.get("churn-threads", 4),
            };
            let table = tls::run(&opts);
            print!("{table}");
            if let Some(out) = a.path("out") {
                std::fs::write(&out, &table).expect("write --out");
            }
        }
        "burst" => {
            let r = load::burst(a.get("port", 8888), clients, lines, tag, payload);
            println!(
                "tag={tag} start_us={} send_secs={:.3} errors={}",
                r.start_us, r.send_secs, r.errors
            );
        }
        "idle" => {
            util::raise_nofile();
            let (held, errors) = load::idle(a.get("port", 8888), a.get("idle", 10_000));
            println!("held={} errors={errors}", held.len());
            std::thread::sleep(Duration::from_secs(a.get("hold-secs", 30)));
        }
        "churn" => {
            let r = load::churn(
                a.get("port", 8888),
                a.get("churn-threads", 4),
                Duration::from_secs(a.get("churn-secs", 10)),
                tag,
            );
            let sent: u64 = r.sent.iter().map(|&n| u64::from(n)).sum();
            println!(
                "tag={tag} start_us={} sent={sent} errors={} secs={:.2}",
                r.start_us, r.errors, r.secs
            );
        }
        "journal" => {
            // A benchmark namespace for experiments by hand, up for --secs.
            let j = journal::Journal::start();
            println!(
                "journald pid {} socket {}",
                j.pid(),
                journal::socket().display()
            );
            std::thread::sleep(Duration::from_secs(a.get("secs", 600)));
            j.stop();
        }
        "count" => {
            let rb = journal::read_back(tag);
            println!(
                "tag={tag} unique={} matched={} with_addr={} total={} last_us={}",
                rb.unique, rb.matched, rb.with_addr, rb.total, rb.last_us
            );
        }
        "probe" => {
            let socket = a
                .path("socket")
                .unwrap_or_else(|| PathBuf::from("/run/systemd/journal/socket"));
            let r = load::probe(&socket, clients, lines, tag, payload);
            println!(
                "tag={tag} start_us={} entries={} cpu_us_per_entry={:.2} send_secs={:.3}",
                r.start_us,
                r.entries,
                r.cpu_us as f64 / r.entries as f64,
                r.secs
            );
        }
        _ => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}
