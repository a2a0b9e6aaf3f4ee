//! `driftline state list` and `driftline observed list`: what driftline
//! read, one entry per resource instance or configuration item.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use driftline_collectors::aws_config::api::AwsConfigSettings;
use driftline_collectors::terraform::{self, Salt};
use driftline_collectors::{SourceError, aws_config, expand_inputs};
use driftline_pipeline::{Collected, Record, SourceSide, Topic, format_epoch_ms};
use serde_json::json;

use crate::IdentityArgs;
use crate::inputs::{collect_live, collect_remote_state, grouped, load_mappings, terraform_config};

/// `driftline state list`.
pub fn state_list(inputs: &[String], id: &IdentityArgs, as_json: bool) -> anyhow::Result<ExitCode> {
    let mappings = load_mappings(id.mappings.as_deref())?;
    let state = grouped(inputs, SourceSide::Declared, &AwsConfigSettings::default())?;
    let (local, remote) = (state.local, state.remote_state);
    let (files, errs) = expand_inputs(&local, terraform::is_state_file);
    let mut errors: Vec<SourceError> = errs.into_iter().map(Into::into).collect();
    let types = Arc::new(mappings.type_table());
    let cfg = terraform_config(
        Vec::new(),
        id.account.clone(),
        id.region.clone(),
        types.clone(),
        Salt::from_env_or_random(),
    );
    let mut rows = Vec::new();
    let bus = Collected::new();
    errors.extend(collect_remote_state(&bus, remote, cfg.clone()).errors);
    rows.extend(
        bus.drain(Topic::Declared)
            .into_iter()
            .filter_map(|r| match r {
                Record::Declared(d) => Some(*d),
                _ => None,
            }),
    );
    for f in &files {
        match terraform::load_state(f, &cfg) {
            Ok(state) => {
                for w in &state.warnings {
                    eprintln!("warning: {}: {w}", f.display());
                }
                rows.extend(state.resources);
            }
            Err(e) => errors.push(e.into()),
        }
    }
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
    let mut out = std::io::stdout().lock();
    if as_json {
        let entries: Vec<_> = rows.iter().map(entry).collect();
        serde_json::to_writer_pretty(&mut out, &entries)?;
        writeln!(out)?;
    } else {
        let table: Vec<Vec<String>> = rows.iter().map(cells).collect();
        crate::report::write_table(&mut out, header, &table)?;
    }
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
    let mappings = load_mappings(id.mappings.as_deref())?;
    let types = Arc::new(mappings.type_table());
    let observed = grouped(inputs, SourceSide::Observed, &AwsConfigSettings::default())?;
    let (local, live) = (observed.local, observed.aws_config_api);
    let (files, errs) = expand_inputs(&local, aws_config::is_item_file);
    let mut errors: Vec<SourceError> = errs.into_iter().map(Into::into).collect();
    let mut rows = Vec::new();
    let bus = Collected::new();
    errors.extend(collect_live(&bus, live, &types)?.errors);
    rows.extend(
        bus.drain(Topic::Config)
            .into_iter()
            .filter_map(|r| match r {
                Record::Observed(o) => Some(*o),
                _ => None,
            }),
    );
    for f in &files {
        match aws_config::load_file(f, &types) {
            Ok(loaded) => {
                if let Some(why) = loaded.skipped {
                    eprintln!("note: {}: skipped: {why}", f.display());
                }
                errors.extend(loaded.item_errors.into_iter().map(|reason| SourceError {
                    source: f.display().to_string(),
                    reason,
                }));
                rows.extend(loaded.items);
            }
            Err(e) => errors.push(e.into()),
        }
    }
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
