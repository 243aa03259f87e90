//! The configuration file: its keys, their defaults, and errors that name `path:line:col` and the key.
//!
//! Values are checked while they are deserialized, so a bad value is reported at its own position
//! in the file, exactly like a type error or an unknown key.

use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::path::{Path, PathBuf};

use crate::cidr::Cidr;

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

/// The socket journald listens on for native-protocol entries.
pub const DEFAULT_JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// TCP port to listen on (not 0: clients must know where to connect).
    #[serde(deserialize_with = "port")]
    pub port: u16,
    /// Bytes read from a client at a time.
    #[serde(deserialize_with = "buffer_size")]
    pub buffer_size: usize,
    /// Address to bind: `::` is dual-stack (falls back to `0.0.0.0` without IPv6).
    pub bind: IpAddr,
    /// listen(2) backlog.
    #[serde(deserialize_with = "backlog")]
    pub backlog: i32,
    /// Clients served at once; the next one is refused.
    #[serde(deserialize_with = "positive_usize")]
    pub max_connections: usize,
    /// Clients from one address served at once; the next one from it is refused.
    #[serde(deserialize_with = "positive_usize")]
    pub max_connections_per_source: usize,
    /// The longest MESSAGE, in bytes: a line whose MESSAGE would be longer is logged in pieces
    /// marked as continued, each MESSAGE (prefix and mark included) at most this long.
    #[serde(deserialize_with = "max_line_length")]
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
    #[serde(deserialize_with = "stop_timeout_secs")]
    pub stop_timeout_secs: u64,
    /// The most severe PRIORITY a remote syslog message is logged at: a message sent more
    /// severe is logged at this one (its own severity in REMOTE_PRIORITY), so that no remote
    /// host can make journald write to terminals. `emerg` lifts the floor.
    pub max_remote_severity: Severity,
    /// Put before the SYSLOG_IDENTIFIER a remote syslog message names (`remote-` makes
    /// `sshd` `remote-sshd`); empty = as sent.
    #[serde(deserialize_with = "identifier_prefix")]
    pub remote_identifier_prefix: String,
    /// A UDP socket on the same address and port too: one datagram, one message (see
    /// `udp/`). Off by default; TCP stays on either way.
    pub udp: bool,
    /// The UDP socket's receive buffer (SO_RCVBUF), in bytes: what the kernel queues while
    /// the daemon is busy; `net.core.rmem_max` caps what it grants.
    #[serde(deserialize_with = "udp_receive_buffer")]
    pub udp_receive_buffer: usize,
    /// The longest UDP datagram read whole; a longer one is logged cut, marked and counted.
    #[serde(deserialize_with = "udp_max_datagram")]
    pub udp_max_datagram: usize,
    pub log: LogConfig,
    /// TLS on the port (instead of plain TCP), when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
}

/// The `[tls]` section: with it, the port speaks TLS only (see `tls.rs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM: the daemon's certificate, then any intermediates.
    #[serde(deserialize_with = "pem_path")]
    pub certificate: PathBuf,
    /// PEM: its private key (PKCS#8, PKCS#1 or SEC1).
    #[serde(deserialize_with = "pem_path")]
    pub private_key: PathBuf,
    /// PEM: the CAs whose certificates clients must present. Absent: no client certificate
    /// is asked for.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_pem_path"
    )]
    pub client_ca: Option<PathBuf>,
    /// The lowest protocol version accepted.
    #[serde(default)]
    pub min_version: TlsVersion,
    /// With `client_ca`: the certificate names (a DNS subject alternative name or the common
    /// name; `*.example.org` matches one label) allowed; empty = any certificate `client_ca`
    /// signed.
    #[serde(default, deserialize_with = "names")]
    pub allow_names: Vec<String>,
    /// A client that has not finished its handshake this long after connecting is refused.
    #[serde(
        default = "default_handshake_timeout",
        deserialize_with = "handshake_timeout_secs"
    )]
    pub handshake_timeout_secs: u64,
    /// Handshakes in progress at once; the next client is refused.
    #[serde(
        default = "default_max_handshakes",
        deserialize_with = "positive_usize"
    )]
    pub max_handshakes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum TlsVersion {
    #[default]
    #[serde(rename = "1.2")]
    V1_2,
    #[serde(rename = "1.3")]
    V1_3,
}

fn default_handshake_timeout() -> u64 {
    10
}

fn default_max_handshakes() -> usize {
    16
}

fn handshake_timeout_secs<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    in_range(d, 1, 60)
}

