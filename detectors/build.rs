//! Compiles every shipped mapping file into the binary, so the one-file
//! binary knows all types and adding a file needs no code change.
use std::io::Write;

fn main() {
    // Read at run time, not `env!`: a build script compiled in one checkout
    // can be reused from a shared target dir by a checkout elsewhere.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let dir = std::path::Path::new(&manifest).join("mappings");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("detectors/mappings exists")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    names.sort();
    let out = std::path::Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR"))
        .join("builtin_mappings.rs");
    let mut f = std::fs::File::create(out).expect("create builtin_mappings.rs");
    writeln!(f, "[").unwrap();
    for n in names {
        let p = dir.join(&n);
        println!("cargo:rerun-if-changed={}", p.display());
        writeln!(
            f,
            "    ({n:?}, include_str!({:?})),",
            p.display().to_string()
        )
        .unwrap();
    }
    writeln!(f, "]").unwrap();
}
