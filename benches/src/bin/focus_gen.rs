//! Writes a FOCUS 1.0 cost export.
//!
//!   focus_gen demo examples/estate/aws-config/snapshot.json examples/estate/cost/focus-2024-09.csv
//!
//! `demo`: a month of daily spend for every billable resource in an AWS
//! Config snapshot (the demo estate's export is made this way).

use std::io::BufWriter;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mode, snapshot, out] = args.as_slice() else {
        eprintln!("usage: focus_gen demo SNAPSHOT.json OUT.csv");
        std::process::exit(2);
    };
    if mode != "demo" {
        eprintln!("focus_gen: unknown mode {mode:?} (demo)");
        std::process::exit(2);
    }
    let text = std::fs::read_to_string(snapshot).unwrap_or_else(|e| {
        eprintln!("{snapshot}: {e}");
        std::process::exit(2)
    });
    let snapshot: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        eprintln!("{snapshot}: {e}");
        std::process::exit(2)
    });
    let resources = driftline_benches::focus::billables(&snapshot);
    let file = std::fs::File::create(out).unwrap_or_else(|e| {
        eprintln!("{out}: {e}");
        std::process::exit(2)
    });
    let mut w = BufWriter::new(file);
    match driftline_benches::focus::write_month(&mut w, "123456789012", &resources) {
        Ok(rows) => eprintln!("{out}: {rows} rows for {} resources", resources.len()),
        Err(e) => {
            eprintln!("{out}: {e}");
            std::process::exit(2)
        }
    }
}
