//! A remote syslog message forwarded by the syslog target under its sender's identity: the
//! facility, severity, tag (SYSLOG_IDENTIFIER and SYSLOG_PID) and hostname it was sent with,
//! as RFC 3164 §4.3 asks of a relay, so that a central rsyslog files it where the sender's own
//! would go. Everything else (the daemon's own entries, plain lines) goes out as
//! `tcp-listener[PID]`, facility daemon.

use std::fmt::Write as _;

use crate::entry::{Entry, Value, REMOTE_PRIORITY};
use crate::syslog_message::field;

/// The sender's identity, when `entry` is a remote syslog message that has one.
pub struct Sender<'e> {
    facility: u8,
    severity: u8,
    tag: &'e str,
    pid: Option<&'e str>,
    /// SYSLOG_HOSTNAME as sent; without one, the sender's address.
    hostname: Option<&'e str>,
}

impl<'e> Sender<'e> {
    /// A syslog message with a `<PRI>`: its severity as sent (REMOTE_PRIORITY; the journal's
    /// floor is for this host's terminals, not the central machine's), its facility, and its
    /// identifier (the daemon's when it sent none).
    pub fn of(entry: &Entry<'e>) -> Option<Sender<'e>> {
        let facility = entry.origin.facility?;
        let mut sender = Sender {
            facility,
            severity: entry.priority,
            tag: entry.origin.identifier.unwrap_or(crate::entry::IDENTIFIER),
            pid: None,
            hostname: None,
        };
        for (name, value) in entry.fields.iter() {
            match (*name, *value) {
                (REMOTE_PRIORITY, Value::Number(n)) => sender.severity = (n & 7) as u8,
                (field::PID, Value::Text(pid)) => sender.pid = Some(pid),
                (field::HOSTNAME, Value::Text(host)) => sender.hostname = Some(host),
                _ => {}
            }
        }
        Some(sender)
    }

    /// `<PRI>TIMESTAMP HOSTNAME TAG[PID]: MESSAGE`, `timestamp` in RFC 3164's `Mmm dd hh:mm:ss`.
    pub fn format(&self, out: &mut Vec<u8>, timestamp: &str, peer: Option<&str>, message: &str) {
        let mut s = String::with_capacity(message.len() + 64);
        let pri = u16::from(self.facility) * 8 + u16::from(self.severity);
        let _ = write!(s, "<{pri}>{timestamp} ");
        push_word(&mut s, self.hostname.or(peer).unwrap_or("-"));
        s.push(' ');
        push_word(&mut s, self.tag);
        if let Some(pid) = self.pid {
            s.push('[');
            push_word(&mut s, pid);
            s.push(']');
        }
        s.push_str(": ");
        s.push_str(message);
        out.extend_from_slice(s.as_bytes());
    }
}

/// A header word as one token a receiver can split on: a space, a bracket or a colon in it
/// (escaped text from a client may hold them) becomes `_`.
fn push_word(s: &mut String, word: &str) {
    if word.is_empty() {
        s.push('-');
        return;
    }
    s.extend(word.chars().map(|c| match c {
        ' ' | '[' | ']' | ':' => '_',
        c => c,
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_word_stays_one_word() {
        let mut s = String::new();
        push_word(&mut s, "a b[c]:d");
        assert_eq!(s, "a_b_c__d");
        let mut s = String::new();
        push_word(&mut s, "");
        assert_eq!(s, "-");
    }
}
