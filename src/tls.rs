//! TLS on the port: `[tls]` → a rustls `ServerConfig`, the certificate and key loaded with
//! errors that name the file, the client's identity, and one connection's TLS session driven
//! on its non-blocking socket.
//!
//! **The port.** With `[tls]` the configured port speaks TLS only; there is no second plain
//! listener. A client certificate is worth something only if no plain port beside it lets
//! any admitted host write under any name; one port keeps one allow list, one listening
//! socket for systemd's socket activation and file descriptor store, and one rule for a
//! firewall. A site that needs both runs a second instance with its own configuration.
//!
//! **Sans-I/O.** rustls does no I/O itself: [`Session::read`] moves what the socket has into
//! it (`read_tls`), lets it process the records (`process_new_packets`), writes what it wants
//! to send (handshake messages, alerts, session tickets) and reads the plaintext out, each
//! step until the socket would block. Nothing waits: a handshake proceeds as its bytes
//! arrive, like any client's lines. The connection's socket is watched for writability as
//! well, so a handshake flight that did not fit in the socket buffer goes out later.
//!
//! **Crypto provider: ring.** It builds its C and assembly with the `cc` crate, so it needs
//! nothing the build does not have already (aws-lc-rs needs cmake, and its prebuilt-NASM and
//! bindgen setup is for other targets), and under cargo-zigbuild the ARMv6 package's build
//! compiles it with zig cc. On 32-bit ARM ring has plain ARMv4/ARMv6 code for everything and
//! NEON versions of some routines (`*_neon`, `x25519_NEON`, `bsaes_*`, `vpaes_*`), chosen at
//! run time only when `getauxval(AT_HWCAP)` has `HWCAP_NEON` (ring's `cpu/arm/linux.rs`): an
//! ARM1176 (Pi 1, Zero) has no NEON and never runs them. packaging/check-armv6 (branch
//! issue-12) finds NEON instructions in those routines and nowhere else, and must list them
//! as run-time selected, as it lists musl's and libunwind's helpers. Under
//! `qemu-arm-static -cpu arm1176` the ARMv6 binary serves TLS 1.3 (AES-GCM, ChaCha20-Poly1305,
//! X25519, ECDSA and RSA certificates) and TLS 1.2 clients.

mod reason;
mod x509;

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::net::TcpStream;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{RootCertStore, ServerConnection};

use crate::config::{TlsConfig, TlsVersion, CREDENTIALS_PREFIX};
use crate::entry::TlsFields;
use crate::escape::escape_into;

pub use x509::CertInfo;

/// What a loaded `[tls]` section serves new handshakes with.
pub struct Tls {
    pub settings: TlsConfig,
    server: Arc<ServerConfig>,
    /// The daemon's own certificate.
    pub certificate: CertInfo,
    /// Certificates in `client_ca`.
    pub client_cas: usize,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("settings", &self.settings)
            .field("certificate", &self.certificate)
            .finish()
    }
}

/// The crypto provider: ring, with its default cipher suites and key exchange groups.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A `[tls]` path as the daemon reads it: `${CREDENTIALS_DIRECTORY}/NAME` in the directory
/// systemd put the service's credentials in (`LoadCredential=`).
pub fn resolve(path: &Path) -> Result<PathBuf, String> {
    let text = path.to_string_lossy();
    let Some(name) = text.strip_prefix(CREDENTIALS_PREFIX) else {
        return Ok(path.to_owned());
    };
    match std::env::var_os("CREDENTIALS_DIRECTORY") {
        Some(dir) => Ok(Path::new(&dir).join(name)),
        None => Err(format!(
            "{text}: $CREDENTIALS_DIRECTORY is not set (only a service with LoadCredential= has \
             it; outside it, point the key at the file itself)"
        )),
    }
}

/// The PEM file at `path` (`what` names the key in `[tls]`), read whole.
fn read_pem(what: &str, path: &Path) -> Result<(PathBuf, Vec<u8>), String> {
    let resolved = resolve(path).map_err(|e| format!("tls.{what} {e}"))?;
    let bytes = std::fs::read(&resolved)
        .map_err(|e| format!("tls.{what} {}: cannot read: {e}", resolved.display()))?;
    Ok((resolved, bytes))
}