/// What a PEM path in `[tls]` may start with: systemd's credentials directory
/// (`LoadCredential=`), expanded when the file is read.
pub const CREDENTIALS_PREFIX: &str = "${CREDENTIALS_DIRECTORY}/";

fn check_pem_path(path: &Path) -> Result<(), String> {
    let text = path.to_string_lossy();
    let rest = text.strip_prefix(CREDENTIALS_PREFIX);
    if rest.is_some_and(|r| !r.is_empty() && !r.contains('/')) || path.is_absolute() {
        return Ok(());
    }
    Err(format!(
        "`{text}` is not an absolute path or {CREDENTIALS_PREFIX}NAME (a LoadCredential= name)"
    ))
}

fn pem_path<'de, D: Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
    let path = PathBuf::deserialize(d)?;
    check_pem_path(&path).map_err(serde::de::Error::custom)?;
    Ok(path)
}

fn optional_pem_path<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
    pem_path(d).map(Some)
}

fn names<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let names = Vec::<String>::deserialize(d)?;
    for name in &names {
        let body = name.strip_prefix("*.").unwrap_or(name);
        let ok = !body.is_empty()
            && !body.contains('*')
            && body
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b',' && b != b'\\');
        if !ok {
            return Err(serde::de::Error::custom(format!(
                "`{name}`: expected a certificate name such as `sensor1.example.org`, or \
                 `*.example.org` for one label"
            )));
        }
    }
    Ok(names.iter().map(|n| n.to_ascii_lowercase()).collect())
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

fn identifier_prefix<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let prefix = String::deserialize(d)?;
    let ok = prefix.len() <= MAX_IDENTIFIER_PREFIX
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    if !ok {
        return Err(serde::de::Error::custom(format!(
            "`{prefix}`: expected at most {MAX_IDENTIFIER_PREFIX} letters, digits, `-`, `_`, \
             `.` or `:` (such as \"remote-\"), or \"\" for identifiers as sent"
        )));
    }
    Ok(prefix)
}

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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub target: LogTarget,
    /// Where the daemon's own entries go (and, without `namespace`, every entry).
    #[serde(deserialize_with = "absolute_path")]
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
            max_remote_severity: Severity::Err,
            remote_identifier_prefix: String::new(),
            udp: false,
            udp_receive_buffer: 212_992,
            udp_max_datagram: 65_535,
            log: LogConfig::default(),
            tls: None,
        }
    }
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

fn in_range<'de, D, T>(d: D, min: T, max: T) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + PartialOrd + fmt::Display,
{
    let v = T::deserialize(d)?;
    if v < min || v > max {
        return Err(serde::de::Error::custom(format!(
            "{v} is out of range: expected {min} to {max}"
        )));
    }
    Ok(v)
}

fn port<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    in_range(d, 1, 65535)
}

/// The unit's TimeoutStopSec= (30 s) must stay above it.
pub const MAX_STOP_TIMEOUT_SECS: u64 = 25;

fn stop_timeout_secs<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    in_range(d, 1, MAX_STOP_TIMEOUT_SECS)
}

fn absolute_path<'de, D: Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
    let path = PathBuf::deserialize(d)?;
    if !path.is_absolute() {
        return Err(serde::de::Error::custom(format!(
            "`{}` is not an absolute path",
            path.display()
        )));
    }
    Ok(path)
}

fn buffer_size<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    in_range(d, 1, 1 << 20)
}

fn udp_receive_buffer<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    in_range(d, 4096, 1 << 28)
}

fn udp_max_datagram<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    in_range(d, 64, 65_535)
}

fn backlog<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    in_range(d, 1, 65535)
}

fn positive_usize<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    in_range(d, 1, 1 << 20)
}

fn max_line_length<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    in_range(d, 4, MAX_LINE_LENGTH_MAX)
}

