//! The `[log]` section: where entries go (journald, a journal namespace, syslog, stderr), its
//! defaults, and the checks of its values.

use serde::{Deserialize, Deserializer, Serialize};
use std::path::PathBuf;

/// The socket journald listens on for native-protocol entries.
pub const DEFAULT_JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub target: LogTarget,
    /// Where the daemon's own entries go (and, without `namespace`, every entry).
    #[serde(deserialize_with = "super::validate::absolute_path")]
    pub journal_socket: PathBuf,
    #[serde(deserialize_with = "syslog_server")]
    pub syslog_server: String,
    /// With `target = "journald"`: the journal namespace that client entries (lines and
    /// connections) go to, at `/run/systemd/journal.NAME/socket`; none = the main journal.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "namespace"
    )]
    pub namespace: Option<String>,
}

/// The longest journal namespace name accepted (systemd allows more; this is plenty).
pub const MAX_NAMESPACE: usize = 64;

/// The socket a journal namespace's journald listens on for native-protocol entries
/// (systemd-journald@NAME.socket's `ListenDatagram=`).
pub fn namespace_socket(name: &str) -> PathBuf {
    PathBuf::from(format!("/run/systemd/journal.{name}/socket"))
}

fn namespace<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let name = String::deserialize(d)?;
    // A part of systemd's rule (a file name, a unit instance name), kept simple.
    let ok = (1..=MAX_NAMESPACE).contains(&name.len())
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !ok {
        return Err(serde::de::Error::custom(format!(
            "`{name}`: expected a journal namespace name such as \"tcp-listener\": 1 to \
             {MAX_NAMESPACE} letters, digits, `-`, `_` or `.`, not starting with `.`"
        )));
    }
    Ok(Some(name))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogTarget {
    Journald,
    Syslog,
    Stderr,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            target: LogTarget::Journald,
            journal_socket: PathBuf::from(DEFAULT_JOURNAL_SOCKET),
            syslog_server: String::new(),
            namespace: None,
        }
    }
}

/// Where a remote syslog server is, parsed from `log.syslog_server`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyslogServer {
    Local,
    Udp(String),
    Tcp(String),
}

impl LogConfig {
    pub fn syslog_server(&self) -> SyslogServer {
        parse_syslog_server(&self.syslog_server).expect("validated when loaded")
    }

    /// The socket client entries go to when they do not go to `journal_socket`.
    pub fn namespace_socket(&self) -> Option<PathBuf> {
        self.namespace.as_deref().map(namespace_socket)
    }
}

fn parse_syslog_server(s: &str) -> Result<SyslogServer, String> {
    if s.is_empty() {
        return Ok(SyslogServer::Local);
    }
    const FORMS: &str = "\"\" (the local /dev/log), \"udp://host:port\" or \"tcp://host:port\"";
    let (scheme, rest) = s
        .split_once("://")
        .ok_or_else(|| format!("`{s}` is not {FORMS}"))?;
    let server: fn(String) -> SyslogServer = match scheme {
        "udp" => SyslogServer::Udp,
        "tcp" => SyslogServer::Tcp,
        _ => {
            return Err(format!(
                "`{s}`: the scheme {scheme}:// is not supported: expected {FORMS}"
            ))
        }
    };
    let has_port = rest
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if !has_port {
        return Err(format!("`{s}`: expected host:port after {scheme}://"));
    }
    Ok(server(rest.to_string()))
}

fn syslog_server<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    parse_syslog_server(&s).map_err(serde::de::Error::custom)?;
    Ok(s)
}