fn certificates(what: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let (resolved, pem) = read_pem(what, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("tls.{what} {}: {e}", resolved.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "tls.{what} {}: no certificate in it (expected PEM: -----BEGIN CERTIFICATE-----)",
            resolved.display()
        ));
    }
    Ok(certs)
}

impl Tls {
    /// Loads the certificate, key and client CAs of `settings`. The error names the key in
    /// `[tls]` and the file: `tls.private_key /etc/…/key.pem: cannot read: Permission denied`.
    pub fn load(settings: &TlsConfig) -> Result<Tls, String> {
        let provider = provider();
        let chain = certificates("certificate", &settings.certificate)?;
        let cert_path = resolve(&settings.certificate).unwrap_or_default();
        let certificate = x509::parse(&chain[0]).ok_or_else(|| {
            format!(
                "tls.certificate {}: the first certificate cannot be read",
                cert_path.display()
            )
        })?;
        let (key_path, pem) = read_pem("private_key", &settings.private_key)?;
        let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
            format!(
                "tls.private_key {}: no private key in it ({e}; expected PEM: PRIVATE KEY, RSA \
                 PRIVATE KEY or EC PRIVATE KEY)",
                key_path.display()
            )
        })?;
        let key = CertifiedKey::from_der(chain, key, &provider).map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => format!(
                "tls.private_key {} does not match tls.certificate {} (another key pair)",
                key_path.display(),
                cert_path.display()
            ),
            e => format!("tls.private_key {}: {e}", key_path.display()),
        })?;
        let versions: &[&'static rustls::SupportedProtocolVersion] = match settings.min_version {
            TlsVersion::V1_2 => rustls::ALL_VERSIONS,
            TlsVersion::V1_3 => &[&rustls::version::TLS13],
        };
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(versions)
            .map_err(|e| format!("tls.min_version: {e}"))?;
        let (builder, client_cas) = match &settings.client_ca {
            None => (builder.with_no_client_auth(), 0),
            Some(path) => {
                let mut roots = RootCertStore::empty();
                let cas = certificates("client_ca", path)?;
                let n = cas.len();
                for ca in cas {
                    roots.add(ca).map_err(|e| {
                        format!(
                            "tls.client_ca {}: {e}",
                            resolve(path).unwrap_or_default().display()
                        )
                    })?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .map_err(|e| format!("tls.client_ca {}: {e}", path.display()))?;
                (builder.with_client_cert_verifier(verifier), n)
            }
        };
        let mut server = builder.with_cert_resolver(Arc::new(SingleCertAndKey::from(key)));
        // No TLS 1.3 session tickets. A ticket is data the server sends after the handshake;
        // a client that only sends (a sensor writing lines, then closing) never reads it,
        // and closing a socket with unread data makes its kernel send a reset instead of a
        // FIN, which throws away whatever the daemon had not read yet: lines lost (bench/run
        // lost 3712 of 16,000 lines that way). With no tickets the daemon sends nothing
        // after the handshake but close_notify in reply to the client's (`Session::close`).
        // (TLS 1.2 session-ID resumption, which sends
        // nothing extra, stays.)
        server.send_tls13_tickets = 0;
        Ok(Tls {
            settings: settings.clone(),
            server: Arc::new(server),
            certificate,
            client_cas,
        })
    }

    /// A session for a client that just connected.
    pub fn session(&self, now: Instant) -> Session {
        Session {
            conn: ServerConnection::new(Arc::clone(&self.server))
                .expect("a server connection from a valid config"),
            deadline: Some(now + Duration::from_secs(self.settings.handshake_timeout_secs)),
            first: Vec::new(),
            eof: false,
            peer_closed: false,
            fields: None,
            names: Vec::new(),
        }
    }

    /// Whether `names` (a session's certificate names) pass `allow_names`.
    pub fn admits(&self, names: &[String]) -> bool {
        let allow = &self.settings.allow_names;
        allow.is_empty()
            || names
                .iter()
                .any(|n| allow.iter().any(|a| name_matches(a, n)))
    }

    /// For the start and reload notices: `TLS: certificate CN=…, valid until …; client
    /// certificates signed by /path (N CAs) required`.
    pub fn describe(&self) -> String {
        let mut text = format!(
            "TLS {}+: certificate {}, valid until {}",
            match self.settings.min_version {
                TlsVersion::V1_2 => "1.2",
                TlsVersion::V1_3 => "1.3",
            },
            self.certificate.subject,
            self.certificate.not_after
        );
        if let Some(ca) = &self.settings.client_ca {
            text.push_str(&format!(
                "; client certificates signed by {} ({} CAs) required",
                ca.display(),
                self.client_cas
            ));
            if !self.settings.allow_names.is_empty() {
                text.push_str(&format!(", names {}", self.settings.allow_names.join(", ")));
            }
        }
        text
    }

    /// What `--check-config` says: the pair matches, when the certificate expires (and how
    /// far away that is). The second value is true when the certificate has expired or is not
    /// valid for 30 days more.
    pub fn check_report(&self, now: SystemTime) -> (String, bool) {
        let now = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let left = self.certificate.not_after_unix - now;
        let days = left.div_euclid(86_400);
        let when = if left < 0 {
            format!("EXPIRED {} days ago", -days)
        } else {
            format!("in {days} days")
        };
        (
            format!(
                "tls: tls.private_key matches tls.certificate {} ({}); the certificate expires \
                 {} ({when})",
                resolve(&self.settings.certificate)
                    .unwrap_or_default()
                    .display(),
                self.certificate.subject,
                self.certificate.not_after
            ),
            left < 30 * 86_400,
        )
    }
}

