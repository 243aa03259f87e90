//! The configuration's tests: defaults, every key read, errors at `path:line:col` naming the
//! key, unknown keys refused.

use super::*;
use std::path::{Path, PathBuf};

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("test.toml"))
}

fn err(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn empty_file_gives_defaults_matching_the_classroom_server() {
    let c = parse("").unwrap();
    assert_eq!(c, Config::default());
    assert_eq!(c.port, 8888);
    assert_eq!(c.buffer_size, 1024);
    assert_eq!(c.backlog, 3);
    assert_eq!(c.bind, "::".parse::<IpAddr>().unwrap());
    assert_eq!(c.max_connections, 64);
    assert_eq!(c.max_connections_per_source, 16);
    assert_eq!(c.max_line_length, 4087);
    assert_eq!(c.rate_limit_action, RateLimitAction::Throttle);
    assert_eq!(c.stop_timeout_secs, 10);
    assert_eq!(c.idle_timeout_secs, 300);
    assert_eq!(c.framing, Framing::Line);
    assert!(c.allow.is_empty());
    assert_eq!(c.log.target, LogTarget::Journald);
    assert_eq!(c.log.journal_socket, Path::new(DEFAULT_JOURNAL_SOCKET));
    assert_eq!(c.log.syslog_server(), SyslogServer::Local);
    assert_eq!(c.max_remote_severity, Severity::Err);
    assert_eq!(c.max_remote_severity.priority(), 3);
    assert_eq!(c.remote_identifier_prefix, "");
}

#[test]
fn every_key_is_read() {
    let c = parse(
        r#"
port = 9000
buffer_size = 512
bind = "127.0.0.1"
backlog = 16
max_connections = 10
max_line_length = 100
idle_timeout_secs = 0
framing = "raw"
allow = ["192.168.0.0/16", "::1"]
max_lines_per_sec = 0
max_lines_burst = 7
max_connections_per_source = 3
rate_limit_action = "drop"
stop_timeout_secs = 4
max_remote_severity = "emerg"
remote_identifier_prefix = "remote-"
[log]
target = "syslog"
journal_socket = "/run/systemd/journal.test/socket"
syslog_server = "udp://loghost:514"
"#,
    )
    .unwrap();
    assert_eq!(c.port, 9000);
    assert_eq!(c.buffer_size, 512);
    assert_eq!(c.bind, "127.0.0.1".parse::<IpAddr>().unwrap());
    assert_eq!(c.backlog, 16);
    assert_eq!(c.max_connections, 10);
    assert_eq!(c.max_line_length, 100);
    assert_eq!(c.idle_timeout_secs, 0);
    assert_eq!(c.framing, Framing::Raw);
    assert_eq!(c.allow.len(), 2);
    assert_eq!(c.max_lines_per_sec, 0);
    assert_eq!(c.max_lines_burst, 7);
    assert_eq!(c.max_connections_per_source, 3);
    assert_eq!(c.rate_limit_action, RateLimitAction::Drop);
    assert_eq!(c.stop_timeout_secs, 4);
    assert_eq!(c.max_remote_severity, Severity::Emerg);
    assert_eq!(c.remote_identifier_prefix, "remote-");
    assert_eq!(c.log.target, LogTarget::Syslog);
    assert_eq!(
        c.log.journal_socket,
        Path::new("/run/systemd/journal.test/socket")
    );
    assert_eq!(
        c.log.syslog_server(),
        SyslogServer::Udp("loghost:514".into())
    );
    let tcp = parse("[log]\nsyslog_server = \"tcp://10.0.0.1:601\"").unwrap();
    assert_eq!(
        tcp.log.syslog_server(),
        SyslogServer::Tcp("10.0.0.1:601".into())
    );
}

#[test]
fn allow_names_without_client_ca_is_an_error_at_the_key_not_at_a_comment_naming_it() {
    let text = "# allow_names needs client_ca\n\
                [tls]\n\
                certificate = \"/etc/tls.pem\"\n\
                private_key = \"/etc/tls.key\"\n\
                #allow_names = [\"commented.example.org\"]\n\
                allow_names = [\"sensor1.example.org\"]\n";
    assert_eq!(
        err(text),
        "test.toml:6:15: key `tls.allow_names`: needs `tls.client_ca` (names come from \
         client certificates)"
    );
}

#[test]
fn every_framing_is_read() {
    for (text, framing) in [
        ("line", Framing::Line),
        ("raw", Framing::Raw),
        ("syslog", Framing::Syslog),
    ] {
        let c = parse(&format!("framing = \"{text}\"\n")).unwrap();
        assert_eq!(c.framing, framing);
        assert!(c.to_toml().contains(&format!("framing = \"{text}\"")));
    }
}

#[test]
fn unknown_keys_are_rejected_with_their_position() {
    assert_eq!(
        err("port = 1\nprot = 2\n")
            .split(", expected")
            .next()
            .unwrap(),
        "test.toml:2:1: unknown field `prot`"
    );
    let e = err("[log]\ntarget = \"stderr\"\ncolour = true\n");
    assert!(
        e.starts_with("test.toml:3:1: unknown field `colour`"),
        "{e}"
    );
    let e = err("[logging]\n");
    assert!(
        e.starts_with("test.toml:1:2: unknown field `logging`"),
        "{e}"
    );
}

#[test]
fn bad_types_name_line_column_and_key() {
    let e = err("# comment\nport = \"eighty\"\n");
    assert!(
        e.starts_with("test.toml:2:8: key `port`: invalid type: string"),
        "{e}"
    );
    let e = err("port = 70000\n");
    assert!(e.starts_with("test.toml:1:8: key `port`:"), "{e}");
    let e = err("[log]\ntarget = \"carrier-pigeon\"\n");
    assert!(
        e.starts_with("test.toml:2:10: key `log.target`: unknown variant `carrier-pigeon`"),
        "{e}"
    );
    let e = err("framing = \"words\"\n");
    assert!(
        e.starts_with("test.toml:1:11: key `framing`: unknown variant `words`"),
        "{e}"
    );
}

#[test]
fn bad_values_name_line_column_and_key() {
    assert_eq!(
        err("buffer_size = 0\n"),
        "test.toml:1:15: key `buffer_size`: 0 is out of range: expected 1 to 1048576"
    );
    assert_eq!(
        err("\nbacklog = 0\n"),
        "test.toml:2:11: key `backlog`: 0 is out of range: expected 1 to 65535"
    );
    let e = err("max_connections = 0");
    assert!(
        e.starts_with("test.toml:1:19: key `max_connections`: 0 is out of range"),
        "{e}"
    );
    let e = err("max_line_length = 3");
    assert!(
        e.starts_with("test.toml:1:19: key `max_line_length`: 3 is out of range"),
        "{e}"
    );
    let e = err("bind = \"localhost\"\n");
    assert!(
        e.starts_with("test.toml:1:8: key `bind`: invalid IP address syntax"),
        "{e}"
    );
    let e = err("allow = [\"10.0.0.0/8\", \"10.0.0.0/33\"]\n");
    assert!(e.starts_with("test.toml:1:"), "{e}");
    assert!(
        e.contains("key `allow`") && e.contains("10.0.0.0/33"),
        "{e}"
    );
    let e = err("[log]\nsyslog_server = \"http://x:1\"\n");
    assert!(
        e.starts_with("test.toml:2:17: key `log.syslog_server`:"),
        "{e}"
    );
    // Issue 17 item 13: an unknown scheme is named as such, whatever follows it (before,
    // `ftp://x` was told it lacked a port).
    for (value, scheme) in [
        ("http://x:1", "http"),
        ("ftp://x", "ftp"),
        ("tls://", "tls"),
    ] {
        let e = err(&format!("[log]\nsyslog_server = \"{value}\"\n"));
        assert_eq!(
            e,
            format!(
                "test.toml:2:17: key `log.syslog_server`: `{value}`: the scheme {scheme}:// \
                 is not supported: expected \"\" (the local /dev/log), \"udp://host:port\" \
                 or \"tcp://host:port\""
            )
        );
    }
    let e = err("[log]\nsyslog_server = \"loghost:514\"\n");
    assert!(e.ends_with("`loghost:514` is not \"\" (the local /dev/log), \"udp://host:port\" or \"tcp://host:port\""), "{e}");
    let e = err("[log]\nsyslog_server = \"udp://nohost\"\n");
    assert!(e.contains("expected host:port"), "{e}");
    assert_eq!(
        err("port = 0\n"),
        "test.toml:1:8: key `port`: 0 is out of range: expected 1 to 65535"
    );
    assert_eq!(
        err("[log]\njournal_socket = \"\"\n"),
        "test.toml:2:18: key `log.journal_socket`: `` is not an absolute path"
    );
    assert_eq!(
        err("[log]\njournal_socket = \"run/journal\"\n"),
        "test.toml:2:18: key `log.journal_socket`: `run/journal` is not an absolute path"
    );
    let e = err("stop_timeout_secs = 0\n");
    assert!(
        e.starts_with("test.toml:1:21: key `stop_timeout_secs`: 0 is out of range"),
        "{e}"
    );
    let e = err("rate_limit_action = \"ignore\"\n");
    assert!(
        e.starts_with("test.toml:1:21: key `rate_limit_action`: unknown variant `ignore`"),
        "{e}"
    );
}

#[test]
fn every_severity_is_read_by_its_syslog_name() {
    let names = [
        "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
    ];
    for (priority, name) in names.iter().enumerate() {
        let c = parse(&format!("max_remote_severity = \"{name}\"\n")).unwrap();
        assert_eq!(usize::from(c.max_remote_severity.priority()), priority);
        assert!(c
            .to_toml()
            .contains(&format!("max_remote_severity = \"{name}\"")));
    }
    let e = err("max_remote_severity = \"error\"\n");
    assert!(
        e.starts_with("test.toml:1:23: key `max_remote_severity`: unknown variant `error`"),
        "{e}"
    );
    assert!(e.contains("`err`"), "{e}");
    assert_eq!(
        err("max_remote_severity = 3\n"),
        "test.toml:1:23: key `max_remote_severity`: wanted string or table"
    );
}

#[test]
fn a_remote_identifier_prefix_is_short_and_plain() {
    for ok in ["", "remote-", "lan.", "pi_2:"] {
        let c = parse(&format!("remote_identifier_prefix = \"{ok}\"\n")).unwrap();
        assert_eq!(c.remote_identifier_prefix, ok);
    }
    assert_eq!(
        err("\nremote_identifier_prefix = \"re mote\"\n"),
        "test.toml:2:28: key `remote_identifier_prefix`: `re mote`: expected at most 32 \
         letters, digits, `-`, `_`, `.` or `:` (such as \"remote-\"), or \"\" for \
         identifiers as sent"
    );
    let long = "x".repeat(MAX_IDENTIFIER_PREFIX + 1);
    let e = err(&format!("remote_identifier_prefix = \"{long}\"\n"));
    assert!(
        e.starts_with("test.toml:1:28: key `remote_identifier_prefix`:"),
        "{e}"
    );
}

#[test]
fn a_journal_namespace_takes_the_client_entries() {
    let c = parse("[log]\nnamespace = \"tcp-listener\"\n").unwrap();
    assert_eq!(c.log.namespace.as_deref(), Some("tcp-listener"));
    assert_eq!(
        c.log.namespace_socket(),
        Some(PathBuf::from("/run/systemd/journal.tcp-listener/socket"))
    );
    assert!(c.to_toml().contains("namespace = \"tcp-listener\""));
    assert_eq!(parse(&c.to_toml()).unwrap(), c);
    // None by default: everything in the main journal; not printed.
    let c = parse("").unwrap();
    assert_eq!(
        (c.log.namespace.as_deref(), c.log.namespace_socket()),
        (None, None)
    );
    assert!(!c.to_toml().contains("namespace"));
    for bad in ["", ".hidden", "a/b", "two words", "x@y"] {
        let e = err(&format!("[log]\nnamespace = \"{bad}\"\n"));
        assert_eq!(
            e,
            format!(
                "test.toml:2:13: key `log.namespace`: `{bad}`: expected a journal namespace \
                 name such as \"tcp-listener\": 1 to 64 letters, digits, `-`, `_` or `.`, \
                 not starting with `.`"
            )
        );
    }
    assert_eq!(
        err("[log]\n# namespace = \"x\"\ntarget = \"stderr\"\nnamespace = \"tcp-listener\"\n"),
        "test.toml:4:13: key `log.namespace`: needs `target = \"journald\"` (a journal \
         namespace is journald's)"
    );
}

#[test]
fn syntax_errors_have_a_position() {
    let e = err("port = 1\nbind = \n");
    assert!(e.starts_with("test.toml:2:"), "{e}");
}

#[test]
fn effective_config_round_trips() {
    let c = parse("port = 1234\nallow = [\"10.0.0.0/8\"]\n[log]\ntarget = \"stderr\"\n").unwrap();
    let again = parse(&c.to_toml()).unwrap();
    assert_eq!(c, again);
}
