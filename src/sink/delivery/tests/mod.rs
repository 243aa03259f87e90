//! The engine's tests: against a scripted transport ([`scripted`]), and with each sink's
//! protocol against a scripted peer that reads, acknowledges, dies and comes back like the
//! real one ([`journald`], [`syslog`]); [`harness`] is what they share.

mod harness;
mod journald;
mod scripted;
mod syslog;
