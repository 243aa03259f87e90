//! The engine's tests: against a scripted transport ([`scripted`]), and with each sink's
//! protocol against a scripted peer that reads, acknowledges, dies and comes back like the
//! real one ([`journald`], [`syslog`]); [`harness`] is what they share.

pub(in crate::sink) mod harness;
mod scripted;
