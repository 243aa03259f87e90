//! The shipped systemd units, read as files: the template `tcp-listener@.service` is
//! `tcp-listener.service` with the instance's configuration, and every file the package
//! ships for the instances exists (they are booted under real systemd by
//! packaging/system-test).

use std::path::Path;

fn read(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A unit's sections: everything from its first `[Section]` line on (the header comment
/// says what the file is, and differs).
fn body(unit: &str) -> &str {
    let at = unit.find("\n[Unit]").expect("a [Unit] section") + 1;
    &unit[at..]
}

#[test]
fn the_template_service_is_the_plain_service_with_the_instance_s_configuration() {
    let plain = read("packaging/tcp-listener.service");
    let template = read("packaging/tcp-listener@.service");
    let expected = body(&plain)
        .replace(
            "Description=TCP line listener: logs every line a TCP client sends to the journal",
            "Description=TCP line listener %i: logs every line a client sends to the journal",
        )
        .replace(
            "--config /etc/tcp-listener/config.toml",
            "--config /etc/tcp-listener/%i.toml",
        );
    assert_ne!(expected, body(&plain), "the substitutions must apply");
    let (want, got): (Vec<&str>, Vec<&str>) = (
        expected.lines().collect(),
        body(&template).lines().collect(),
    );
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        assert_eq!(w, g, "tcp-listener@.service line {} of its sections", i + 1);
    }
    assert_eq!(
        want.len(),
        got.len(),
        "tcp-listener@.service sections' length"
    );
}

#[test]
fn every_instance_file_the_package_ships_exists_and_names_its_port() {
    let cargo = read("Cargo.toml");
    for (conf, port) in [("syslog", "514"), ("tls", "6514")] {
        let config = format!("config/{conf}.toml");
        assert!(
            read(&config).contains(&format!("\nport = {port}\n")),
            "{config}"
        );
        let socket = format!("packaging/instances/{conf}.socket.conf");
        assert!(
            read(&socket).contains(&format!("\nListenStream={port}\n")),
            "{socket}"
        );
        for (src, dst) in [
            (config, format!("etc/tcp-listener/{conf}.toml")),
            (
                socket,
                format!("lib/systemd/system/tcp-listener@{conf}.socket.d/listen.conf"),
            ),
        ] {
            let asset = format!("[\"{src}\", \"{dst}\", \"644\"]");
            assert!(cargo.contains(&asset), "Cargo.toml assets: {asset}");
        }
    }
    assert!(read("packaging/tcp-listener@.socket").contains("\nBacklog=3\n"));
}

/// The active (not commented) lines of a unit or configuration file.
fn active_lines(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// A socket unit passes a datagram socket (`ListenDatagram=`) only where the configuration it
/// goes with says `udp = true`, which the daemon needs to read it (issue 19): else it would be
/// bound and left unread. The syslog instance takes UDP on 514 as well as TCP; the default
/// socket (udp = false by default) does not.
#[test]
fn a_socket_passes_a_datagram_socket_exactly_where_its_configuration_reads_udp() {
    for (socket, config, port) in [
        (
            "packaging/instances/syslog.socket.conf",
            "config/syslog.toml",
            Some("514"),
        ),
        (
            "packaging/instances/tls.socket.conf",
            "config/tls.toml",
            None,
        ),
        (
            "packaging/tcp-listener.socket",
            "config/tcp-listener.toml",
            None,
        ),
    ] {
        let socket_text = read(socket);
        let datagram: Vec<&str> = active_lines(&socket_text)
            .into_iter()
            .filter(|l| l.starts_with("ListenDatagram="))
            .collect();
        let config_text = read(config);
        let udp = active_lines(&config_text).contains(&"udp = true");
        assert_eq!(
            datagram,
            port.map(|p| format!("ListenDatagram={p}"))
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            "{socket}"
        );
        assert_eq!(
            udp,
            port.is_some(),
            "{config}: udp = true goes with {socket}'s ListenDatagram="
        );
    }
}
