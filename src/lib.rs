//! tcp-listener: logs every line that any TCP client sends to journald, with who sent it.
//!
//! `main.rs` parses the command line, loads the configuration, binds and calls [`run`]; the
//! rest lives here, one module per concern.

pub mod admission;
pub mod cidr;
pub mod cli;
pub mod config;
pub mod connection;
pub mod control;
pub mod entry;
pub mod escape;
pub mod fdstore;
pub mod framing;
pub mod journal_fields;
pub mod listener;
pub mod memfd;
pub mod metrics;
pub mod ratelimit;
pub mod retention;
pub mod server;
pub mod sink;
pub mod source;
pub mod summary;
mod swar;
pub mod syslog_message;
pub mod systemd;
pub mod throttle;
pub mod tls;
pub mod udp;

pub use control::{install_signal_handlers, Control};
pub use listener::ListenSocket;
pub use server::run;
pub use summary::Summary;

/// sysexits.h: a configuration error.
pub const EX_CONFIG: i32 = 78;
