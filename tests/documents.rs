//! The documents against their single sources: the configuration keys (src/config/keys.rs)
//! against `Config` and its defaults, config/tcp-listener.toml's commented defaults, the
//! README's Configuration table and the man page's key list; the journal fields
//! (src/journal_fields.rs) against the README's tables and the field names the code writes.
//!
//! A generated part of a document sits between a `BEGIN name` and an `END name` comment;
//! `UPDATE_DOCS=1 cargo test --test documents` rewrites it from the source.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tcp_listener::config::keys::{KeyDefault, KEYS};
use tcp_listener::config::Config;
use tcp_listener::journal_fields;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The `[tls]` keys without a default, so that the section's defaults can be seen.
const TLS_REQUIRED: &str = "[tls]\ncertificate = \"/c.pem\"\nprivate_key = \"/k.pem\"\n";

fn parse(text: &str) -> Config {
    Config::parse(text, Path::new("test.toml")).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// `--check-config`'s output as `section.key` -> the value as it prints it, in its order.
fn flatten(config: &Config) -> Vec<(String, String)> {
    let mut section = String::new();
    let mut keys = Vec::new();
    for line in config.to_toml().lines() {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = format!("{name}.");
        } else if let Some((key, value)) = line.split_once(" = ") {
            keys.push((format!("{section}{key}"), value.to_string()));
        }
    }
    keys
}

/// The defaults of every key that has one, `[tls]`'s included, as `--check-config` prints them.
fn defaults() -> BTreeMap<String, String> {
    let mut defaults: BTreeMap<String, String> = flatten(&Config::default()).into_iter().collect();
    for (key, value) in flatten(&parse(TLS_REQUIRED)) {
        if key.starts_with("tls.") {
            defaults.insert(key, value);
        }
    }
    for required in ["tls.certificate", "tls.private_key"] {
        defaults.remove(required);
    }
    defaults
}

#[test]
fn the_key_list_names_every_key_check_config_prints_in_its_order() {
    let every =
        "metrics_listen = \"127.0.0.1:9188\"\n[log]\ntarget = \"journald\"\nnamespace = \"n\"\n"
            .to_string()
            + TLS_REQUIRED
            + "client_ca = \"/ca.pem\"\n";
    let printed: Vec<String> = flatten(&parse(&every))
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let documented: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
    assert_eq!(
        printed, documented,
        "src/config/keys.rs KEYS must name every key of Config, as --check-config prints them"
    );
}

#[test]
fn each_documented_default_is_the_default() {
    let defaults = defaults();
    for key in KEYS {
        let in_config = defaults.get(key.name);
        match key.default {
            KeyDefault::Value(value) => {
                let (base, text) = match key.section() {
                    Some("tls") => (
                        parse(TLS_REQUIRED),
                        format!("{TLS_REQUIRED}{} = {value}\n", key.leaf()),
                    ),
                    Some(section) => (
                        Config::default(),
                        format!("[{section}]\n{} = {value}\n", key.leaf()),
                    ),
                    None => (Config::default(), format!("{} = {value}\n", key.name)),
                };
                assert!(
                    parse(&text) == base,
                    "src/config/keys.rs documents `{} = {value}`, but Config::default() has {}",
                    key.name,
                    in_config.map_or("no value".into(), |v| format!("`{} = {v}`", key.name)),
                );
            }
            KeyDefault::Unset => assert!(
                in_config.is_none(),
                "src/config/keys.rs documents `{}` as unset, but Config::default() has `{} = {}`",
                key.name,
                key.name,
                in_config.unwrap()
            ),
            KeyDefault::Required => {
                let without: String = TLS_REQUIRED
                    .lines()
                    .filter(|l| !l.starts_with(&format!("{} =", key.leaf())))
                    .map(|l| format!("{l}\n"))
                    .collect();
                let e = Config::parse(&without, Path::new("test.toml"))
                    .expect_err(&format!("{} is documented as required", key.name));
                assert!(
                    e.to_string()
                        .contains(&format!("missing field `{}`", key.leaf())),
                    "{}: {e}",
                    key.name
                );
            }
        }
    }
}

