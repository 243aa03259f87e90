//! What the pieces after the first of a long message need from its header, owned and
//! bounded, and how it is carried to another process. Owns [`Sticky`].

use super::{Format, Header, Pri};

/// What the pieces after the first of a long message need from its header, owned: the
/// framer cuts a long message (LF-framed or octet-counted) into `[continued]` pieces, and
/// only the first one starts with the header. The caller keeps one `Sticky` per connection, fills it with
/// [`Sticky::remember`] from the first piece's header (part 1), and gets the header of
/// pieces 2..n from [`Sticky::continuation`], so they carry the same PRIORITY, facility,
/// identifier, pid, hostname, timestamp and MSGID (and parse error) as the first.
///
/// STRUCTURED-DATA is not kept (it can be as long as the message; the first piece has it).
/// Every kept field is bounded ([`MAX_TIMESTAMP`], [`MAX_HOSTNAME`], [`MAX_FIELD`]), so a
/// `Sticky` holds at most 703 bytes, in one buffer that is reused from message to message
/// and allocated only when a message is long enough to be cut.
#[derive(Debug, Clone)]
pub struct Sticky {
    format: Format,
    pri: Option<Pri>,
    /// timestamp, hostname, app_name, procid, msgid, one after the other.
    bytes: Vec<u8>,
    /// Where each field ends in `bytes`; `None` for a field the message does not have.
    ends: [Option<u16>; 5],
}

impl Default for Sticky {
    fn default() -> Self {
        Sticky::new()
    }
}

impl Sticky {
    pub fn new() -> Sticky {
        Sticky {
            format: Format::Unparsed,
            pri: None,
            bytes: Vec::new(),
            ends: [None; 5],
        }
    }

    /// What it holds, as bytes, to carry it to another process (the file descriptor store):
    /// format, PRI, where each field ends, the fields.
    pub fn save(&self) -> Vec<u8> {
        let mut out = vec![
            match self.format {
                Format::Rfc5424 => 0,
                Format::Rfc3164 => 1,
                Format::PriOnly => 2,
                Format::Unparsed => 3,
            },
            self.pri.map_or(u8::MAX, |p| p.facility),
            self.pri.map_or(u8::MAX, |p| p.severity),
        ];
        for end in self.ends {
            out.extend_from_slice(&end.unwrap_or(u16::MAX).to_le_bytes());
        }
        out.extend_from_slice(&self.bytes);
        out
    }

    /// A `Sticky` from [`Sticky::save`]'s bytes, checked (`None` if no `Sticky` can be that).
    pub fn restore(saved: &[u8]) -> Option<Sticky> {
        let (head, bytes) = saved.split_at_checked(13)?;
        let format = match head[0] {
            0 => Format::Rfc5424,
            1 => Format::Rfc3164,
            2 => Format::PriOnly,
            3 => Format::Unparsed,
            _ => return None,
        };
        let pri = match (head[1], head[2]) {
            (u8::MAX, u8::MAX) => None,
            (facility @ 0..=23, severity @ 0..=7) => Some(Pri { facility, severity }),
            _ => return None,
        };
        let mut ends = [None; 5];
        let mut last = 0;
        for (i, end) in ends.iter_mut().enumerate() {
            let e = u16::from_le_bytes([head[3 + 2 * i], head[4 + 2 * i]]);
            if e != u16::MAX {
                if e < last || usize::from(e) > bytes.len() {
                    return None;
                }
                last = e;
                *end = Some(e);
            }
        }
        Some(Sticky {
            format,
            pri,
            bytes: bytes.to_vec(),
            ends,
        })
    }

    /// Keeps what the continuation pieces of `header`'s message need.
    pub fn remember(&mut self, header: &Header<'_>) {
        self.format = header.format;
        self.pri = header.pri;
        self.bytes.clear();
        let fields = [
            header.timestamp,
            header.hostname,
            header.app_name,
            header.procid,
            header.msgid,
        ];
        for (end, field) in self.ends.iter_mut().zip(fields) {
            *end = field.map(|f| {
                self.bytes.extend_from_slice(f);
                self.bytes.len() as u16
            });
        }
    }

    /// The header of a continuation piece whose bytes are `message`.
    pub fn continuation<'a>(&'a self, message: &'a [u8]) -> Header<'a> {
        let mut fields = [None; 5];
        let mut start = 0;
        for (field, end) in fields.iter_mut().zip(self.ends) {
            if let Some(end) = end {
                let end = usize::from(end);
                *field = Some(&self.bytes[start..end]);
                start = end;
            }
        }
        let [timestamp, hostname, app_name, procid, msgid] = fields;
        Header {
            format: self.format,
            pri: self.pri,
            timestamp,
            hostname,
            app_name,
            procid,
            msgid,
            structured_data: None,
            message,
        }
    }
}

#[cfg(test)]
mod tests;
