//! The `tcp-listener` program: parse arguments, load the configuration, bind, run.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tcp_listener::config::{Config, LogTarget, DEFAULT_CONFIG_PATH};
use tcp_listener::fdstore::Carried;
use tcp_listener::sink::check_journal_socket;
use tcp_listener::tls::Tls;
use tcp_listener::{cli, install_signal_handlers, listener, systemd, EX_CONFIG};

fn main() -> ExitCode {
    let args = match cli::parse(std::env::args_os().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("tcp-listener: {e}\n\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    if args.help {
        print!("{}", cli::USAGE);
        return ExitCode::SUCCESS;
    }
    if args.version {
        println!("tcp-listener {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let config_path = args.config.clone().or_else(|| {
        let default = PathBuf::from(DEFAULT_CONFIG_PATH);
        default.exists().then_some(default)
    });
    let config = match &config_path {
        Some(path) => match Config::load(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("tcp-listener: {e}");
                return ExitCode::from(EX_CONFIG as u8);
            }
        },
        None => {
            eprintln!("tcp-listener: no {DEFAULT_CONFIG_PATH}: using built-in defaults");
            Config::default()
        }
    };
    // The certificate and key, read and matched now: a file that cannot be used is a
    // configuration error, named by its path.
    let tls = match config.tls.as_ref().map(Tls::load).transpose() {
        Ok(tls) => tls,
        Err(e) => {
            eprintln!("tcp-listener: {e}");
            return ExitCode::from(EX_CONFIG as u8);
        }
    };
    if args.check_config {
        let source = config_path
            .as_deref()
            .unwrap_or(Path::new("built-in defaults"));
        println!("# effective configuration from {}", source.display());
        print!("{}", config.to_toml());
        if let Some(tls) = &tls {
            let (report, soon) = tls.check_report(std::time::SystemTime::now());
            println!("# {report}");
            if soon {
                eprintln!("tcp-listener: warning: {report}");
            }
        }
        if config.log.target == LogTarget::Journald {
            // Valid, but not usable here: worth saying (the daemon would fall back to stderr).
            if let Err(why) = check_journal_socket(&config.log.journal_socket) {
                eprintln!(
                    "tcp-listener: warning: the journal socket {} {why}: here the daemon would \
                     log to stderr until it can be used",
                    config.log.journal_socket.display()
                );
            }
        }
        if let (Some(namespace), Some(path)) = (
            config.log.namespace.as_deref(),
            config.log.namespace_socket(),
        ) {
            println!(
                "# client entries (lines, connections) go to the journal namespace {namespace} \
                 ({}), the daemon's own to {}: journalctl --namespace={namespace}",
                path.display(),
                config.log.journal_socket.display()
            );
            if let Err(why) = check_journal_socket(&path) {
                eprintln!(
                    "tcp-listener: warning: the socket of the journal namespace {namespace}, \
                     {}, {why}: here client entries would go to the main journal until it can \
                     be used (systemctl start systemd-journald@{namespace}.socket)",
                    path.display()
                );
            }
        }
        return ExitCode::SUCCESS;
    }
    // Descriptors from systemd: a socket unit's, or what the previous process stored.
    let mut carried = Carried::sort(systemd::passed_fds());
    let listen = match listener::open(&config, &mut carried) {
        Ok((listen, notices)) => {
            for notice in notices {
                eprintln!("tcp-listener: {notice}");
            }
            listen
        }
        Err(e) => {
            eprintln!("tcp-listener: {e}");
            return ExitCode::FAILURE;
        }
    };
    let control = match install_signal_handlers() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tcp-listener: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    match tcp_listener::run(listen, config, tls, config_path, control, carried) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tcp-listener: {e}");
            ExitCode::FAILURE
        }
    }
}
