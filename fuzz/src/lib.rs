//! The fuzz targets: one per parser and decoder that reads what other
//! programs wrote, each through the entry point the product calls.
//!
//! A target may refuse its input; it must never panic, abort or allocate
//! without bound (libFuzzer runs them with `-rss_limit_mb` and
//! `-malloc_limit_mb`). The binaries under `libfuzzer/` are one line each
//! around `run`; `tests/regressions.rs` replays every input kept in
//! `regressions/<target>/` and `seeds/<target>/` through the same
//! functions, so a crash once found stays fixed. `scripts/fuzz.sh` runs
//! them all.
//!
//! Targets whose input has more than one form (snappy or raw, JSON or
//! protobuf) take the form from the first byte, so one corpus explores
//! all of them.

mod targets;

/// A named fuzz target.
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
}

/// Every target, by the name its binary, corpus and regressions use.
pub const TARGETS: &[Target] = &[
    Target {
        name: "terraform_state",
        run: targets::terraform_state,
    },
    Target {
        name: "aws_config_items",
        run: targets::aws_config_items,
    },
    Target {
        name: "aws_config_notification",
        run: targets::aws_config_notification,
    },
    Target {
        name: "focus_csv",
        run: targets::focus_csv,
    },
    Target {
        name: "focus_parquet",
        run: targets::focus_parquet,
    },
    Target {
        name: "exposition",
        run: targets::exposition,
    },
    Target {
        name: "remote_write",
        run: targets::remote_write,
    },
    Target {
        name: "otlp_metrics",
        run: targets::otlp_metrics,
    },
    Target {
        name: "otlp_logs",
        run: targets::otlp_logs,
    },
    Target {
        name: "log_line",
        run: targets::log_line,
    },
    Target {
        name: "slo_spec",
        run: targets::slo_spec,
    },
    Target {
        name: "promql",
        run: targets::promql,
    },
    Target {
        name: "driftignore",
        run: targets::driftignore,
    },
    Target {
        name: "mapping_toml",
        run: targets::mapping_toml,
    },
    Target {
        name: "bus_snapshot",
        run: targets::bus_snapshot,
    },
    Target {
        name: "bus_telemetry",
        run: targets::bus_telemetry,
    },
];

/// Runs the target called `name` on one input.
///
/// # Panics
/// When no target has that name (a binary and this list disagree), or
/// when the target itself panics, which is the bug being looked for.
pub fn run(name: &str, data: &[u8]) {
    let target = TARGETS
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no fuzz target named {name}"));
    (target.run)(data)
}
