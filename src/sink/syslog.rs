//! The syslog sink: RFC 3164 messages (formatted by the `syslog` crate's `Formatter3164`) to
//! the local `/dev/log`, or to a server over UDP or TCP, never blocking the loop. The
//! delivery engine ([`crate::sink::delivery`]) queues, sends, holds and redelivers (its tests
//! with this protocol against a scripted server are in `sink/delivery/tests/syslog.rs`); this
//! file owns the syslog [`Protocol`] (formatting, the redelivery mark, the reconnect and look
//! policy) and the choice of stderr when there is no `/dev/log`, and [`socket`] the system
//! calls.
//!
//! - TCP frames are RFC 6587 *octet-counted* (`LEN SP MSG`): a receiver can split them
//!   whatever a message holds. rsyslog's imtcp detects this framing by itself (a frame that
//!   starts with a digit); so does syslog-ng's `syslog()` source. A stream `/dev/log` gets
//!   the message and a NUL byte, as glibc's syslog(3) writes it.
//! - A sent entry stays in flight until the server has certainly taken it (for TCP the bytes
//!   it has not acknowledged, for `/dev/log` those it has not read), looked at when due
//!   ([`Looks::WhenDue`]): a TCP server acknowledges a round trip later. Sent again after the
//!   connection failed, an entry ends with [`REDELIVERED_MARK`]. UDP says nothing of what
//!   arrives: a datagram is done once sent.
//! - A server that cannot be reached (connect refused or timed out, connection reset or
//!   closed) is retried after [`RETRY_INTERVAL`], doubling up to [`RETRY_MAX`]; a TCP connect
//!   is non-blocking and given up after [`CONNECT_TIMEOUT`].
//! - UDP errors other than a full buffer concern one datagram: it goes to stderr and is
//!   counted as undelivered. So does a datagram too large for `/dev/log`.
//!
//! The `syslog` crate's own senders (`syslog::tcp` and friends) are not used: they block, and
//! its TCP sender writes messages back to back without any framing.

mod relay;
pub mod socket;

use std::borrow::Cow;
use std::path::Path;
use std::time::{Duration, Instant};

use ::syslog::{Facility, Formatter3164, LogFormat, Severity};
use mio::{Registry, Token};

use crate::config::SyslogServer;
use crate::entry::{priority, Entry};
use crate::sink::delivery::{Delivery, Looks, Protocol};
pub use crate::sink::delivery::{CONNECT_TIMEOUT, RETRY_INTERVAL};
pub use socket::{SyslogSocket, DEV_LOG};

/// Where the local syslog socket should be, when `/dev/log` is meant and it does not exist,
/// the notice for falling back to stderr: no syslog daemon is there to come back (on a
/// systemd system the socket unit keeps `/dev/log` even while the daemon restarts), and
/// holding entries for it would stop every client for good. A remote server that cannot be
/// reached is held for and retried instead.
pub fn without_local_socket(server: &SyslogServer, dev_log: impl AsRef<Path>) -> Option<String> {
    let dev_log = dev_log.as_ref();
    (*server == SyslogServer::Local && !dev_log.exists()).then(|| {
        format!(
            "no syslog socket at {}: logging to stderr instead",
            dev_log.display()
        )
    })
}

/// The priority and the text of a message this sink formatted (`<PRI>… tcp-listener[PID]:
/// text`).
pub fn unformat(formatted: &[u8]) -> (u8, String) {
    let text = String::from_utf8_lossy(formatted);
    let priority = text
        .strip_prefix('<')
        .and_then(|rest| rest.split_once('>'))
        .and_then(|(pri, _)| pri.parse::<u8>().ok())
        .map_or(priority::INFO, |pri| pri & 7);
    let message = text[text_start(text.as_bytes())..].to_string();
    (priority, message)
}

/// The syslog sink as the daemon uses it.
pub type SyslogSink = Delivery<SyslogSocket>;

/// Opens the syslog sink (connecting, or starting to), registering for writable events under
/// `token`.
pub fn open(server: &SyslogServer, token: Token, registry: &Registry) -> SyslogSink {
    Delivery::new(SyslogSocket::new(server, token), registry, Instant::now())
}

