//! The service manager's side of sd_notify with a file descriptor store, as a test plays it:
//! a notify socket, `FDSTORE`, and what the daemon stores there (`FDSTORE=1` with
//! SCM_RIGHTS), to start the next daemon with (`Daemon::start_passing`).

use std::io::IoSliceMut;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixDatagram;

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

use super::TempDir;

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
}
