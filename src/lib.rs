//! tcp-listener: logs every line that any TCP client sends to journald, with who sent it.
//!
//! `main.rs` parses the command line, loads the configuration, binds and calls [`run`]; the
//! rest lives here, one module per concern.

pub mod cidr;
pub mod cli;
pub mod config;
pub mod escape;
pub mod framing;
pub mod listener;
pub mod ratelimit;
pub mod server;
pub mod sink;
mod swar;
pub mod syslog_message;
pub mod systemd;

pub use server::{run, ListenSocket, Summary};

/// sysexits.h: a configuration error.
pub const EX_CONFIG: i32 = 78;
