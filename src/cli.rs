//! The command line: `tcp-listener [--config PATH] [--check-config] [--version] [--help]`.

use std::ffi::OsString;
use std::path::PathBuf;

pub const USAGE: &str = "\
Usage: tcp-listener [--config PATH] [--check-config] [--version] [--help]

Listens on a TCP port and logs every line any client sends to journald,
with the client's address (REMOTE_ADDR, REMOTE_PORT).

Options:
  -c, --config PATH   configuration file (default: /etc/tcp-listener/config.toml
                      if it exists, else built-in defaults)
      --check-config  check the configuration, print it as in effect, and exit
  -V, --version       print the version and exit
  -h, --help          print this help and exit

Exit status: 0 ok, 1 runtime failure (such as a bind error), 2 usage error,
78 configuration error.
Signals: SIGTERM/SIGINT stop gracefully (a second one stops at once),
SIGHUP re-reads the configuration.
";

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Args {
    pub config: Option<PathBuf>,
    pub check_config: bool,
    pub version: bool,
    pub help: bool,
}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Args, String> {
    let mut parsed = Args::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let text = arg.to_string_lossy();
        match text.as_ref() {
            "-c" | "--config" => {
                let path = args
                    .next()
                    .ok_or_else(|| format!("{text} needs a file path"))?;
                parsed.config = Some(PathBuf::from(path));
            }
            s if s.starts_with("--config=") => {
                parsed.config = Some(PathBuf::from(&s["--config=".len()..]));
            }
            "--check-config" => parsed.check_config = true,
            "-V" | "--version" => parsed.version = true,
            "-h" | "--help" => parsed.help = true,
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Args, String> {
        parse(args.iter().map(OsString::from))
    }

    #[test]
    fn options() {
        assert_eq!(p(&[]).unwrap(), Args::default());
        let a = p(&["--config", "x.toml", "--check-config"]).unwrap();
        assert_eq!(a.config, Some(PathBuf::from("x.toml")));
        assert!(a.check_config);
        assert_eq!(
            p(&["--config=y.toml"]).unwrap().config,
            Some("y.toml".into())
        );
        assert!(p(&["-h"]).unwrap().help);
        assert!(p(&["--version"]).unwrap().version);
    }

    #[test]
    fn mistakes_are_explained() {
        assert_eq!(p(&["--config"]).unwrap_err(), "--config needs a file path");
        assert_eq!(
            p(&["--port", "1"]).unwrap_err(),
            "unknown argument `--port`"
        );
    }
}