/// The longest wait between two reconnects to a server that cannot be reached.
pub const RETRY_MAX: Duration = Duration::from_secs(4);
/// The longest wait between two looks at what a server that takes nothing has taken (a
/// stalled server wakes the loop 5 times a second).
pub(super) const TRIM_RETRY_MAX: Duration = Duration::from_millis(200);
/// Appended to an entry sent again after a connection failed: the server may have it twice.
pub const REDELIVERED_MARK: &str = " [redelivered]";

/// RFC 3164 messages from `tcp-listener[PID]`, facility daemon.
pub struct Rfc3164 {
    formatter: Formatter3164,
}

impl Default for Rfc3164 {
    fn default() -> Rfc3164 {
        Rfc3164 {
            formatter: Formatter3164 {
                facility: Facility::LOG_DAEMON,
                hostname: None,
                process: "tcp-listener".into(),
                pid: std::process::id(),
            },
        }
    }
}

impl Protocol for Rfc3164 {
    const PEER: &'static str = "the server";
    const MARK: &'static str = REDELIVERED_MARK.trim_ascii_start();
    const ENTRY_CAPACITY: usize = 0;
    const RECONNECT_MAX: Duration = RETRY_MAX;
    const TAKEN_UNSTORED: usize = 0;
    const LOOKS: Looks = Looks::WhenDue {
        up_to: TRIM_RETRY_MAX,
    };

    fn encode(&mut self, out: &mut Vec<u8>, entry: &Entry<'_>) {
        if let Some(sender) = relay::Sender::of(entry) {
            let peer = entry
                .peer
                .map(|p| crate::entry::canonical(p.addr).ip().to_string());
            return sender.format(out, &timestamp(), peer.as_deref(), entry.message);
        }
        let severity = match entry.priority {
            p if p <= priority::ERR => Severity::LOG_ERR,
            priority::WARNING => Severity::LOG_WARNING,
            priority::NOTICE => Severity::LOG_NOTICE,
            _ => Severity::LOG_INFO,
        };
        // Writing to a Vec cannot fail.
        let _ = self.formatter.format(out, severity, entry.message);
    }

    fn mark_redelivered(encoded: &mut Vec<u8>) {
        encoded.extend_from_slice(REDELIVERED_MARK.as_bytes());
    }

    fn text_of(encoded: &[u8]) -> Cow<'_, str> {
        text_of(encoded)
    }
}

/// Now, as RFC 3164's `Mmm dd hh:mm:ss` in UTC (as the syslog crate writes the daemon's own).
fn timestamp() -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
        "[month repr:short] [day padding:space] [hour]:[minute]:[second]"
    );
    time::OffsetDateTime::now_utc()
        .format(FORMAT)
        .unwrap_or_else(|_| "Jan  1 00:00:00".into())
}

/// The entry's text in a formatted message: what follows the `tcp-listener[PID]: ` tag.
pub(super) fn text_of(msg: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(&msg[text_start(msg)..])
}

/// Where the text starts in a message this sink formatted: after the first `: ` that
/// follows `<PRI>` and the 15 bytes of the timestamp (neither hostname nor tag holds a colon:
/// [`relay`] writes them so), or 0.
fn text_start(msg: &[u8]) -> usize {
    let Some(gt) = msg.iter().position(|&b| b == b'>') else {
        return 0;
    };
    let header = (gt + 1 + 16).min(msg.len());
    msg[header..]
        .windows(2)
        .position(|w| w == b": ")
        .map_or(0, |i| header + i + 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_missing_dev_log_falls_back_to_stderr() {
        let dir = std::env::temp_dir().join(format!("tcpl-devlog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log");
        let _ = std::fs::remove_file(&path);
        let notice = without_local_socket(&SyslogServer::Local, &path).expect("missing");
        assert_eq!(
            notice,
            format!(
                "no syslog socket at {}: logging to stderr instead",
                path.display()
            )
        );
        let tcp = SyslogServer::Tcp("127.0.0.1:1".into());
        assert_eq!(
            without_local_socket(&tcp, &path),
            None,
            "a remote server is retried"
        );
        let _socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        assert_eq!(without_local_socket(&SyslogServer::Local, &path), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
