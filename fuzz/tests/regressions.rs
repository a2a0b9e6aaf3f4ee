//! Replays every kept input through its fuzz target: the crashes fuzzing
//! found (`regressions/<target>/`, each fixed) and the hand-written seeds
//! (`seeds/<target>/`). A panic here is a crash that came back.

use std::path::{Path, PathBuf};

use driftline_fuzz::TARGETS;

fn kept_inputs(folder: &str) -> Vec<(String, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(folder);
    let mut inputs = Vec::new();
    let Ok(targets) = std::fs::read_dir(&root) else {
        return inputs;
    };
    for target in targets.flatten() {
        let name = target.file_name().to_string_lossy().into_owned();
        assert!(
            TARGETS.iter().any(|t| t.name == name),
            "{}: no fuzz target is called {name}",
            root.display()
        );
        for input in std::fs::read_dir(target.path()).unwrap().flatten() {
            inputs.push((name.clone(), input.path()));
        }
    }
    inputs.sort();
    inputs
}

fn replay(folder: &str) -> usize {
    let inputs = kept_inputs(folder);
    for (target, path) in &inputs {
        let data = std::fs::read(path).unwrap();
        let outcome = std::panic::catch_unwind(|| driftline_fuzz::run(target, &data));
        assert!(outcome.is_ok(), "{target} panicked on {}", path.display());
    }
    inputs.len()
}

#[test]
fn every_crash_fuzzing_found_stays_fixed() {
    replay("regressions");
}

#[test]
fn every_seed_runs_through_its_target() {
    assert!(replay("seeds") > 0, "the seeds folder is empty");
}

#[test]
fn every_target_has_a_seed() {
    let seeded: Vec<String> = kept_inputs("seeds").into_iter().map(|(t, _)| t).collect();
    for t in TARGETS {
        assert!(
            seeded.contains(&t.name.to_string()),
            "no seed for {}",
            t.name
        );
    }
}
