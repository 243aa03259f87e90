//! Arbitrary text to the configuration parser, as `--check-config` and SIGHUP read a file.
//!
//! Invariants: it never panics; an error is printed as `path:line:col: message` with a line
//! and column inside the text; a configuration it accepts is within the documented bounds and
//! reads back the same from its own `--check-config` output.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use tcp_listener::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::parse(text, Path::new("fuzz.toml")) {
        Ok(c) => {
            assert!((4..=tcp_listener::config::MAX_LINE_LENGTH_MAX).contains(&c.max_line_length));
            assert!((1..=1 << 20).contains(&c.buffer_size));
            assert!((1..=1 << 20).contains(&c.max_connections));
            assert!((1..=65535).contains(&c.backlog));
            let again = Config::parse(&c.to_toml(), Path::new("again.toml"))
                .unwrap_or_else(|e| panic!("its own output does not parse: {e}"));
            assert_eq!(again, c);
        }
        Err(e) => {
            let (line, col) = e
                .position
                .unwrap_or_else(|| panic!("an error without line:col: {e}"));
            let lines = text.split('\n').count();
            assert!(line >= 1 && line <= lines, "line {line} of {lines}: {e}");
            let line_text = text.split('\n').nth(line - 1).unwrap_or("");
            assert!(
                col >= 1 && col <= line_text.chars().count() + 1,
                "column {col} of {line_text:?}: {e}"
            );
            let shown = e.to_string();
            assert!(
                shown.starts_with(&format!("fuzz.toml:{line}:{col}: ")),
                "{shown}"
            );
        }
    }
});