/// config/tcp-listener.toml: every `#key = value` line (a `#` right before the key) and
/// `#[section]` line uncommented is a configuration with every key, and each key that has a
/// default shows it (a key without one shows an example).
#[test]
fn the_shipped_configs_commented_defaults_are_the_defaults() {
    let path = Path::new(ROOT).join("config/tcp-listener.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut uncommented = String::new();
    let mut section = String::new();
    let mut shown = Vec::new();
    for line in text.lines() {
        // A line in effect as it is (`[log]`), a commented one uncommented.
        let rest = match line.strip_prefix('#') {
            Some(rest) => rest,
            None if line.trim().is_empty() => continue,
            None => line,
        };
        if let Some(name) = rest.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            section = format!("{name}.");
        } else if let Some((key, _)) = rest.split_once(" = ") {
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                continue;
            }
            shown.push(format!("{section}{key}"));
        } else {
            continue;
        }
        uncommented += rest;
        uncommented.push('\n');
    }
    let config = Config::parse(&uncommented, &path)
        .unwrap_or_else(|e| panic!("{e}\nthe uncommented lines:\n{uncommented}"));
    let documented: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
    let missing: Vec<&&str> = documented
        .iter()
        .filter(|k| !shown.contains(&k.to_string()))
        .collect();
    let mut twice = shown.clone();
    twice.sort_unstable();
    twice.dedup();
    assert!(
        missing.is_empty() && twice.len() == shown.len(),
        "{}: every key once, as `#key = value`: {missing:?} missing, {} shown twice",
        path.display(),
        shown.len() - twice.len()
    );
    let defaults = defaults();
    let read: BTreeMap<String, String> = flatten(&config).into_iter().collect();
    for key in KEYS {
        if let KeyDefault::Value(_) = key.default {
            assert_eq!(
                read.get(key.name),
                defaults.get(key.name),
                "{} shows `{}` with another value than Config::default()'s",
                path.display(),
                key.name
            );
        }
    }
}

/// Replaces the part of `document` between `BEGIN name` and `END name` with `generated`
/// under `UPDATE_DOCS=1`; otherwise fails if they differ.
fn generated_part(document: &str, name: &str, generated: &str) {
    // Two parts of one document are rewritten one after the other, never both from one text.
    static REWRITING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = REWRITING.lock().unwrap_or_else(|e| e.into_inner());
    let path: PathBuf = Path::new(ROOT).join(document);
    let text = std::fs::read_to_string(&path).unwrap();
    let begin = text
        .lines()
        .position(|l| l.contains(&format!("BEGIN {name}:")))
        .unwrap_or_else(|| panic!("{document}: no `BEGIN {name}:` line"));
    let end = text
        .lines()
        .position(|l| l.contains(&format!("END {name}")) && !l.contains("BEGIN"))
        .unwrap_or_else(|| panic!("{document}: no `END {name}` line"));
    let lines: Vec<&str> = text.lines().collect();
    let now = lines[begin + 1..end].join("\n") + "\n";
    if now == generated {
        return;
    }
    if std::env::var_os("UPDATE_DOCS").is_some_and(|v| v == "1") {
        let mut out = lines[..=begin].join("\n") + "\n" + generated + &lines[end..].join("\n");
        if text.ends_with('\n') {
            out.push('\n');
        }
        std::fs::write(&path, out).unwrap();
        return;
    }
    let differs = now
        .lines()
        .zip(generated.lines())
        .position(|(a, b)| a != b)
        .unwrap_or(now.lines().count().min(generated.lines().count()));
    panic!(
        "{document}: the part `{name}` (line {}) differs from its source at its line {}:\n  \
         document: {:?}\n  source:   {:?}\nrun UPDATE_DOCS=1 cargo test --test documents to \
         rewrite it from the source",
        begin + 1,
        differs + 1,
        now.lines().nth(differs).unwrap_or("(end)"),
        generated.lines().nth(differs).unwrap_or("(end)"),
    );
}

#[test]
fn the_readme_configuration_table_is_made_from_the_key_list() {
    let table = tcp_listener::config::keys::markdown_table();
    generated_part("README.md", "keys", &format!("\n{table}\n"));
}

