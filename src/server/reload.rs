//! SIGHUP: the configuration read again and handed to each part; a file that cannot be used
//! leaves the running configuration in force, and says why.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::Server;
use crate::config::{Config, DEFAULT_CONFIG_PATH};
use crate::entry::{priority, Remote};
use crate::tls::Tls;

impl Server {
    pub(super) fn reload(&mut self) {
        self.supervisor.reloading();
        let path = self
            .config_path
            .clone()
            .or_else(|| Some(PathBuf::from(DEFAULT_CONFIG_PATH)).filter(|p| p.exists()));
        match path {
            None => self.announce(
                priority::NOTICE,
                "SIGHUP: no configuration file to reload; still on built-in defaults",
            ),
            Some(path) => match Config::load(&path) {
                Ok(new) => self.apply(new, &path),
                Err(e) => self.announce(
                    priority::ERR,
                    &format!("reload failed, the running configuration stays in force: {e}"),
                ),
            },
        }
        self.supervisor.ready();
        self.update_status();
    }

    /// Hands the new configuration to each part.
    pub(super) fn apply(&mut self, mut new: Config, path: &Path) {
        let notices = if self.phase.accepting() {
            self.acceptor
                .reconfigure(&self.config, &mut new, self.poll.registry())
        } else {
            Vec::new()
        };
        for (priority, notice) in notices {
            self.announce(priority, &notice);
        }
        if new.log != self.config.log {
            for notice in self.sink.replace(&new.log, self.poll.registry()) {
                self.announce(priority::WARNING, &notice);
            }
        }
        self.reload_tls(&mut new);
        self.admission.reconfigure(&new);
        self.sources.reconfigure(&new, Instant::now());
        self.reload_udp(&mut new);
        self.read_buf.resize(new.buffer_size, 0);
        for (_, conn) in self.conns.iter_mut() {
            conn.reconfigure(&new);
        }
        self.syslog.remote = Remote::new(&new);
        self.config = new;
        self.open_metrics();
        let admission = &self.admission;
        for key in self
            .conns
            .keys_where(|c| !admission.allows(c.peer.addr.ip()))
        {
            self.close(key, "no longer in the allow list");
        }
        if let Some(tls) = &self.tls {
            for key in self
                .conns
                .keys_where(|c| c.is_tls() && !c.handshaking() && !tls.admits(c.tls_names()))
            {
                self.close(key, "certificate names no longer in tls.allow_names");
            }
        }
        self.announce(
            priority::NOTICE,
            &format!(
                "configuration reloaded from {}; listening on {}, logging to {}",
                path.display(),
                self.acceptor.local_addr(),
                self.sink.describe()
            ),
        );
    }

    /// `[tls]` of a new configuration: the certificate, key and client CAs are read again
    /// (rotation) for new handshakes; connected clients keep their sessions. A file that
    /// cannot be used keeps what was in force, and `new` says so.
    pub(super) fn reload_tls(&mut self, new: &mut Config) {
        let Some(settings) = &new.tls else {
            if self.tls.take().is_some() {
                self.announce(
                    priority::WARNING,
                    "reload: no [tls] any more: new clients are served in plain TCP; connected \
                     TLS clients keep their sessions",
                );
            }
            return;
        };
        match Tls::load(settings) {
            Ok(tls) => {
                self.announce(
                    priority::NOTICE,
                    &format!(
                        "reload: {} (for new handshakes; connected clients keep their sessions)",
                        tls.describe()
                    ),
                );
                self.tls = Some(tls);
            }
            Err(e) => {
                let kept = match &self.tls {
                    Some(tls) => format!(
                        "new handshakes go on with the previous [tls]: certificate {}, valid \
                         until {}",
                        tls.certificate.subject, tls.certificate.not_after
                    ),
                    None => "TLS stays off: new clients are served in plain TCP".into(),
                };
                self.announce(priority::ERR, &format!("reload: {e}; {kept}"));
                new.tls = self.tls.as_ref().map(|t| t.settings.clone());
            }
        }
    }
}
