//! The import rule of the library, checked over its source: no module imports from a layer above its
//! own, and the simulator shares no code with the clients it is meant to check.
//!
//! ```text
//! domain → ports → adapters | transfer → steps → lambda (and the binaries: functions/, cli/)
//! ```
//!
//! A module may use its own layer and the layers to its left. `adapters` and `transfer` are one
//! layer but neither uses the other (the transfer streams what any adapter describes; an adapter
//! never streams). Doc comments may name any module; only code counts.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The layers, lowest first; modules in one entry are peers that must not use each other.
const LAYERS: [&[&str]; 5] = [
    &["domain"],
    &["ports"],
    &["adapters", "transfer"],
    &["steps"],
    &["lambda"],
];

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source folder") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its comments (line comments, doc comments and block comments).
fn code_lines(text: &str) -> Vec<(usize, String)> {
    let mut in_block = false;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let mut code = String::new();
        let mut rest = line;
        loop {
            if in_block {
                match rest.find("*/") {
                    Some(end) => {
                        rest = &rest[end + 2..];
                        in_block = false;
                    }
                    None => break,
                }
            } else {
                let block = rest.find("/*");
                let line_comment = rest.find("//");
                match (block, line_comment) {
                    (Some(b), Some(l)) if l < b => {
                        code.push_str(&rest[..l]);
                        break;
                    }
                    (Some(b), _) => {
                        code.push_str(&rest[..b]);
                        rest = &rest[b + 2..];
                        in_block = true;
                    }
                    (None, Some(l)) => {
                        code.push_str(&rest[..l]);
                        break;
                    }
                    (None, None) => {
                        code.push_str(rest);
                        break;
                    }
                }
            }
        }
        out.push((n + 1, code));
    }
    out
}

/// The top-level modules a line of code names after `prefix` (`crate::` in the library,
/// `amzpipe::` elsewhere), including the `prefix{a, b::c}` form.
fn named_modules(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let ident = |s: &str| {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect::<String>()
    };
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        let after = &rest[at + prefix.len()..];
        if let Some(group) = after.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for part in group[..end].split(',') {
                let name = ident(part.trim());
                if !name.is_empty() {
                    found.insert(name);
                }
            }
        } else {
            let name = ident(after);
            if !name.is_empty() {
                found.insert(name);
            }
        }
        rest = after;
    }
    found
}

/// Every `crate::` import of the library that runs against the layers, as `file:line: a → b`.
fn violations(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut found = Vec::new();
    for file in files {
        let relative = file.strip_prefix(src).expect("inside src");
        let own = relative
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .map(|s| s.trim_end_matches(".rs").to_owned())
            .expect("a module name");
        let Some(own_rank) = rank(&own) else {
            continue; // lib.rs
        };
        let text = std::fs::read_to_string(&file).expect("readable file");
        for (line, code) in code_lines(&text) {
            for used in named_modules(&code, "crate::") {
                let Some(used_rank) = rank(&used) else { continue };
                if used != own && used_rank >= own_rank {
                    found.push(format!("{}:{line}: {own} uses {used}", relative.display()));
                }
            }
        }
    }
    found
}

#[test]
fn no_module_of_the_library_imports_from_a_layer_above_its_own() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = violations(&src);
    assert!(
        found.is_empty(),
        "imports against the layers (domain → ports → adapters | transfer → steps → lambda):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_simulator_shares_no_code_with_the_clients_it_checks() {
    let sim = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/src/sim");
    let mut files = Vec::new();
    rust_files(&sim, &mut files);
    assert!(!files.is_empty(), "the simulator's sources are at {}", sim.display());
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable file");
        for (line, code) in code_lines(&text) {
            if !named_modules(&code, "amzpipe::").is_empty() {
                found.push(format!("{}:{line}: {}", file.display(), code.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "the simulator must hold to Amazon's published shapes, not to the clients' types:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_sees_an_upward_import_in_any_form() {
    // GIVEN a domain module that names a higher layer in each way Rust allows
    let dir = tempdir();
    std::fs::create_dir_all(dir.join("domain")).expect("folder");
    std::fs::write(
        dir.join("domain/job.rs"),
        "//! Uses [`crate::steps`] in a doc comment only.\nuse crate::{adapters::x, domain::y};\nfn f() { crate::transfer::go(); }\n/* crate::steps::z */\n",
    )
    .expect("file");
    std::fs::write(dir.join("ports.rs"), "use crate::domain::TimeWindow;\n").expect("file");
    std::fs::create_dir_all(dir.join("transfer")).expect("folder");
    std::fs::write(dir.join("transfer/http.rs"), "use crate::adapters::api;\n").expect("file");
    // WHEN the check reads it
    let found = violations(&dir);
    // THEN each code import against the layers is named, and nothing else
    assert_eq!(
        found,
        vec![
            "domain/job.rs:2: domain uses adapters".to_owned(),
            "domain/job.rs:3: domain uses transfer".to_owned(),
            "transfer/http.rs:1: transfer uses adapters".to_owned(),
        ]
    );
    std::fs::remove_dir_all(&dir).expect("clean up");
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("amzpipe-layers-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}
