//! What the daemon did: the counters it keeps while it runs, shows in its status, carries
//! over a restart (`fdstore.rs`) and reports when it stops (`server/stop.rs`).

use crate::udp::UdpCounts;

/// What the daemon did, as it reports when it stops.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub connections: u64,
    /// Lines logged (a line logged in pieces counts once).
    pub lines: u64,
    pub refused: u64,
    pub dropped: u64,
    /// Entries written to stderr as the fallback while the journal socket could not be used
    /// (delivered there, as announced: not lost).
    pub to_stderr: u64,
    /// Entries not delivered: the log target did not take them in time (printed on stderr
    /// as a last resort), or stderr could not be written.
    pub undelivered: u64,
    /// Notifications the service manager never took (its notify queue full), at the stop.
    pub unsent_notifications: u64,
    /// Bytes clients had sent before the stop that it could not read in time, and the line
    /// ends among them.
    pub unread_bytes: u64,
    pub unread_lines: u64,
    /// With `udp = true`: what the UDP input read, logged and counted.
    pub udp: Option<UdpCounts>,
}
