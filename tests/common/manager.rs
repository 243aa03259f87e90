//! The service manager's side of sd_notify with a file descriptor store, as a test plays it:
//! a notify socket, `FDSTORE`, and what the daemon stores there (`FDSTORE=1` with
//! SCM_RIGHTS), to start the next daemon with (`Daemon::start_passing`); and the steps of a
//! restart test: a daemon started under the manager, stopped, the next one started from what
//! it stored (`start`, `stop`, `restart`, and `first_process` for the usual opening).

use std::io::IoSliceMut;
use std::net::TcpStream;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

use super::{lines_of, send, Daemon, Journal, TempDir, PORT};

/// What a daemon handed to the store, by name, as the next start is passed it.
pub type Stored = Vec<(String, OwnedFd)>;

/// The service manager's side of the notify socket.
pub struct Manager {
    pub socket: UnixDatagram,
    pub path: std::path::PathBuf,
    _dir: TempDir,
    /// What the daemon stored, in order, by name; `FDSTOREREMOVE` takes names out.
    pub store: Vec<(String, OwnedFd)>,
    pub removed: Vec<String>,
    pub messages: Vec<String>,
}

impl Manager {
    pub fn new() -> Manager {
        let dir = TempDir::new();
        let path = dir.0.join("notify");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket.set_nonblocking(true).unwrap();
        Manager {
            socket,
            path,
            _dir: dir,
            store: Vec::new(),
            removed: Vec::new(),
            messages: Vec::new(),
        }
    }

    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("NOTIFY_SOCKET", self.path.to_str().unwrap().to_string()),
            ("FDSTORE", "80".to_string()),
        ]
    }

    /// Takes every notification waiting, with the descriptors they carry.
    pub fn receive(&mut self) {
        loop {
            let mut buf = [0u8; 4096];
            let mut iov = [IoSliceMut::new(&mut buf)];
            let mut cmsg = nix::cmsg_space!([RawFd; 4]);
            let msg = match recvmsg::<()>(
                std::os::fd::AsRawFd::as_raw_fd(&self.socket),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_CMSG_CLOEXEC | MsgFlags::MSG_DONTWAIT,
            ) {
                Ok(msg) => msg,
                Err(_) => return,
            };
            let mut fds = Vec::new();
            for c in msg.cmsgs().unwrap() {
                if let ControlMessageOwned::ScmRights(raw) = c {
                    // SAFETY: received with SCM_RIGHTS: new descriptors, ours.
                    fds.extend(
                        raw.into_iter()
                            .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                    );
                }
            }
            let len = msg.bytes;
            let text = String::from_utf8_lossy(&buf[..len]).into_owned();
            let name = text
                .lines()
                .find_map(|l| l.strip_prefix("FDNAME="))
                .unwrap_or("")
                .to_string();
            if text.lines().any(|l| l == "FDSTORE=1") {
                for fd in fds {
                    self.store.push((name.clone(), fd));
                }
            } else if text.lines().any(|l| l == "FDSTOREREMOVE=1") {
                self.removed.push(name);
            }
            self.messages.push(text);
        }
    }

    pub fn names(&self) -> Vec<String> {
        self.store.iter().map(|(n, _)| n.clone()).collect()
    }

    /// `env` as a daemon's environment takes it.
    fn env_pairs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
        env.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }

    /// A daemon with `config` under this manager, with a store (`NOTIFY_SOCKET`, `FDSTORE`).
    pub fn start(&self, config: &str) -> Daemon {
        let env = self.env();
        Daemon::start_with_env(config, &Manager::env_pairs(&env))
    }

    /// Stops `daemon` (SIGTERM; it must exit with 0) and takes what it stored.
    pub fn stop(&mut self, daemon: &mut Daemon) -> Stored {
        daemon.signal(libc::SIGTERM);
        let status = daemon.wait_exit(Duration::from_secs(15));
        assert_eq!(status.code(), Some(0), "{:?}", daemon.stderr_lines());
        self.receive();
        std::mem::take(&mut self.store)
    }

    /// The next daemon, as systemd starts it at a restart: `config` on the port the stopped
    /// one listened on, passed `fds` (what it stored).
    pub fn restart(&self, config: &str, port: u16, fds: Stored) -> Daemon {
        let env = self.env();
        let config = config.replace(PORT, &port.to_string());
        Daemon::start_passing(&config, &Manager::env_pairs(&env), fds)
    }

    /// The opening of most restart tests: a daemon with `config` under this manager, one
    /// client that sends `data` until `journal` holds one line, then the stop. Returns the
    /// client (still connected: the store holds its connection), the port and what the daemon
    /// stored.
    pub fn first_process(
        &mut self,
        journal: &Journal,
        config: &str,
        data: &[u8],
    ) -> (TcpStream, u16, Stored) {
        let mut first = self.start(config);
        let mut client = first.connect();
        send(&mut client, data);
        journal.wait_for("the first line", |e| lines_of(e).len() == 1);
        let stored = self.stop(&mut first);
        (client, first.port, stored)
    }
}
