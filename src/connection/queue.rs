//! [`Connections`]: every client the loop serves, by poll token, with the queue of those that
//! may have data and the clients parked until their source has budget again.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io;
use std::time::Instant;

use mio::{Interest, Registry, Token};
use slab::Slab;

use super::Connection;

/// Every client, by key (its poll token), the queue of those that may have data, and those
/// parked until a time (their source is over its line budget).
#[derive(Default)]
pub struct Connections {
    slab: Slab<Connection>,
    ready: VecDeque<usize>,
    parked: BinaryHeap<Reverse<(Instant, usize)>>,
}

impl Connections {
    pub fn len(&self) -> usize {
        self.slab.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    /// Adds a client, watched for readable events and queued at once: it may have sent
    /// everything and closed already (like the classroom client). A TLS client is watched for
    /// writability too: a handshake message that did not fit in the socket buffer goes out
    /// when there is room.
    pub fn insert(&mut self, mut conn: Connection, registry: &Registry) -> io::Result<usize> {
        let entry = self.slab.vacant_entry();
        let key = entry.key();
        let interest = if conn.is_tls() {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        registry.register(&mut conn.stream, Token(key), interest)?;
        conn.queued = true;
        entry.insert(conn);
        self.ready.push_back(key);
        Ok(key)
    }

    /// The connection of a poll token, if it is one of ours.
    pub fn key_of(&self, token: Token) -> Option<usize> {
        self.slab.contains(token.0).then_some(token.0)
    }

    /// A readable event: queue the client unless it is queued already.
    pub fn mark_ready(&mut self, key: usize) {
        if let Some(conn) = self.slab.get_mut(key) {
            if !conn.queued {
                conn.queued = true;
                self.ready.push_back(key);
            }
        }
    }

    /// Queues every client (to read each until it has nothing more).
    pub fn mark_all_ready(&mut self) {
        let keys: Vec<usize> = self.slab.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.mark_ready(key);
        }
    }

    /// Clients not yet read to the end at a stop.
    pub fn undrained(&self) -> usize {
        self.slab.iter().filter(|(_, c)| !c.drained).count()
    }

    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// The next client to read, out of the queue; [`Connections::requeue`] puts it back.
    pub fn next_ready(&mut self) -> Option<usize> {
        while let Some(key) = self.ready.pop_front() {
            if let Some(conn) = self.slab.get_mut(key) {
                conn.queued = false;
                return Some(key);
            }
        }
        None
    }

    /// Back to the end of the queue: it may have more.
    pub fn requeue(&mut self, key: usize) {
        self.mark_ready(key);
    }

    /// Not read again before `until` (readable events meanwhile change nothing).
    pub fn park(&mut self, key: usize, until: Instant) {
        if let Some(conn) = self.slab.get_mut(key) {
            conn.queued = true;
            conn.parked = true;
            self.parked.push(Reverse((until, key)));
        }
    }

    /// Queues the parked clients whose time has come.
    pub fn unpark_due(&mut self, now: Instant) {
        while let Some(&Reverse((until, key))) = self.parked.peek() {
            if until > now {
                return;
            }
            self.parked.pop();
            if let Some(conn) = self.slab.get_mut(key).filter(|c| c.parked) {
                conn.parked = false;
                self.ready.push_back(key);
            }
        }
    }

    /// Queues every parked client at once (the daemon is stopping).
    pub fn unpark_all(&mut self) {
        while let Some(Reverse((_, key))) = self.parked.pop() {
            if let Some(conn) = self.slab.get_mut(key).filter(|c| c.parked) {
                conn.parked = false;
                self.ready.push_back(key);
            }
        }
    }

    /// When the next parked client may be read.
    pub fn next_unpark(&self) -> Option<Instant> {
        self.parked.peek().map(|Reverse((until, _))| *until)
    }

    pub fn get_mut(&mut self, key: usize) -> Option<&mut Connection> {
        self.slab.get_mut(key)
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (usize, &mut Connection)> {
        self.slab.iter_mut()
    }

    /// The keys of the clients `select` picks.
    pub fn keys_where(&self, select: impl Fn(&Connection) -> bool) -> Vec<usize> {
        self.slab
            .iter()
            .filter(|(_, c)| select(c))
            .map(|(k, _)| k)
            .collect()
    }

    /// Removes a client from the loop; dropping the result closes the connection.
    pub fn remove(&mut self, key: usize, registry: &Registry) -> Option<Connection> {
        let mut conn = self.slab.try_remove(key)?;
        let _ = registry.deregister(&mut conn.stream);
        Some(conn)
    }
}
