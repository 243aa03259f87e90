//! The syslog sink, through the `syslog` crate: the local `/dev/log`, or a server over UDP or
//! TCP. Writes block, so a slow server slows the clients down. A failed write is retried once
//! on a fresh connection; an entry that still cannot be sent goes to stderr and is counted.

use std::io::Write;

use syslog::{Facility, Formatter3164, LoggerBackend};

use super::DeliveryStats;
use crate::config::SyslogServer;
use crate::entry::{priority, Entry};

type Logger = syslog::Logger<LoggerBackend, Formatter3164>;

pub struct SyslogSink {
    server: SyslogServer,
    logger: Option<Logger>,
    stats: DeliveryStats,
}

fn connect(server: &SyslogServer) -> Result<Logger, syslog::Error> {
    let formatter = Formatter3164 {
        facility: Facility::LOG_DAEMON,
        hostname: None,
        process: "tcp-listener".into(),
        pid: std::process::id(),
    };
    match server {
        SyslogServer::Local => syslog::unix(formatter),
        SyslogServer::Tcp(addr) => syslog::tcp(formatter, addr.as_str()),
        SyslogServer::Udp(addr) => {
            let local = if addr.starts_with('[') {
                "[::]:0"
            } else {
                "0.0.0.0:0"
            };
            syslog::udp(formatter, local, addr.as_str())
        }
    }
}

impl SyslogSink {
    pub fn open(server: &SyslogServer) -> (SyslogSink, Option<String>) {
        let (logger, notice) = match connect(server) {
            Ok(l) => (Some(l), None),
            Err(e) => (
                None,
                Some(format!(
                    "cannot reach syslog ({server:?}): {e}; will retry on each entry"
                )),
            ),
        };
        let sink = SyslogSink {
            server: server.clone(),
            logger,
            stats: DeliveryStats::default(),
        };
        (sink, notice)
    }

    pub fn describe(&self) -> String {
        match &self.server {
            SyslogServer::Local => "syslog via /dev/log".into(),
            SyslogServer::Udp(a) => format!("syslog at udp://{a}"),
            SyslogServer::Tcp(a) => format!("syslog at tcp://{a}"),
        }
    }

    pub fn log(&mut self, entry: &Entry<'_>) {
        let text = entry.message;
        for _attempt in 0..2 {
            if self.logger.is_none() {
                self.logger = connect(&self.server).ok();
            }
            let Some(logger) = self.logger.as_mut() else {
                break;
            };
            let sent = match entry.priority {
                p if p <= priority::ERR => logger.err(text),
                priority::WARNING => logger.warning(text),
                priority::NOTICE => logger.notice(text),
                _ => logger.info(text),
            };
            if sent.is_ok() {
                self.stats.delivered += 1;
                return;
            }
            self.logger = None;
        }
        self.stats.undelivered += 1;
        let _ = writeln!(std::io::stderr(), "syslog unreachable: {text}");
    }

    pub fn stats(&self) -> DeliveryStats {
        self.stats
    }
}
