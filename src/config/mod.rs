//! The configuration: the `Config` struct with its top-level keys, their defaults and the
//! enums they take. The sections live beside it: `[log]` in `log.rs`, `[tls]` in `tls.rs`;
//! the value checks in `validate.rs`; reading a file and its errors (`path:line:col` and the
//! key) in `load.rs`; what each key means, for the documents, in `keys.rs`.
//!
//! Values are checked while they are deserialized, so a bad value is reported at its own position
//! in the file, exactly like a type error or an unknown key.

use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv6Addr};

use crate::cidr::Cidr;

pub mod keys;
mod load;
mod log;
mod tls;
mod validate;

pub use load::{ConfigError, MAX_CONFIG_BYTES};
pub use log::{
    namespace_socket, LogConfig, LogTarget, SyslogServer, DEFAULT_JOURNAL_SOCKET, MAX_NAMESPACE,
};
pub use tls::{TlsConfig, TlsVersion, CREDENTIALS_PREFIX};

/// Where the daemon looks for its configuration when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/tcp-listener/config.toml";

/// The default `max_line_length`: the longest MESSAGE `journalctl -o json` prints without
/// `--all` (it prints `null` for a field of 4096 bytes or more, `MESSAGE=` included).
pub const DEFAULT_MAX_LINE_LENGTH: usize = 4087;

/// The largest `max_line_length`: 4 MiB, so that the largest entry a line can make (its
/// MESSAGE and, for a syslog message, STRUCTURED-DATA of up to 4 × as many bytes) stays
/// within the 32 MiB journald takes from an unprivileged sender (see
/// `sink/journald/encode.rs`). Until issue 17 it was 16 MiB.
pub const MAX_LINE_LENGTH_MAX: usize = 4 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// TCP port to listen on (not 0: clients must know where to connect).
    #[serde(deserialize_with = "validate::port")]
    pub port: u16,
    /// Bytes read from a client at a time.
    #[serde(deserialize_with = "validate::buffer_size")]
    pub buffer_size: usize,
    /// Address to bind: `::` is dual-stack (falls back to `0.0.0.0` without IPv6).
    pub bind: IpAddr,
    /// listen(2) backlog.
    #[serde(deserialize_with = "validate::backlog")]
    pub backlog: i32,
    /// Clients served at once; the next one is refused.
    #[serde(deserialize_with = "validate::positive_usize")]
    pub max_connections: usize,
    /// Clients from one address served at once; the next one from it is refused.
    #[serde(deserialize_with = "validate::positive_usize")]
    pub max_connections_per_source: usize,
    /// The longest MESSAGE, in bytes: a line whose MESSAGE would be longer is logged in pieces
    /// marked as continued, each MESSAGE (prefix and mark included) at most this long.
    #[serde(deserialize_with = "validate::max_line_length")]
    pub max_line_length: usize,
    /// Close a client silent this long; 0 = never.
    pub idle_timeout_secs: u64,
    /// One entry per line, per read, or per syslog message.
    pub framing: Framing,
    /// Networks allowed to connect; empty = everyone.
    pub allow: Vec<Cidr>,
    /// Lines per second one source address may send (all its connections together).
    /// 0 = no limit.
    pub max_lines_per_sec: u32,
    /// Lines a source may send in a burst above `max_lines_per_sec`.
    pub max_lines_burst: u32,
    /// What happens to lines over the limit.
    pub rate_limit_action: RateLimitAction,
    /// On SIGTERM: how long the daemon may take to read and log what it had received.
    #[serde(deserialize_with = "validate::stop_timeout_secs")]
    pub stop_timeout_secs: u64,
    /// Where the Prometheus metrics are served over HTTP (`GET /metrics`); none = not served.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// The most severe PRIORITY a remote syslog message is logged at: a message sent more
    /// severe is logged at this one (its own severity in REMOTE_PRIORITY), so that no remote
    /// host can make journald write to terminals. `emerg` lifts the floor.
    pub max_remote_severity: Severity,
    /// Put before the SYSLOG_IDENTIFIER a remote syslog message names (`remote-` makes
    /// `sshd` `remote-sshd`); empty = as sent.
    #[serde(deserialize_with = "validate::identifier_prefix")]
    pub remote_identifier_prefix: String,
    /// A UDP socket on the same address and port too: one datagram, one message (see
    /// `udp/`). Off by default; TCP stays on either way.
    pub udp: bool,
    /// The UDP socket's receive buffer (SO_RCVBUF), in bytes: what the kernel queues while
    /// the daemon is busy; `net.core.rmem_max` caps what it grants.
    #[serde(deserialize_with = "validate::udp_receive_buffer")]
    pub udp_receive_buffer: usize,
    /// Datagrams read while journald takes no entries are held in memory up to this many
    /// bytes (then the kernel queues); 0 = none.
    #[serde(deserialize_with = "validate::udp_hold_buffer")]
    pub udp_hold_buffer: usize,
    /// The longest UDP datagram read whole; a longer one is logged cut, marked and counted.
    #[serde(deserialize_with = "validate::udp_max_datagram")]
    pub udp_max_datagram: usize,
    pub log: LogConfig,
    /// TLS on the port (instead of plain TCP), when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
}

/// A syslog severity, by its name in syslog.conf(5) (`err`, not `error`); its number (0–7) is
/// journald's PRIORITY.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Emerg = 0,
    Alert = 1,
    Crit = 2,
    Err = 3,
    Warning = 4,
    Notice = 5,
    Info = 6,
    Debug = 7,
}

impl Severity {
    /// journald's PRIORITY: 0 (emerg) to 7 (debug).
    pub fn priority(self) -> u8 {
        self as u8
    }
}

/// The longest `remote_identifier_prefix`.
pub const MAX_IDENTIFIER_PREFIX: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RateLimitAction {
    /// Stop reading a source over its limit until it has budget again: TCP flow control
    /// slows it down and nothing is lost.
    Throttle,
    /// Read on, and drop (and count) the lines over the limit.
    Drop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Framing {
    /// One entry per line.
    Line,
    /// One entry per read, like the classroom server.
    Raw,
    /// One entry per syslog message (RFC 6587 syslog over TCP): each frame octet-counted
    /// (`LEN SP MSG`) or ended by LF, decided per frame, so one connection may mix them; the
    /// RFC 5424 or RFC 3164 header gives the entry's priority, facility, identifier and
    /// more. See `framing` and `syslog_message`.
    Syslog,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            port: 8888,
            buffer_size: 1024,
            bind: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            backlog: 3,
            max_connections: 64,
            max_connections_per_source: 16,
            max_line_length: DEFAULT_MAX_LINE_LENGTH,
            idle_timeout_secs: 300,
            framing: Framing::Line,
            allow: Vec::new(),
            max_lines_per_sec: 1000,
            max_lines_burst: 5000,
            rate_limit_action: RateLimitAction::Throttle,
            stop_timeout_secs: 10,
            metrics_listen: None,
            max_remote_severity: Severity::Err,
            remote_identifier_prefix: String::new(),
            udp: false,
            udp_receive_buffer: 212_992,
            udp_hold_buffer: 2_097_152,
            udp_max_datagram: 65_535,
            log: LogConfig::default(),
            tls: None,
        }
    }
}

/// The unit's TimeoutStopSec= (30 s) must stay above it.
pub const MAX_STOP_TIMEOUT_SECS: u64 = 25;

#[cfg(test)]
mod tests;