#[test]
fn the_man_pages_key_list_is_made_from_the_key_list() {
    generated_part(
        "packaging/tcp-listener.8",
        "keys",
        &tcp_listener::config::keys::man_list(),
    );
}

#[test]
fn the_readme_journal_field_tables_are_made_from_the_field_list() {
    let lines = journal_fields::lines_table();
    generated_part("README.md", "fields", &format!("\n{lines}\n"));
    let syslog = journal_fields::syslog_table();
    generated_part("README.md", "syslog-fields", &format!("\n{syslog}\n"));
}

/// The man page is written by hand, but names every field the list names (its JOURNAL
/// FIELDS section, SYSLOG MESSAGES for a syslog message's, the start notice's beside its
/// key): a field added to the list and not to the page fails here.
#[test]
fn the_man_page_names_every_field_of_the_field_list() {
    let page = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/tcp-listener.8"),
    )
    .unwrap()
    .replace("\\-", "-")
    .replace("\\_", "_");
    let missing: Vec<&str> = journal_fields::FIELDS
        .iter()
        .chain(journal_fields::SYSLOG_FIELDS)
        .flat_map(|row| row.names.iter().copied())
        .filter(|name| !page.contains(name))
        .collect();
    assert!(
        missing.is_empty(),
        "packaging/tcp-listener.8 does not name {missing:?}"
    );
}

/// Upper-case string literals of src/ that are not journal fields: environment variables,
/// signal names, words.
const NOT_FIELDS: &[&str] = &[
    "ASCII",
    "CARGO_PKG_VERSION",
    "CREDENTIALS_DIRECTORY",
    "FDSTORE",
    "IPV6_V6ONLY",
    "JOURNAL_STREAM",
    "LISTEN_FDNAMES",
    "LISTEN_FDS",
    "LISTEN_PID",
    "NOTIFY_SOCKET",
    "O_NONBLOCK",
    "SIGINT",
    "SIGTERM",
    "SO_RCVBUF",
    "SO_REUSEADDR",
    "SO_RXQ_OVFL",
    "STREET",
    "WATCHDOG_PID",
    "WATCHDOG_USEC",
];

/// Every string literal of upper-case letters, digits and `_` (4 or more) in the code of
/// src/ (not its tests), with the file it is in.
fn upper_case_literals() -> Vec<(String, PathBuf)> {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if name != "tests" {
                    walk(&path, files);
                }
            } else if name.ends_with(".rs") && name != "tests.rs" && name != "test_support.rs" {
                files.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&Path::new(ROOT).join("src"), &mut files);
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let code = text.split("\n#[cfg(test)]\nmod tests").next().unwrap();
        for piece in code.split('"').skip(1).step_by(2) {
            if piece.len() >= 4
                && piece.starts_with(|c: char| c.is_ascii_uppercase())
                && piece
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            {
                found.push((piece.to_string(), file.clone()));
            }
        }
    }
    found
}

#[test]
fn every_field_the_code_writes_is_in_the_field_list_and_back() {
    let documented: Vec<&str> = journal_fields::documented().collect();
    let literals = upper_case_literals();
    assert!(
        literals.iter().any(|(l, _)| l == "LINE_NUMBER"),
        "the scan finds the fields"
    );
    let undocumented: Vec<String> = literals
        .iter()
        .filter(|(l, _)| !documented.contains(&l.as_str()) && !NOT_FIELDS.contains(&l.as_str()))
        .map(|(l, file)| format!("\"{l}\" ({})", file.display()))
        .collect();
    assert!(
        undocumented.is_empty(),
        "not in src/journal_fields.rs: {undocumented:?}: a journal field is documented there \
         (then UPDATE_DOCS=1 cargo test --test documents); an upper-case literal that is not \
         one goes into NOT_FIELDS in tests/documents.rs"
    );
    for name in NOT_FIELDS {
        assert!(
            literals.iter().any(|(l, _)| l == name),
            "NOT_FIELDS names {name}, which is no longer in src/"
        );
    }
    for name in documented {
        assert!(
            literals.iter().any(|(l, _)| l == name),
            "src/journal_fields.rs documents {name}, which no code in src/ writes"
        );
    }
}
