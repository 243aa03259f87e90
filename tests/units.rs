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
