#![no_main]

// The importer catches the parquet crate's panics on corrupt files and turns
// them into errors; libfuzzer-sys's hook would abort on them first. A panic
// that escapes the importer still ends the run: it unwinds into libFuzzer.
libfuzzer_sys::fuzz_target!(
    init: {
        std::panic::set_hook(Box::new(|_| {}));
    },
    |data: &[u8]| driftline_fuzz::run("focus_parquet", data)
);