/// A configuration error, printed as `path:line:col: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: PathBuf,
    /// 1-based line and column, when the error has a position in the file.
    pub position: Option<(usize, usize)>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, col)) => {
                write!(f, "{}:{line}:{col}: {}", self.path.display(), self.message)
            }
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads and checks a configuration file: a regular file of at most
    /// [`MAX_CONFIG_BYTES`]. Anything else (a FIFO, a device such as `/dev/zero`, a
    /// directory) is refused with the path and what it is, without blocking on it or reading
    /// it: the file is opened non-blocking and looked at (fstat) before a byte is read.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let error = |message: String| ConfigError {
            path: path.to_owned(),
            position: None,
            message,
        };
        let text = read_config_file(path).map_err(error)?;
        Config::parse(&text, path)
    }

    /// Parses configuration text; `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config = Config::parse_fields(text, path)?;
        if let Some(tls) = &config.tls {
            if !tls.allow_names.is_empty() && tls.client_ca.is_none() {
                let position = allow_names_at(text).map(|at| line_col(text, at));
                return Err(ConfigError {
                    path: path.to_owned(),
                    position,
                    message: "key `tls.allow_names`: needs `tls.client_ca` (names come from \
                              client certificates)"
                        .into(),
                });
            }
        }
        if config.log.namespace.is_some() && config.log.target != LogTarget::Journald {
            let position = namespace_at(text).map(|at| line_col(text, at));
            return Err(ConfigError {
                path: path.to_owned(),
                position,
                message: "key `log.namespace`: needs `target = \"journald\"` (a journal \
                          namespace is journald's)"
                    .into(),
            });
        }
        Ok(config)
    }

    fn parse_fields(text: &str, path: &Path) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| {
            let span = e.span();
            let position = span.as_ref().map(|s| line_col(text, s.start));
            let key = span.and_then(|s| key_at(text, s.start));
            let mut message = e.message().trim().to_string();
            if let Some(key) = key {
                let leaf = key.rsplit('.').next().unwrap_or(&key);
                if !message.contains(&format!("`{leaf}`")) {
                    message = format!("key `{key}`: {message}");
                }
            }
            ConfigError {
                path: path.to_owned(),
                position,
                message,
            }
        })
    }

    /// The effective configuration as TOML, as `--check-config` prints it.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a Config always serializes")
    }
}

/// The largest configuration file read: the shipped one, every comment included, is under
/// 10 KiB.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// What a file that is not a regular file is, in words.
fn not_regular(kind: std::fs::FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    Some(if kind.is_file() {
        return None;
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "a special file"
    })
}

/// The text of a configuration file, or why it cannot be one, in words.
fn read_config_file(path: &Path) -> Result<String, String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let not_a_file = |what: &str| {
        format!("cannot read: it is {what}, not a regular file: a configuration must be a file")
    };
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, for ever.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| {
            // A socket cannot be opened at all (ENXIO): say what it is rather than that.
            match std::fs::metadata(path)
                .ok()
                .and_then(|m| not_regular(m.file_type()))
            {
                Some(what) => not_a_file(what),
                None => format!("cannot read: {e}"),
            }
        })?;
    let meta = file.metadata().map_err(|e| format!("cannot read: {e}"))?;
    if let Some(what) = not_regular(meta.file_type()) {
        return Err(not_a_file(what));
    }
    let too_large = |size: u64| {
        format!(
            "cannot read: the file is {size} bytes, more than the {MAX_CONFIG_BYTES} (1 MiB) \
             a configuration may be"
        )
    };
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(too_large(meta.len()));
    }
    // Bounded again while reading: the file may grow after the fstat.
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "cannot read: the file is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

/// Where the value of `tls.allow_names` starts in `text`, as toml reports its own errors.
fn allow_names_at(text: &str) -> Option<usize> {
    #[derive(Deserialize)]
    struct Document {
        tls: Option<Tls>,
    }
    #[derive(Deserialize)]
    struct Tls {
        allow_names: Option<toml::Spanned<toml::Value>>,
    }
    let document: Document = toml::from_str(text).ok()?;
    Some(document.tls?.allow_names?.span().start)
}

/// Where the value of `log.namespace` starts in `text`.
fn namespace_at(text: &str) -> Option<usize> {
    #[derive(Deserialize)]
    struct Document {
        log: Option<Log>,
    }
    #[derive(Deserialize)]
    struct Log {
        namespace: Option<toml::Spanned<toml::Value>>,
    }
    let document: Document = toml::from_str(text).ok()?;
    Some(document.log?.namespace?.span().start)
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// The key assigned on the line holding `offset`, with its `[table]` prefix.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let (key, _) = text[line_start..line_end].split_once('=')?;
    let key = key.trim().trim_matches('"');
    if key.is_empty() || key.starts_with('#') || key.starts_with('[') {
        return None;
    }
    let table = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && !l.starts_with("[["))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    Some(match table {
        Some(t) => format!("{t}.{key}"),
        None => key.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let c =
            parse("port = 1234\nallow = [\"10.0.0.0/8\"]\n[log]\ntarget = \"stderr\"\n").unwrap();
        let again = parse(&c.to_toml()).unwrap();
        assert_eq!(c, again);
    }
}
