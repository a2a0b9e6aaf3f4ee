#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| driftline_fuzz::run("aws_config_items", data));
