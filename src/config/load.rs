//! Reading a configuration: the file (a regular file of at most 1 MiB, looked at before it is
//! read), the text parsed into a `Config`, the checks across keys, and errors printed as
//! `path:line:col: message` naming the key.

use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

use super::{Config, LogTarget};

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
    struct WithTls {
        tls: Option<TlsTable>,
    }
    #[derive(Deserialize)]
    struct TlsTable {
        allow_names: Option<toml::Spanned<toml::Value>>,
    }
    let document: WithTls = toml::from_str(text).ok()?;
    Some(document.tls?.allow_names?.span().start)
}

/// Where the value of `log.namespace` starts in `text`.
fn namespace_at(text: &str) -> Option<usize> {
    #[derive(Deserialize)]
    struct WithLog {
        log: Option<LogTable>,
    }
    #[derive(Deserialize)]
    struct LogTable {
        namespace: Option<toml::Spanned<toml::Value>>,
    }
    let document: WithLog = toml::from_str(text).ok()?;
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
