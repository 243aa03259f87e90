//! The journald sink: entries in journald's native protocol, one datagram each, to the journal
//! socket; an entry too large for a datagram is passed as a sealed memfd, so nothing is cut.
//!
//! Three layers: [`encode`] (an entry as bytes), [`delivery`] (journald's protocol for the
//! delivery engine, [`crate::sink::delivery`], which queues, holds back and redelivers; tested
//! against a scripted journald) and [`socket`] (the system calls).

pub mod delivery;
pub mod encode;
pub mod socket;

use std::path::Path;
use std::time::Instant;

use mio::{Registry, Token};

use crate::sink::delivery::Delivery;
pub use delivery::RETRY_INTERVAL;
use socket::JournalSocket;

pub type JournaldSink = Delivery<JournalSocket>;

/// Opens the journald sink on `path`, registering for writable events under `token`.
pub fn open(path: &Path, token: Token, registry: &Registry) -> JournaldSink {
    Delivery::new(JournalSocket::new(path, token), registry, Instant::now())
}

impl JournaldSink {
    pub fn socket_path(&self) -> &Path {
        self.transport().path()
    }
}
