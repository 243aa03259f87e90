//! The `[tls]` section: its keys, their defaults, and the checks of its values (PEM paths,
//! certificate names).

use serde::{Deserialize, Deserializer, Serialize};
use std::path::{Path, PathBuf};

use super::validate::in_range;

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
        deserialize_with = "super::validate::positive_usize"
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
