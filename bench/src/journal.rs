//! A fresh private journald namespace per measurement, and reading back what reached it.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util;

pub const JOURNALD: &str = "/lib/systemd/systemd-journald";
/// The namespace every measurement uses, started afresh (empty) each time.
pub const NAMESPACE: &str = "tlbench";

pub struct Journal {
    child: Child,
    _keepalive: UnixStream,
}

pub fn dir() -> PathBuf {
    PathBuf::from(format!("/run/systemd/journal.{NAMESPACE}"))
}

pub fn socket() -> PathBuf {
    dir().join("socket")
}

fn storage_dirs() -> Vec<PathBuf> {
    let id = std::fs::read_to_string("/etc/machine-id").unwrap_or_default();
    let id = id.trim();
    ["/run/log/journal", "/var/log/journal"]
        .iter()
        .map(|d| PathBuf::from(format!("{d}/{id}.{NAMESPACE}")))
        .collect()
}

fn wipe() {
    for d in storage_dirs() {
        let _ = std::fs::remove_dir_all(d);
    }
}

impl Journal {
    /// Starts an empty namespace journald, rate limit off, volatile storage.
    pub fn start() -> Journal {
        wipe();
        std::fs::write(
            format!("/etc/systemd/journald@{NAMESPACE}.conf"),
            "# Written by bench/ (tlbench): the benchmark's journal namespace.\n\
             [Journal]\nStorage=volatile\nRateLimitIntervalSec=0\nRateLimitBurst=0\n\
             RuntimeMaxUse=4G\nRuntimeMaxFileSize=1G\n",
        )
        .expect("write /etc/systemd/journald@tlbench.conf");
        let _ = std::fs::remove_file(socket());
        let child = Command::new(JOURNALD)
            .arg(NAMESPACE)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start systemd-journald");
        let deadline = Instant::now() + Duration::from_secs(10);
        // An idle namespace journald exits after ~30 s without clients: a connected stdout
        // stream keeps it up for the whole measurement.
        let keepalive = loop {
            if socket().exists() {
                if let Ok(mut s) = UnixStream::connect(dir().join("stdout")) {
                    if s.write_all(b"tlbench-keepalive\n\n6\n0\n0\n0\n0\n").is_ok() {
                        break s;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "journald namespace did not come up"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Journal {
            child,
            _keepalive: keepalive,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn stop(mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
        wipe();
    }
}

/// What a read-back found of run `tag`'s lines.
#[derive(Debug, Default, Clone)]
pub struct Readback {
    /// Distinct (client, line) pairs found.
    pub unique: u64,
    /// Entries holding a line of the run (duplicates included).
    pub matched: u64,
    /// Of those, entries carrying a REMOTE_ADDR field.
    pub with_addr: u64,
    /// Of those, entries whose SYSLOG_IDENTIFIER is the syslog workload's sender's
    /// (`app<client>`) and that carry REMOTE_ADDR.
    pub with_sender: u64,
    /// Every entry in the namespace.
    pub total: u64,
    /// journald's receive time of the last line, µs since the epoch.
    pub last_us: u64,
    /// Distinct lines journald received at or before the cutoff given to [`read_back_by`].
    pub by_cutoff: u64,
}

/// Reads the whole namespace back (`journalctl -o json`) and counts the lines of run `tag`.
pub fn read_back(tag: u32) -> Readback {
    read_back_by(tag, u64::MAX)
}

/// [`read_back`], also counting the distinct lines journald received by `cutoff_us`.
pub fn read_back_by(tag: u32, cutoff_us: u64) -> Readback {
    let mut child = Command::new("journalctl")
        .args([
            &format!("--namespace={NAMESPACE}"),
            "-o",
            "json",
            "--output-fields=MESSAGE,REMOTE_ADDR,SYSLOG_IDENTIFIER",
            "--no-pager",
            "--all",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run journalctl");
    let mut seen = HashSet::new();
    let mut rb = Readback::default();
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let Ok(line) = line else { break };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        rb.total += 1;
        let Some(msg) = v.get("MESSAGE").and_then(|m| m.as_str()) else {
            continue;
        };
        let Some((client, seq)) = util::parse_line(msg, tag) else {
            continue;
        };
        rb.matched += 1;
        if v.get("REMOTE_ADDR").is_some() {
            rb.with_addr += 1;
            let sender = format!("app{client}");
            if v.get("SYSLOG_IDENTIFIER").and_then(|i| i.as_str()) == Some(sender.as_str()) {
                rb.with_sender += 1;
            }
        }
        let ts: u64 = v
            .get("__REALTIME_TIMESTAMP")
            .and_then(|t| t.as_str())
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        if seen.insert((u64::from(client) << 32) | u64::from(seq)) {
            rb.unique += 1;
            if ts <= cutoff_us {
                rb.by_cutoff += 1;
            }
        }
        rb.last_us = rb.last_us.max(ts);
    }
    let _ = child.wait();
    rb
}

/// Reads back until `expected` lines are there or the count stops growing.
pub fn read_back_all(tag: u32, expected: u64) -> Readback {
    read_back_all_by(tag, expected, u64::MAX)
}

/// [`read_back_all`] with [`read_back_by`]'s cutoff.
pub fn read_back_all_by(tag: u32, expected: u64, cutoff_us: u64) -> Readback {
    let mut rb = read_back_by(tag, cutoff_us);
    for _ in 0..10 {
        if rb.unique >= expected {
            break;
        }
        std::thread::sleep(Duration::from_millis(1000));
        let again = read_back_by(tag, cutoff_us);
        let grew = again.unique > rb.unique;
        rb = again;
        if !grew {
            break;
        }
    }
    rb
}
