//! The Parquet target's seed: the example estate's FOCUS export written as
//! Parquet, every column as text, as exports that are not typed hold them.
//! The copy kept in `fuzz/seeds/focus_parquet/` was written by this test;
//! `scripts/fuzz.sh` sets `DRIFTLINE_FUZZ_SEEDS` to write it anew.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, StringArray};
use arrow::record_batch::RecordBatch;
use driftline_collectors::cost;

fn estate_export_as_parquet() -> (Vec<u8>, usize) {
    let csv_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/estate/cost/focus-2024-09.csv");
    let mut reader = csv::Reader::from_path(csv_path).unwrap();
    let headers: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let columns = headers.iter().enumerate().map(|(i, name)| {
        let values: StringArray = rows
            .iter()
            .map(|r| r.get(i).filter(|v| !v.is_empty()))
            .collect();
        (name.as_str(), Arc::new(values) as ArrayRef)
    });
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let mut bytes = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut bytes, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    (bytes, rows.len())
}

#[test]
fn the_estate_export_as_parquet_reads_and_seeds_the_target() {
    let (bytes, rows) = estate_export_as_parquet();
    let read = cost::read_parquet_bytes(&bytes, "seed.parquet", &mut |_| Ok(())).unwrap();
    assert_eq!(read.rows as usize, rows);
    driftline_fuzz::run("focus_parquet", &bytes);
    if let Some(dir) = std::env::var_os("DRIFTLINE_FUZZ_SEEDS") {
        let dir = Path::new(&dir).join("focus_parquet");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("estate.parquet"), &bytes).unwrap();
    }
}

#[test]
fn a_file_the_parquet_crate_asserts_on_is_an_error() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions/focus_parquet");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let Err(e) = cost::read_parquet_bytes(&bytes, "crash.parquet", &mut |_| Ok(())) else {
            panic!("a corrupt file was read");
        };
        assert!(e.starts_with("corrupt Parquet: the reader gave up"), "{e}");
        seen += 1;
    }
    assert!(seen > 0);
}
