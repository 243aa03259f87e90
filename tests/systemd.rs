//! The systemd protocols, against real sockets: sd_notify messages, and a listening socket
//! passed by socket activation (through systemd's own `systemd-socket-activate`).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// Collects notifications until one satisfies `want`.
fn wait_notification(socket: &UnixDatagram, seen: &mut Vec<String>, want: &str) -> String {
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0; 4096];
    loop {
        let n = socket
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no `{want}` notification ({e}); seen: {seen:?}"));
        let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
        seen.push(msg.clone());
        if msg.contains(want) {
            return msg;
        }
    }
}

#[test]
fn notifies_ready_status_reloading_watchdog_and_stopping() {
    let dir = TempDir::new();
    let path = dir.0.join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    let mut daemon = Daemon::start_with_env(
        &test_config(None, ""),
        &[
            ("NOTIFY_SOCKET", path.to_str().unwrap()),
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    let mut seen = Vec::new();
    wait_notification(&socket, &mut seen, "READY=1");
    let status = wait_notification(&socket, &mut seen, "STATUS=");
    assert_eq!(
        status,
        "STATUS=0 clients, 0 lines logged, 0 refused, 0 dropped"
    );
    wait_notification(&socket, &mut seen, "WATCHDOG=1");

    let mut s = daemon.connect();
    s.write_all(b"counted\n").unwrap();
    wait_notification(&socket, &mut seen, "STATUS=1 clients, 1 lines logged");

    daemon.signal(libc::SIGHUP);
    let reloading = wait_notification(&socket, &mut seen, "RELOADING=1");
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
    wait_notification(&socket, &mut seen, "READY=1");

    daemon.signal(libc::SIGTERM);
    wait_notification(&socket, &mut seen, "STOPPING=1");
    assert_eq!(daemon.wait_exit(Duration::from_secs(5)).code(), Some(0));
}

#[test]
fn uses_the_socket_systemd_passes_instead_of_binding() {
    let activate = "/usr/bin/systemd-socket-activate";
    if !std::path::Path::new(activate).exists() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("systemd-socket-activate is missing, and under CI=true this test must run");
        }
        eprintln!("SKIPPED: needs {activate}");
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = TempDir::new();
    let config = dir.0.join("c.toml");
    // The config names another port: the passed socket wins.
    std::fs::write(
        &config,
        test_config(None, "").replace(PORT, &free_port().to_string()),
    )
    .unwrap();
    let mut child = Command::new(activate)
        .args(["-l", &format!("127.0.0.1:{port}"), BIN, "--config"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    // systemd-socket-activate says when it listens; the daemon starts on the first client.
    while !line.contains("Listening on") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "systemd-socket-activate exited"
        );
    }
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"through the passed socket\n").unwrap();
    let mut got = Vec::new();
    let client_port = s.local_addr().unwrap().port();
    let want = format!("127.0.0.1:{client_port}: through the passed socket");
    loop {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "daemon exited: {got:?}"
        );
        got.push(line.trim_end().to_string());
        if line.contains(&want) {
            break;
        }
    }
    assert!(
        got.iter().any(|l| l.contains(&format!(
            "listening on 127.0.0.1:{port} (socket from systemd)"
        ))),
        "{got:?}"
    );
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}