/// How many of a client certificate's common names, and of its subject alternative names,
/// its entries carry (`TLS_CLIENT_CN`, `TLS_CLIENT_SAN`, one field each); the number of the
/// others is in `TLS_CLIENT_CN_OMITTED`, `TLS_CLIENT_SAN_OMITTED`. A certificate may hold
/// thousands (a client chooses them), and journald drops an entry of more than 1,024 fields
/// without a word; `tls.allow_names` is matched against all of them.
pub const NAMES_LOGGED: usize = 16;

/// A certificate's names for a refusal: the first [`NAMES_LOGGED`], then how many more.
pub fn list_names(names: &[String]) -> String {
    if names.is_empty() {
        return "none".into();
    }
    let mut text = names
        .iter()
        .take(NAMES_LOGGED)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > NAMES_LOGGED {
        text.push_str(&format!(" and {} more", names.len() - NAMES_LOGGED));
    }
    text
}

/// `allow` (lowercase; `*.suffix` matches exactly one more label) against a certificate name.
fn name_matches(allow: &str, name: &str) -> bool {
    match allow.strip_prefix("*.") {
        Some(suffix) => name
            .strip_suffix(suffix)
            .and_then(|head| head.strip_suffix('.'))
            .is_some_and(|label| !label.is_empty() && !label.contains('.')),
        None => allow == name,
    }
}

/// What one step of a TLS session gave.
#[derive(Debug)]
pub enum TlsRead {
    /// This many plaintext bytes, now in the buffer.
    Data(usize),
    /// The handshake finished just now: [`Session::fields`] says who the client is.
    Established,
    /// The client closed (with close_notify, or without: then it may have been cut).
    Closed,
    WouldBlock,
    /// The handshake failed; why, as a refusal reason.
    Refused(String),
    /// An error after the handshake (a bad record, the socket).
    Failed(io::Error),
}

/// One connection's TLS state.
pub struct Session {
    conn: ServerConnection,
    /// Until the handshake is over: when it must be.
    pub deadline: Option<Instant>,
    /// The first bytes the client sent, to say what a client that is not TLS sent.
    first: Vec<u8>,
    eof: bool,
    /// The client sent close_notify: [`Session::close`] answers it.
    peer_closed: bool,
    fields: Option<TlsFields>,
    /// The certificate names (lowercase), for `allow_names`.
    names: Vec<String>,
}

/// How many of a non-TLS client's first bytes a refusal quotes.
const QUOTED: usize = 16;

