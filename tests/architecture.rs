//! The shape of src/: no import cycle among the library's top-level modules.
//!
//! Reads the module tree from `src/lib.rs` (following `mod x;` into its files), takes every
//! `crate::x` path of each module's code (comments, string literals and `#[cfg(test)]` items
//! left out: a test may reach any part it exercises), and counts it as an edge from the
//! top-level module the file belongs to (a directory module and its children are one: `sink`,
//! `framing`, ...) to `x`. A cycle in that graph fails the test, naming it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// `text` with comments, string and char literals blanked (their line breaks kept).
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let blank = |out: &mut Vec<u8>, s: &[u8]| {
        out.extend(s.iter().map(|&c| if c == b'\n' { b'\n' } else { b' ' }))
    };
    let mut i = 0;
    while i < b.len() {
        let rest = &b[i..];
        let ident_before = i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        let end = if rest.starts_with(b"//") {
            rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len())
        } else if rest.starts_with(b"/*") {
            let mut depth = 0;
            let mut j = 0;
            loop {
                if j >= rest.len() {
                    break j;
                } else if rest[j..].starts_with(b"/*") {
                    depth += 1;
                    j += 2;
                } else if rest[j..].starts_with(b"*/") {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break j;
                    }
                } else {
                    j += 1;
                }
            }
        } else if rest[0] == b'r' && !ident_before && matches!(rest.get(1), Some(b'"' | b'#')) {
            let hashes = rest[1..].iter().take_while(|&&c| c == b'#').count();
            if rest.get(1 + hashes) != Some(&b'"') {
                out.push(rest[0]);
                i += 1;
                continue;
            }
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            let body = 2 + hashes;
            rest[body..]
                .windows(close.len())
                .position(|w| w == close.as_slice())
                .map_or(rest.len(), |p| body + p + close.len())
        } else if rest[0] == b'"' {
            let mut j = 1;
            while j < rest.len() && rest[j] != b'"' {
                j += if rest[j] == b'\\' { 2 } else { 1 };
            }
            j + 1
        } else if rest[0] == b'\'' && rest.get(1) == Some(&b'\\') {
            // '\n', '\'', '\u{..}': past the escaped character, up to the quote.
            3 + rest[3..].iter().position(|&c| c == b'\'').unwrap_or(0) + 1
        } else if rest[0] == b'\'' && rest.get(1 + char_len(rest.get(1))) == Some(&b'\'') {
            2 + char_len(rest.get(1))
        } else {
            out.push(rest[0]);
            i += 1;
            continue;
        };
        let end = end.min(rest.len());
        blank(&mut out, &rest[..end]);
        i += end;
    }
    String::from_utf8(out).expect("blanking keeps UTF-8 boundaries")
}

