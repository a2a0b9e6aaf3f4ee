//! `driftline demo`: the example estate, from the checkout or compiled in.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// The example estate: the checkout's `examples/estate` when run from a
/// clone, else the copy compiled into the binary, unpacked to a temp dir.
pub fn demo_estate() -> anyhow::Result<PathBuf> {
    let in_tree = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/estate");
    if in_tree.is_dir() {
        return Ok(in_tree);
    }
    let dir = std::env::temp_dir().join(format!("driftline-demo-{}", std::process::id()));
    for (rel, text) in DEMO_FILES {
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&p, text)
            .with_context(|| format!("{}: cannot write demo file", p.display()))?;
    }
    Ok(dir)
}

const DEMO_FILES: &[(&str, &str)] = &[
    (
        "terraform/terraform.tfstate",
        include_str!("../examples/estate/terraform/terraform.tfstate"),
    ),
    (
        "aws-config/snapshot.json",
        include_str!("../examples/estate/aws-config/snapshot.json"),
    ),
    (
        "aws-config/notification.json",
        include_str!("../examples/estate/aws-config/notification.json"),
    ),
    (
        ".driftignore",
        include_str!("../examples/estate/.driftignore"),
    ),
];
