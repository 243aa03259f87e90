//! The Prometheus counters (`metrics_listen`), read as Prometheus reads them: over HTTP from
//! the real daemon, checked by the real parser and linter (`promtool check metrics`, Debian
//! package prometheus), with the figures compared to what the test did.

#[macro_use]
mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// `GET path` from `addr`: the status line and the body.
fn get(addr: &str, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).expect("connect to the metrics endpoint");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").expect("an HTTP reply");
    (
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    )
}

/// Each sample of the exposition: `name{labels}` → value.
fn samples(body: &str) -> HashMap<String, f64> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

fn promtool_check(body: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool (Debian package prometheus)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let said =
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    (o.status.success(), said)
}

#[test]
fn the_counters_are_served_to_prometheus_and_count_what_happened() {
    need_journald!("the_counters_are_served_to_prometheus_and_count_what_happened");
    let journal = Journal::start();
    let config = test_config(
        Some(&journal),
        "metrics_listen = \"127.0.0.1:0\"\nmax_connections_per_source = 1",
    );
    let daemon = Daemon::start(&config);
    let notice = daemon.wait_stderr("metrics for Prometheus at http://");
    let addr = notice
        .split("http://")
        .nth(1)
        .and_then(|r| r.strip_suffix("/metrics"))
        .expect("the address in the notice")
        .to_string();

    let mut client = daemon.connect();
    client.write_all(b"one\ntwo\nthree\n").unwrap();
    journal.wait_for("three lines", |e| lines_of(e).len() == 3);
    // A second client from the same address is refused (max_connections_per_source = 1).
    let mut second = daemon.connect();
    assert!(closed_by_server(&mut second, Duration::from_secs(10)));

    let (status, body) = get(&addr, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    let (ok, said) = promtool_check(&body);
    assert!(ok, "promtool check metrics: {said}\n{body}");
    let s = samples(&body);
    let want = [
        ("tcp_listener_connections_accepted_total", 1.0),
        (
            "tcp_listener_connections_refused_total{reason=\"max_connections_per_source\"}",
            1.0,
        ),
        ("tcp_listener_lines_received_total", 3.0),
        ("tcp_listener_received_bytes_total", 14.0),
        ("tcp_listener_clients", 1.0),
        ("tcp_listener_journal_outages_total", 0.0),
    ];
    for (name, value) in want {
        assert_eq!(s.get(name), Some(&value), "{name} in\n{body}");
    }
    assert!(
        s["tcp_listener_entries_delivered_total"] >= 4.0,
        "the start, connected and three lines were delivered:\n{body}"
    );
    assert!(
        !body.contains("127.0.0.1"),
        "no label names a source:\n{body}"
    );

    assert_eq!(get(&addr, "/").0, "HTTP/1.1 404 Not Found");
    drop(client);
}

/// A reload that sets, moves or removes `metrics_listen` applies it; a port that cannot be
/// had is said in words and the daemon goes on.
#[test]
fn a_reload_moves_the_endpoint_and_a_busy_port_is_said() {
    need_journald!("a_reload_moves_the_endpoint_and_a_busy_port_is_said");
    let journal = Journal::start();
    let daemon = Daemon::start(&test_config(Some(&journal), ""));
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_addr = busy.local_addr().unwrap();
    daemon.reload_with(&test_config(
        Some(&journal),
        &format!("metrics_listen = \"{busy_addr}\""),
    ));
    let said = daemon.wait_stderr("cannot listen there");
    assert!(
        said.contains(&format!("metrics_listen = \"{busy_addr}\"")),
        "{said}"
    );
    drop(busy);
    let free = free_port();
    daemon.reload_with(&test_config(
        Some(&journal),
        &format!("metrics_listen = \"127.0.0.1:{free}\""),
    ));
    daemon.wait_stderr(&format!(
        "metrics for Prometheus at http://127.0.0.1:{free}/metrics"
    ));
    let (status, body) = get(&format!("127.0.0.1:{free}"), "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        body.contains("tcp_listener_lines_received_total 0\n"),
        "{body}"
    );
    daemon.reload_with(&test_config(Some(&journal), ""));
    wait_until(Duration::from_secs(10), "the endpoint closed", || {
        TcpStream::connect(("127.0.0.1", free))
            .is_err()
            .then_some(())
    });
}
