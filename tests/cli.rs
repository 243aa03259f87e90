//! The command line: exit codes and messages, as a user sees them.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{test_config, Daemon, TempDir, BIN};

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
            let o = check_shipped(&path);
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
    assert!(checked >= 4, "config/{{tcp-listener,dev,syslog,tls}}.toml");
}

/// `--check-config` on a shipped configuration, as its unit would run it: one with a `[tls]`
/// section (config/tls.toml) gets a real certificate at the path it names and its key as the
/// credential `tls-key` in `$CREDENTIALS_DIRECTORY`, which its unit's `LoadCredential=` passes.
fn check_shipped(path: &std::path::Path) -> Output {
    let text = std::fs::read_to_string(path).unwrap();
    if !text.lines().any(|l| l.trim() == "[tls]") {
        return run(&["--check-config", "--config", path.to_str().unwrap()]);
    }
    let dir = std::env::temp_dir().join(format!("tcpl-shipped-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let o = Command::new("openssl")
        .current_dir(&dir)
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args([
            "-nodes", "-keyout", "tls-key", "-out", "tls.pem", "-days", "2",
        ])
        .args(["-subj", "/CN=pi.local"])
        .output()
        .expect("run openssl");
    assert!(o.status.success(), "openssl: {}", stderr(&o));
    let cert = "/etc/tcp-listener/tls.pem";
    assert!(text.contains(cert), "{}: names {cert}", path.display());
    let conf = dir.join("shipped.toml");
    let local = dir.join("tls.pem");
    std::fs::write(&conf, text.replace(cert, local.to_str().unwrap())).unwrap();
    let o = Command::new(BIN)
        .args(["--check-config", "--config", conf.to_str().unwrap()])
        .env("CREDENTIALS_DIRECTORY", &dir)
        .output()
        .expect("run tcp-listener");
    let _ = std::fs::remove_dir_all(&dir);
    o
}

/// Runs the binary with its address space bounded (so that reading `/dev/zero` into memory
/// fails fast instead of taking the machine's), and kills it if it has not exited within
/// `timeout`: `Err` then says it was still running.
fn run_bounded(args: &[&str], timeout: Duration) -> Result<Output, String> {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: only setrlimit, which is async-signal-safe, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 1 << 30,
                rlim_max: 1 << 30,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("run tcp-listener");
    let deadline = Instant::now() + timeout;
    while child.try_wait().expect("wait for tcp-listener").is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("still running after {timeout:?}: {args:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut out = Output {
        status: child.wait().unwrap(),
        stdout: Vec::new(),
        stderr: Vec::new(),
    };
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut out.stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_end(&mut out.stderr)
        .unwrap();
    Ok(out)
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// Issue 17 item 8: `--config` on a FIFO blocked for ever, on `/dev/zero` read until memory
/// ran out. Each is refused at once, exit 78, with its path and what it is, by `--check-config`
/// and by the daemon's start alike.
#[test]
fn a_config_that_is_not_a_regular_file_or_is_too_large_is_refused_at_once() {
    let dir = TempDir::new();
    let fifo = dir.0.join("fifo.toml");
    mkfifo(&fifo);
    let large = dir.0.join("large.toml");
    // Valid TOML (comments), 2 MiB: refused for its size, not its content.
    let mut f = std::fs::File::create(&large).unwrap();
    let comment = format!("# {}\n", "x".repeat(1021));
    for _ in 0..2048 {
        f.write_all(comment.as_bytes()).unwrap();
    }
    drop(f);
    let cases = [
        (
            fifo.to_str().unwrap(),
            "it is a FIFO (named pipe), not a regular file",
        ),
        ("/dev/zero", "it is a character device, not a regular file"),
        (
            dir.0.to_str().unwrap(),
            "it is a directory, not a regular file",
        ),
        (
            large.to_str().unwrap(),
            "the file is 2097152 bytes, more than the 1048576 (1 MiB) a configuration may be",
        ),
    ];
    for (path, why) in cases {
        for check in [true, false] {
            let mut args = vec!["--config", path];
            if check {
                args.insert(0, "--check-config");
            }
            let o = run_bounded(&args, Duration::from_secs(10)).unwrap_or_else(|e| panic!("{e}"));
            let want = format!("tcp-listener: {path}: cannot read: {why}");
            assert_eq!(o.status.code(), Some(78), "{args:?}: {}", stderr(&o));
            assert!(stderr(&o).contains(&want), "{args:?}: {}", stderr(&o));
        }
    }
}

/// Issue 17 item 8, on SIGHUP: a configuration replaced by a FIFO (or `/dev/zero`) is
/// reported in words and the running configuration stays; the daemon serves on (before, the
/// reload blocked the whole loop for ever in open(2)).
#[test]
fn a_reload_from_a_fifo_or_a_device_keeps_the_running_config_and_serves_on() {
    let mut daemon = Daemon::start(&test_config(None, ""));
    let mut client = daemon.connect();
    let fifo = daemon.config_path.with_file_name("fifo.toml");
    mkfifo(&fifo);
    let zero = daemon.config_path.with_file_name("zero.toml");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    for (n, (path, why)) in [
        (&fifo, "it is a FIFO (named pipe), not a regular file"),
        (&zero, "it is a character device, not a regular file"),
    ]
    .into_iter()
    .enumerate()
    {
        std::fs::rename(path, &daemon.config_path).unwrap();
        daemon.signal(libc::SIGHUP);
        let line = daemon.wait_stderr(why);
        assert!(
            line.contains(&format!(
                "reload failed, the running configuration stays in force: {}: cannot read: {why}",
                daemon.config_path.display()
            )),
            "{line}"
        );
        // Still serving: a line sent now is logged.
        let text = format!("after reload {n}");
        client.write_all(format!("{text}\n").as_bytes()).unwrap();
        daemon.wait_stderr(&format!(": {text}"));
    }
    daemon.signal(libc::SIGTERM);
    assert!(daemon.wait_exit(Duration::from_secs(10)).success());
}

/// Issue 17 items 8 and 13 (one source for each fact): every document that lists the
/// configuration keys names every key the daemon reads (they are the effective configuration
/// `--check-config` prints, `[tls]` included). doc/INTERFACE.md, a second copy of the
/// interface that had gone stale (no `stop_timeout_secs`, no `rate_limit_action`), failed it
/// and is gone: README.md, the man page and `--check-config` are the interface. Issue 18:
/// tests/documents.rs checks these documents against src/config/keys.rs, defaults and
/// meanings included; this stays as the plain check that each names every key.
#[test]
fn every_document_listing_the_keys_names_every_key() {
    let text =
        "[tls]\ncertificate = \"/c.pem\"\nprivate_key = \"/k.pem\"\nclient_ca = \"/ca.pem\"\n";
    let config = tcp_listener::config::Config::parse(text, Path::new("tls.toml")).unwrap();
    let keys: Vec<String> = config
        .to_toml()
        .lines()
        .filter_map(|l| l.split_once(" = ").map(|(k, _)| k.trim().to_string()))
        .collect();
    assert!(keys.len() >= 24, "{keys:?}");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut documents = vec![
        root.join("README.md"),
        root.join("packaging/tcp-listener.8"),
        root.join("config/tcp-listener.toml"),
    ];
    if let Ok(dir) = std::fs::read_dir(root.join("doc")) {
        documents.extend(dir.map(|e| e.unwrap().path()));
    }
    for document in documents {
        let text = std::fs::read_to_string(&document).unwrap();
        let missing: Vec<&String> = keys.iter().filter(|k| !text.contains(k.as_str())).collect();
        assert!(
            missing.is_empty(),
            "{} does not name {missing:?}",
            document.display()
        );
    }
}

/// Issue 17 item 13: the unit's comment on LogRateLimitIntervalSec= says what the daemon
/// does over the limit by default (it throttles: nothing is dropped), not only what `drop`
/// does.
#[test]
fn the_units_rate_limit_comment_says_what_the_default_does() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/packaging/tcp-listener.service"
    ))
    .unwrap();
    let before = unit.split("\nLogRateLimitIntervalSec=0").next().unwrap();
    let comment: String = before
        .lines()
        .rev()
        .take_while(|l| l.starts_with('#'))
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .map(|l| l.trim_start_matches('#').trim())
        .collect::<Vec<_>>()
        .join(" ");
    let default = tcp_listener::config::Config::default();
    assert_eq!(
        default.rate_limit_action,
        tcp_listener::config::RateLimitAction::Throttle
    );
    for words in [
        "rate_limit_action",
        "by default it throttles",
        "nothing is lost",
        "rate_limit_action = \"drop\"",
        "LISTENER_EVENT=dropped",
    ] {
        assert!(comment.contains(words), "no {words:?} in: {comment}");
    }
}

/// Issue 17 item 13: a `syslog_server` with a scheme the daemon does not speak is told so,
/// and which schemes it does (before: "expected host:port after ftp://").
#[test]
fn an_unsupported_syslog_scheme_is_named_with_the_supported_ones() {
    let dir = TempDir::new();
    let path = dir.0.join("ftp.toml");
    std::fs::write(
        &path,
        "[log]\ntarget = \"syslog\"\nsyslog_server = \"ftp://x\"\n",
    )
    .unwrap();
    let o = run(&["--check-config", "--config", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(78));
    let want = format!(
        "tcp-listener: {}:3:17: key `log.syslog_server`: `ftp://x`: the scheme ftp:// is not \
         supported: expected \"\" (the local /dev/log), \"udp://host:port\" or \"tcp://host:port\"",
        path.display()
    );
    assert!(stderr(&o).starts_with(&want), "{}", stderr(&o));
}
