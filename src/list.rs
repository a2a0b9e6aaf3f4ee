//! `driftline state list` and `driftline observed list`: what driftline
//! read, one entry per resource instance or configuration item, through
//! the same collectors `scan` and `run` use.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use driftline_collectors::{Reading, SourceError, Sources, SourcesConfig};
use driftline_pipeline::{SnapshotSet, SourceSide, format_epoch_ms};
use serde_json::json;

use crate::IdentityArgs;
use crate::inputs::load_mappings;

/// Reads one side's inputs once; notes go to stderr as they would in scan.
fn read(
    inputs: &[String],
    side: SourceSide,
    id: &IdentityArgs,
) -> anyhow::Result<(SnapshotSet, Vec<SourceError>)> {
    let mappings = load_mappings(id.mappings.as_deref())?;
    let mut cfg = SourcesConfig::new(Arc::new(mappings.type_table()));
    match side {
        SourceSide::Declared => cfg.state = inputs.to_vec(),
        SourceSide::Observed => cfg.observed = inputs.to_vec(),
    }
    cfg.account = id.account.clone();
    cfg.region = id.region.clone();
    let out = driftline_pipeline::Snapshots::new();
    let report = Sources::new(&cfg, Reading::Once)?.poll_once(&out, &|_, _| {});
    for n in &report.notes {
        eprintln!("note: {n}");
    }
    let mut set = out.into_set();
    // Files are read in parallel: list them in a stable order, each
    // file's entries as the file holds them.
    set.declared.sort_by(|a, b| a.source.cmp(&b.source));
    set.observed.sort_by(|a, b| a.source.cmp(&b.source));
    Ok((set, report.errors))
}

/// `driftline state list`.
pub fn state_list(inputs: &[String], id: &IdentityArgs, as_json: bool) -> anyhow::Result<ExitCode> {
    let (set, errors) = read(inputs, SourceSide::Declared, id)?;
    let rows = set.declared;
    print(
        &rows,
        as_json,
        &errors,
        &[
            "ADDRESS",
            "MODE",
            "TYPE",
            "ID",
            "INDEX_KEY",
            "STATUS",
            "DEPOSED",
            "PROVIDER",
        ],
        |d| {
            json!({
                "address": d.address, "mode": d.mode, "type": d.tf_type, "provider": d.provider,
                "id": d.id, "index_key": d.index_key, "status": d.status, "deposed": d.deposed.is_some(),
                "deposed_key": d.deposed, "resource_key": (!d.resource_key.is_empty()).then_some(&d.resource_key),
                "sensitive_paths": d.sensitive_paths, "source": d.source, "serial": d.serial, "lineage": d.lineage,
            })
        },
        |d| {
            vec![
                d.address.clone(),
                d.mode.as_str().into(),
                d.tf_type.clone(),
                d.id.clone().unwrap_or_default(),
                d.index_key
                    .as_ref()
                    .map(|k| k.to_string())
                    .unwrap_or_default(),
                d.status.as_str().into(),
                if d.deposed.is_some() {
                    "deposed".into()
                } else {
                    String::new()
                },
                d.provider.clone(),
            ]
        },
    )
}

/// Prints one entry per row (pretty JSON, or a table with `header`),
/// names each error on stderr, and exits 2 when there was one.
fn print<T>(
    rows: &[T],
    as_json: bool,
    errors: &[SourceError],
    header: &[&str],
    entry: impl Fn(&T) -> serde_json::Value,
    cells: impl Fn(&T) -> Vec<String>,
) -> anyhow::Result<ExitCode> {
    let mut out = crate::stdout_in_blocks();
    if as_json {
        let entries: Vec<_> = rows.iter().map(entry).collect();
        serde_json::to_writer_pretty(&mut out, &entries)?;
        writeln!(out)?;
    } else {
        let table: Vec<Vec<String>> = rows.iter().map(cells).collect();
        driftline_pipeline::text::write_table(&mut out, header, &table)?;
    }
    out.flush()?;
    for e in errors {
        eprintln!("error: {e}");
    }
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// `driftline observed list`.
pub fn observed_list(
    inputs: &[String],
    id: &IdentityArgs,
    as_json: bool,
) -> anyhow::Result<ExitCode> {
    let (set, errors) = read(inputs, SourceSide::Observed, id)?;
    let rows = set.observed;
    print(
        &rows,
        as_json,
        &errors,
        &[
            "RESOURCE_KEY",
            "RESOURCE_TYPE",
            "RESOURCE_ID",
            "ARN",
            "ACCOUNT",
            "REGION",
            "STATUS",
            "CAPTURED_AT",
        ],
        |o| {
            json!({
                "resource_key": o.resource_key, "resource_type": o.resource_type, "resource_id": o.resource_id,
                "resource_name": o.resource_name, "arn": o.arn, "account": o.account, "region": o.region,
                "status": o.status, "captured_at": o.captured_at.map(format_epoch_ms),
                "configuration_state_id": o.configuration_state_id, "summary_only": o.summary_only, "source": o.source,
            })
        },
        |o| {
            vec![
                o.resource_key.clone(),
                o.resource_type.clone(),
                o.resource_id.clone(),
                o.arn.clone().unwrap_or_default(),
                o.account.clone(),
                o.region.clone(),
                o.status.as_str().into(),
                o.captured_at.map(format_epoch_ms).unwrap_or_default(),
            ]
        },
    )
}
