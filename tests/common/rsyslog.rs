//! A real rsyslogd for the tests that talk to one: its configuration written in a directory
//! of its own (also its work directory and where its sockets and files go), checked with
//! `rsyslogd -N1`, run in the foreground (`rsyslogd -n -f CONF -i PID`), killed on drop.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{wait_until, TempDir};

/// The file, in the rsyslogd's directory, that [`Rsyslogd::internal`] reads: a configuration
/// that keeps rsyslog's own messages writes them there
/// (`syslog.* action(type="omfile" file="DIR/internal.log")`).
pub const INTERNAL_LOG: &str = "internal.log";

/// A running rsyslogd; killed on drop.
pub struct Rsyslogd {
    child: Child,
    dir: TempDir,
}

impl Rsyslogd {
    /// Starts rsyslogd with the configuration `conf` makes from the rsyslogd's own directory
    /// (for its `workDirectory`, sockets and files); panics with rsyslogd's words if it
    /// finds the configuration wrong.
    pub fn start(conf: impl FnOnce(&Path) -> String) -> Rsyslogd {
        let dir = TempDir::new();
        let conf_path = dir.0.join("rsyslog.conf");
        std::fs::write(&conf_path, conf(&dir.0)).unwrap();
        let check = Command::new("rsyslogd")
            .args(["-N1", "-f"])
            .arg(&conf_path)
            .output()
            .expect("run rsyslogd -N1");
        assert!(check.status.success(), "rsyslogd -N1: {check:?}");
        let child = Command::new("rsyslogd")
            .args(["-n", "-f"])
            .arg(&conf_path)
            .arg("-i")
            .arg(dir.0.join("pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rsyslogd");
        Rsyslogd { child, dir }
    }

    /// `name` in the rsyslogd's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.0.join(name)
    }

    /// Waits (10 s at most) until rsyslogd accepts TCP connections on `port` of loopback.
    pub fn wait_listening(&self, port: u16) {
        wait_until(Duration::from_secs(10), "rsyslogd to listen", || {
            TcpStream::connect(("127.0.0.1", port)).ok()
        });
    }

    /// What rsyslogd said about itself (errors, suspended and resumed actions), where the
    /// configuration writes it to [`INTERNAL_LOG`]; "" if nothing (yet).
    pub fn internal(&self) -> String {
        std::fs::read_to_string(self.path(INTERNAL_LOG)).unwrap_or_default()
    }
}

impl Drop for Rsyslogd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
