//! Shared helpers for the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// `../shared/fixtures` beside the checkout (or `DRIFTLINE_FIXTURES`).
/// The real-world fixtures are required: a missing folder fails the test.
pub fn fixtures() -> PathBuf {
    let p = std::env::var("DRIFTLINE_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures"));
    assert!(
        p.is_dir(),
        "fixtures folder {} is missing (set DRIFTLINE_FIXTURES)",
        p.display()
    );
    p
}

pub fn estate() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/estate")
}

/// Rows of a TSV file as maps from header to cell.
pub fn tsv(path: &std::path::Path) -> Vec<std::collections::HashMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split('\t')
        .map(str::to_string)
        .collect();
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            header
                .iter()
                .cloned()
                .zip(l.split('\t').map(str::to_string))
                .collect()
        })
        .collect()
}

/// `instances=15 managed=15 …` → the number after `key=`.
pub fn note_count(notes: &str, key: &str) -> Option<usize> {
    notes
        .split([' ', ',', '|'])
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .and_then(|n| n.parse().ok())
}

pub fn driftline() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_driftline"));
    c.env_remove("RUST_LOG")
        .env("DRIFTLINE_HASH_SALT", "test-salt");
    c
}
