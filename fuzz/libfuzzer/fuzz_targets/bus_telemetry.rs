#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| driftline_fuzz::run("bus_telemetry", data));