/// The socket, as rustls reads it: counts the bytes and keeps the first ones.
struct Counted<'a> {
    stream: &'a mut TcpStream,
    raw: &'a mut u64,
    first: &'a mut Vec<u8>,
}

impl Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.stream.read(buf)?;
        *self.raw += n as u64;
        if self.first.len() < QUOTED {
            let take = (QUOTED - self.first.len()).min(n);
            self.first.extend_from_slice(&buf[..take]);
        }
        Ok(n)
    }
}

impl Session {
    pub fn handshaking(&self) -> bool {
        self.fields.is_none()
    }

    /// The fields every entry of the connection carries, once the handshake is over.
    pub fn fields(&self) -> Option<&TlsFields> {
        self.fields.as_ref()
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Reads what the client sent, as plaintext into `buf`, moving the handshake on as far as
    /// the socket allows; `raw` counts the bytes read from the socket.
    pub fn read(&mut self, stream: &mut TcpStream, buf: &mut [u8], raw: &mut u64) -> TlsRead {
        loop {
            if self.fields.is_none() && !self.conn.is_handshaking() {
                self.established();
                return TlsRead::Established;
            }
            if self.fields.is_some() {
                match self.conn.reader().read(buf) {
                    // close_notify: the client said it is done.
                    Ok(0) => {
                        self.peer_closed = true;
                        return TlsRead::Closed;
                    }
                    Ok(n) => return TlsRead::Data(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    // The connection ended without close_notify.
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return TlsRead::Closed,
                    Err(e) => return TlsRead::Failed(e),
                }
            }
            if let Err(e) = self.flush(stream) {
                if self.fields.is_none() {
                    return TlsRead::Refused(format!("TLS handshake failed: cannot write: {e}"));
                }
                return TlsRead::Failed(e);
            }
            if self.eof {
                if self.fields.is_none() {
                    return TlsRead::Refused(
                        "closed the connection during the TLS handshake".into(),
                    );
                }
                return TlsRead::Closed;
            }
            let mut counted = Counted {
                stream,
                raw,
                first: &mut self.first,
            };
            match self.conn.read_tls(&mut counted) {
                Ok(0) => self.eof = true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return TlsRead::WouldBlock,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if self.fields.is_none() => {
                    return TlsRead::Refused(format!("TLS handshake failed: {e}"))
                }
                Err(e) => return TlsRead::Failed(e),
            }
            if let Err(e) = self.conn.process_new_packets() {
                // rustls queued an alert that says why: send it, as far as the socket takes.
                let _ = self.flush(stream);
                if self.fields.is_none() {
                    return TlsRead::Refused(self.refusal(&e));
                }
                return TlsRead::Failed(io::Error::new(io::ErrorKind::InvalidData, e));
            }
        }
    }

    /// Writes what rustls has to send; `WouldBlock` leaves the rest for the next writable
    /// event.
    fn flush(&mut self, stream: &mut TcpStream) -> io::Result<()> {
        while self.conn.wants_write() {
            match self.conn.write_tls(stream) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Before the socket closes: close_notify in reply to the client's own, and nothing
    /// when the daemon is the one closing (idle, a stop, a restart, a client no longer
    /// allowed), so that the client reads a plain end of file.
    ///
    /// A relay that only sends learns that its connection was closed by peeking at it
    /// before each send: rsyslog's omfwd (gtls, ossl and plain TCP alike) does
    /// `recv(MSG_PEEK | MSG_DONTWAIT)` and reconnects when that returns 0. A close_notify
    /// record in front of the FIN is a byte it can peek at: it takes the connection for
    /// alive, sends its next message into a socket this side has closed, gets a reset, and
    /// that message is lost (the first message after every idle close and restart: 13 of
    /// 15 with either driver). No order of close_notify, `shutdown(SHUT_WR)` and close
    /// avoids it (tried: still 13 of 15), since the record is unread in the client's socket
    /// either way. rsyslog's own TLS receiver does the same (its gtls driver sends
    /// close_notify only on connections it initiated). What it costs: the daemon sends no
    /// data after the handshake, so there is nothing of its own an attacker could cut
    /// short; a client that reads sees an end of file without close_notify (OpenSSL: an
    /// unexpected end of file), which is what happened.
    pub fn close(&mut self, stream: &mut TcpStream) {
        if self.peer_closed {
            self.conn.send_close_notify();
            let _ = self.flush(stream);
        }
    }

    /// The refusal reason for a handshake error.
    fn refusal(&self, e: &rustls::Error) -> String {
        if self.first.first().is_some_and(|&b| b != 0x16) {
            // A TLS connection starts with a handshake record (content type 22).
            let mut quoted = String::new();
            escape_into(&mut quoted, &self.first);
            return format!("not TLS: plain text on the TLS port (it sent \"{quoted}\")");
        }
        let why = reason::handshake_error(e);
        format!("TLS handshake failed: {why}")
    }

    /// The handshake is over: the fields of the connection's entries, computed once.
    fn established(&mut self) {
        let mut fields = TlsFields::default();
        let version = match self.conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
            _ => "TLS",
        };
        fields.push("TLS_VERSION", version.to_string());
        let cipher = self
            .conn
            .negotiated_cipher_suite()
            .and_then(|s| s.suite().as_str())
            .unwrap_or("unknown");
        fields.push("TLS_CIPHER", cipher.to_string());
        let mut summary = format!("{version}, {cipher}");
        let client = self
            .conn
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|cert| x509::parse(cert).unwrap_or_default());
        if let Some(cert) = client {
            fields.push("TLS_CLIENT_SUBJECT", cert.subject.clone());
            summary.push_str(&format!(", client {}", cert.subject));
            for (key, names, what) in [
                ("TLS_CLIENT_CN", &cert.common_names, "common names"),
                (
                    "TLS_CLIENT_SAN",
                    &cert.alt_names,
                    "subject alternative names",
                ),
            ] {
                for name in names.iter().take(NAMES_LOGGED) {
                    fields.push(key, name.clone());
                }
                if names.len() > NAMES_LOGGED {
                    let omitted = (names.len() - NAMES_LOGGED).to_string();
                    fields.push(
                        if key == "TLS_CLIENT_CN" {
                            "TLS_CLIENT_CN_OMITTED"
                        } else {
                            "TLS_CLIENT_SAN_OMITTED"
                        },
                        omitted,
                    );
                    summary.push_str(&format!(
                        "; {key} holds the first {NAMES_LOGGED} of {} {what}",
                        names.len()
                    ));
                }
            }
            self.names = cert.names().collect();
        }
        fields.summary = summary;
        self.fields = Some(fields);
        self.deadline = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_names_match_whole_names_and_one_label_wildcards() {
        assert!(name_matches("sensor1.example.org", "sensor1.example.org"));
        assert!(!name_matches("sensor1.example.org", "sensor10.example.org"));
        assert!(name_matches("*.example.org", "a.example.org"));
        assert!(!name_matches("*.example.org", "example.org"));
        assert!(!name_matches("*.example.org", "a.b.example.org"));
        assert!(!name_matches("*.example.org", "aexample.org"));
        assert!(!name_matches("*.example.org", ".example.org"));
    }

    #[test]
    fn credential_paths_resolve_in_the_credentials_directory() {
        let path = Path::new("${CREDENTIALS_DIRECTORY}/tls-key");
        assert_eq!(
            resolve(Path::new("/etc/k.pem")).unwrap(),
            Path::new("/etc/k.pem")
        );
        // The variable is read when the key is loaded; tests share the environment, so only
        // the unset case is checked here (tests/tls.rs runs the daemon with it set).
        if std::env::var_os("CREDENTIALS_DIRECTORY").is_none() {
            let e = resolve(path).unwrap_err();
            assert!(e.contains("$CREDENTIALS_DIRECTORY is not set"), "{e}");
        }
    }

    #[test]
    fn a_refusal_lists_the_first_names_and_counts_the_others() {
        assert_eq!(list_names(&[]), "none");
        assert_eq!(list_names(&["a".into(), "b".into()]), "a, b");
        let many: Vec<String> = (1..=2000).map(|i| format!("n{i}")).collect();
        let text = list_names(&many);
        assert!(text.starts_with("n1, n2, "), "{text}");
        assert!(text.ends_with("n16 and 1984 more"), "{text}");
    }
}
