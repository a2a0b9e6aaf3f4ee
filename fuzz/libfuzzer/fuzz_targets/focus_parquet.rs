#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| driftline_fuzz::run("focus_parquet", data));
