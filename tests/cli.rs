//! The command line: exit codes and messages, as a user sees them.

mod common;

use std::process::{Command, Output};

use common::{TempDir, BIN};

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run tcp-listener")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn check_config_prints_the_effective_config_and_exits_zero() {
    let dir = TempDir::new();
    let path = dir.0.join("ok.toml");
    std::fs::write(&path, "port = 9999\n[log]\ntarget = \"stderr\"\n").unwrap();
    let o = run(&["--check-config", "--config", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("port = 9999"), "{out}");
    assert!(out.contains("backlog = 3"), "defaults are shown too: {out}");
    assert!(out.contains("target = \"stderr\""), "{out}");
}

#[test]
fn check_config_warns_of_a_journal_socket_that_is_not_a_socket() {
    let dir = TempDir::new();
    let path = dir.0.join("hostname.toml");
    std::fs::write(&path, "[log]\njournal_socket = \"/etc/hostname\"\n").unwrap();
    let o = run(&["--check-config", "--config", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "valid, if not usable here");
    assert!(
        stderr(&o).contains(
            "warning: the journal socket /etc/hostname is not a socket: here the daemon would log \
             to stderr"
        ),
        "{}",
        stderr(&o)
    );
}

/// Issue 20: `--check-config` says where client entries go with `[log] namespace`, and
/// warns when the namespace's socket is not there (its journald socket unit not started).
#[test]
fn check_config_reports_the_journal_namespace() {
    let dir = TempDir::new();
    let path = dir.0.join("ns.toml");
    std::fs::write(&path, "[log]\nnamespace = \"tcpl-absent\"\n").unwrap();
    let o = run(&["--check-config", "--config", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("namespace = \"tcpl-absent\""), "{out}");
    assert!(
        out.contains(
            "# client entries (lines, connections) go to the journal namespace tcpl-absent \
             (/run/systemd/journal.tcpl-absent/socket), the daemon's own to \
             /run/systemd/journal/socket: journalctl --namespace=tcpl-absent"
        ),
        "{out}"
    );
    assert!(
        stderr(&o).contains(
            "warning: the socket of the journal namespace tcpl-absent, \
             /run/systemd/journal.tcpl-absent/socket, does not exist: here client entries would \
             go to the main journal until it can be used (systemctl start \
             systemd-journald@tcpl-absent.socket)"
        ),
        "{}",
        stderr(&o)
    );
    // Only journald has namespaces.
    std::fs::write(&path, "[log]\ntarget = \"stderr\"\nnamespace = \"x\"\n").unwrap();
    let o = run(&["--check-config", "--config", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(78));
    assert!(
        stderr(&o).contains(
            "ns.toml:3:13: key `log.namespace`: needs `target = \"journald\"` (a journal \
             namespace is journald's)"
        ),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_bad_config_exits_78_naming_path_line_column_and_key() {
    let dir = TempDir::new();
    let path = dir.0.join("bad.toml");
    std::fs::write(&path, "port = 8888\n\n[log]\ntarget = \"journal\"\n").unwrap();
    let o = run(&["--check-config", "--config", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(78));
    let want = format!(
        "tcp-listener: {}:4:10: key `log.target`: unknown variant `journal`",
        path.display()
    );
    assert!(stderr(&o).starts_with(&want), "{}", stderr(&o));

    std::fs::write(&path, "port = 8888\nbufer_size = 10\n").unwrap();
    let o = run(&["--config", path.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(78),
        "the daemon itself refuses to start too"
    );
    assert!(
        stderr(&o).contains(&format!(
            "{}:2:1: unknown field `bufer_size`",
            path.display()
        )),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_missing_config_file_exits_78() {
    let o = run(&[
        "--check-config",
        "--config",
        "/nonexistent/tcp-listener.toml",
    ]);
    assert_eq!(o.status.code(), Some(78));
    assert!(stderr(&o).contains("/nonexistent/tcp-listener.toml: cannot read: No such file"));
}

#[test]
fn a_bind_failure_exits_1_naming_the_address_and_the_os_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = TempDir::new();
    let path = dir.0.join("c.toml");
    std::fs::write(
        &path,
        format!("bind = \"127.0.0.1\"\nport = {port}\n[log]\ntarget = \"stderr\"\n"),
    )
    .unwrap();
    let o = run(&["--config", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let want = format!(
        "tcp-listener: cannot listen on 127.0.0.1:{port}: Address already in use (os error 98)"
    );
    assert!(stderr(&o).contains(&want), "{}", stderr(&o));
}

#[test]
fn usage_errors_exit_2_and_help_and_version_exit_0() {
    let o = run(&["--frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown argument `--frobnicate`"));
    assert!(stderr(&o).contains("Usage: tcp-listener"));
    let o = run(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("--check-config"));
    let o = run(&["--version"]);
    assert_eq!(
        stdout(&o).trim(),
        format!("tcp-listener {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn every_shipped_config_is_valid() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/config");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let o = run(&["--check-config", "--config", path.to_str().unwrap()]);
            assert_eq!(
                o.status.code(),
                Some(0),
                "{}: {}",
                path.display(),
                stderr(&o)
            );
            checked += 1;
        }
    }
    assert!(checked >= 2, "config/tcp-listener.toml and config/dev.toml");
}
