//! What tells the loop to stop or reload: SIGTERM/SIGINT/SIGHUP in the daemon, a socket pair
//! in tests (so a server can run inside a test process without signals).

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use mio::event::Source;
use mio::{Interest, Registry, Token};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

/// What the loop is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// SIGTERM or SIGINT: stop gracefully (a second signal exits at once, see
    /// [`install_signal_handlers`]).
    Stop { signal: &'static str },
    /// SIGHUP: re-read the configuration.
    Reload,
}

/// The process's signal handling: the first SIGTERM/SIGINT asks for a graceful stop (seen by
/// the event loop), a second one exits at once with status 1.
pub fn install_signal_handlers() -> io::Result<Control> {
    let stop_requested = Arc::new(AtomicBool::new(false));
    for sig in [SIGTERM, SIGINT] {
        // Registered first, so it sees the flag as the previous signal left it.
        signal_hook::flag::register_conditional_shutdown(sig, 1, Arc::clone(&stop_requested))?;
        signal_hook::flag::register(sig, Arc::clone(&stop_requested))?;
    }
    Ok(Control::Signals(Signals::new([SIGTERM, SIGINT, SIGHUP])?))
}

pub enum Control {
    Signals(Signals),
    /// Commands written by a [`ControlHandle`]: `T` stop, `H` reload.
    Channel(mio::net::UnixStream),
}

/// The other end of [`Control::channel`].
pub struct ControlHandle(UnixStream);

impl ControlHandle {
    pub fn stop(&self) {
        let _ = (&self.0).write_all(b"T");
    }

    pub fn reload(&self) {
        let _ = (&self.0).write_all(b"H");
    }
}

impl Control {
    /// A control driven by the returned handle instead of signals.
    pub fn channel() -> io::Result<(Control, ControlHandle)> {
        let (ours, theirs) = UnixStream::pair()?;
        ours.set_nonblocking(true)?;
        Ok((
            Control::Channel(mio::net::UnixStream::from_std(ours)),
            ControlHandle(theirs),
        ))
    }

    /// The commands that arrived since the last call.
    pub fn pending(&mut self) -> Vec<Command> {
        match self {
            Control::Signals(signals) => signals
                .pending()
                .filter_map(|signal| match signal {
                    SIGTERM => Some(Command::Stop { signal: "SIGTERM" }),
                    SIGINT => Some(Command::Stop { signal: "SIGINT" }),
                    SIGHUP => Some(Command::Reload),
                    _ => None,
                })
                .collect(),
            Control::Channel(stream) => {
                let mut commands = Vec::new();
                let mut buf = [0; 64];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    commands.extend(buf[..n].iter().filter_map(|b| match b {
                        b'T' => Some(Command::Stop { signal: "SIGTERM" }),
                        b'H' => Some(Command::Reload),
                        _ => None,
                    }));
                }
                commands
            }
        }
    }
}

impl Control {
    /// The source the loop registers.
    fn source(&mut self) -> &mut dyn Source {
        match self {
            Control::Signals(s) => s,
            Control::Channel(s) => s,
        }
    }
}

impl Source for Control {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        self.source().register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        self.source().reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        self.source().deregister(registry)
    }
}