/// Removes each `#[cfg(test)]` item (up to its `;` or the end of its `{ }`) from `code`.
fn without_tests(code: &str) -> String {
    let mut code = code.to_string();
    while let Some(at) = code.find("#[cfg(test)]") {
        let b = code.as_bytes();
        let (mut j, mut depth) = (at + "#[cfg(test)]".len(), 0);
        while j < b.len() {
            match b[j] {
                b';' if depth == 0 => break,
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
            j += 1;
        }
        code.replace_range(at..(j + 1).min(code.len()), "");
    }
    code
}

/// The length in UTF-8 of the character that begins with `first`.
fn char_len(first: Option<&u8>) -> usize {
    match first.copied().unwrap_or(0) {
        0xf0.. => 4,
        0xe0.. => 3,
        0xc0.. => 2,
        _ => 1,
    }
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// The identifiers after `at` in `code`, up to the first that is not an identifier.
fn ident_at(code: &str, at: usize) -> &str {
    let rest = code[at..].trim_start();
    let n = rest.bytes().take_while(|&c| is_ident(c)).count();
    &rest[..n]
}

/// The top-level modules `code` names through `crate::`: `crate::x::...` and each first name
/// of a `crate::{x, y::z}` group.
fn crate_paths(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let b = code.as_bytes();
    for (at, _) in code.match_indices("crate") {
        if at > 0 && (is_ident(b[at - 1]) || b[at - 1] == b'$') {
            continue;
        }
        let rest = code[at + "crate".len()..].trim_start();
        let Some(rest) = rest.strip_prefix("::") else {
            continue;
        };
        let rest = rest.trim_start();
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if start && !c.is_whitespace() => {
                        found.insert(ident_at(group, i).to_string());
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            found.insert(ident_at(rest, 0).to_string());
        }
    }
    found.retain(|name| !name.is_empty() && name != "self");
    found
}

/// The `mod x;` declarations of `code` (tests removed already).
fn declared_modules(code: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (at, _) in code.match_indices("mod ") {
        if at > 0 && is_ident(code.as_bytes()[at - 1]) {
            continue;
        }
        let name = ident_at(code, at + 4);
        let after = code[at + 4..].trim_start()[name.len()..].trim_start();
        if !name.is_empty() && after.starts_with(';') {
            names.push(name.to_string());
        }
    }
    names
}

/// The file of module `name` declared in `parent`.
fn module_file(parent: &Path, name: &str) -> PathBuf {
    let stem = parent.file_stem().unwrap().to_str().unwrap();
    let dir = match stem {
        "lib" | "mod" => parent.parent().unwrap().to_path_buf(),
        _ => parent.with_extension(""),
    };
    let file = dir.join(format!("{name}.rs"));
    match file.exists() {
        true => file,
        false => dir.join(name).join("mod.rs"),
    }
}

/// Each top-level module and the top-level modules its code names.
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let lib = src.join("lib.rs");
    let code = without_tests(&code_only(&fs::read_to_string(&lib).unwrap()));
    let mut graph = BTreeMap::new();
    for top in declared_modules(&code) {
        let mut uses = BTreeSet::new();
        let mut files = vec![module_file(&lib, &top)];
        while let Some(file) = files.pop() {
            let text = fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
            let code = without_tests(&code_only(&text));
            uses.extend(crate_paths(&code));
            files.extend(
                declared_modules(&code)
                    .iter()
                    .map(|m| module_file(&file, m)),
            );
        }
        uses.remove(&top);
        graph.insert(top, uses);
    }
    graph
}

/// A cycle of `graph`, as the modules along it (the first repeated at the end), if any.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if !done.insert(node.to_string()) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_import_cycle_among_the_top_level_modules() {
    let graph = module_graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    assert!(graph.len() > 10, "the module tree was not read: {graph:?}");
    assert!(
        graph["server"].contains("connection"),
        "the paths were not read: {graph:?}"
    );
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "an import cycle among src/ modules: {} (move what they share to the module that \
             owns it)",
            cycle.join(" -> ")
        );
    }
}

/// The reading itself: each form of path it must see, and what it must not take for one.
#[test]
fn the_reading_sees_each_form_of_path_and_skips_comments_strings_and_tests() {
    let text = r##"
        use crate::a::X;
        use crate::{b, c::{D, E}, self};
        fn f() { crate::d::g(); let _ = "crate::no1"; let _ = r#"crate::no2"#; let _ = ('"', '\'', 'é', "\"crate::no8"); }
        // crate::no3
        /* crate::no4 /* nested */ crate::no5 */
        macro_rules! m { () => { $crate::no6 } }
        #[cfg(test)]
        mod tests { use crate::no7; }
        #[cfg(test)]
        mod more;
        mod kept;
    "##;
    let code = without_tests(&code_only(text));
    let found: Vec<String> = crate_paths(&code).into_iter().collect();
    assert_eq!(found, ["a", "b", "c", "d"]);
    assert_eq!(declared_modules(&code), ["kept"]);
    let cyclic = BTreeMap::from([
        ("x".to_string(), BTreeSet::from(["y".to_string()])),
        ("y".to_string(), BTreeSet::from(["z".to_string()])),
        ("z".to_string(), BTreeSet::from(["x".to_string()])),
    ]);
    assert_eq!(find_cycle(&cyclic).unwrap(), ["x", "y", "z", "x"]);
    let mut acyclic = cyclic;
    acyclic.get_mut("z").unwrap().clear();
    assert_eq!(find_cycle(&acyclic), None);
}
