//! `driftline slo`: SLO specs evaluated offline, like `promtool test
//! rules`: `slo eval` reads OpenMetrics samples with timestamps (the
//! input of `promtool tsdb create-blocks-from openmetrics`), evaluates
//! every step, and prints when each alert fired.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use driftline_collectors::prometheus::exposition::{self, Format};
use driftline_detectors::slo::burn::BurnRates;
use driftline_detectors::slo::offline::{self, AlertInterval};
use driftline_detectors::slo::promql::{Labels, SeriesSet};
use driftline_detectors::slo::spec;
use driftline_pipeline::time::{format_epoch_ms, parse_duration, parse_iso8601_ms};

#[derive(Subcommand)]
pub enum SloCommand {
    /// Evaluate SLO specs over recorded samples and print the alert
    /// intervals (`{"alerts":[…]}` with `--output json`).
    Eval(EvalArgs),
    /// Each SLO's error budget over its current period, from the samples
    /// in the store (`metric_samples`).
    Report(ReportArgs),
}

#[derive(Args)]
pub struct ReportArgs {
    /// Sloth or OpenSLO spec files or folders.
    #[arg(long, required = true)]
    spec: Vec<PathBuf>,
    #[command(flatten)]
    store: crate::sql::StoreArgs,
    /// The report's time (RFC 3339 or Unix seconds) [default: now].
    #[arg(long)]
    at: Option<String>,
    /// Split every SLO by this label's values (repeatable).
    #[arg(long, value_name = "LABEL")]
    group_by: Vec<String>,
    #[arg(long, value_enum, default_value_t = EvalOutput::Table)]
    output: EvalOutput,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum EvalOutput {
    Table,
    Json,
}

#[derive(Args)]
pub struct EvalArgs {
    /// Sloth spec files or folders (`prometheus/v1`, PrometheusServiceLevel,
    /// AlertWindows).
    #[arg(long, required = true)]
    spec: Vec<PathBuf>,
    /// OpenMetrics text whose samples all carry timestamps, ending `# EOF`.
    #[arg(long)]
    samples: PathBuf,
    /// The evaluation interval: one decision per step, as a rule group's.
    #[arg(long, default_value = "1m")]
    step: String,
    /// First step (RFC 3339 or Unix seconds) [default: the first sample].
    #[arg(long)]
    from: Option<String>,
    /// Last step [default: the last sample].
    #[arg(long)]
    to: Option<String>,
    /// Split every SLO by this label's values (repeatable).
    #[arg(long, value_name = "LABEL")]
    group_by: Vec<String>,
    /// Alert only when the long window saw at least N events (SLIs that
    /// count events).
    #[arg(long, value_name = "N", default_value_t = 0.0)]
    min_events: f64,
    #[arg(long, value_enum, default_value_t = EvalOutput::Table)]
    output: EvalOutput,
}

pub fn run(command: SloCommand) -> anyhow::Result<ExitCode> {
    match command {
        SloCommand::Eval(args) => eval(args),
        SloCommand::Report(args) => report(args),
    }
}

fn report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    use driftline_detectors::slo::report;
    let set = load_tuned(&args.spec, &args.group_by, 0.0)?;
    let at = match &args.at {
        Some(t) => time_arg("at", t)?,
        None => driftline_pipeline::now_ms(),
    };
    // The longest period, and the lookback before it.
    let from = at - report::longest_period_ms(&set) - driftline_detectors::slo::promql::LOOKBACK_MS;
    let names = report::metric_names(&set);
    let store = args.store.open()?;
    let series =
        report::read_series(&*store, names.as_deref(), from, at).map_err(|e| anyhow::anyhow!(e))?;
    let budgets = report::budgets(&set, &series, at, 60_000)?;
    match args.output {
        EvalOutput::Json => {
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!({ "at": format_epoch_ms(at), "slos": budgets })
                )?
            )
        }
        EvalOutput::Table => {
            println!(
                "{:<36} {:<14} {:>9} {:>7} {:>12} {:>17}  firing",
                "SLO", "SERVICE", "OBJECTIVE", "PERIOD", "ERROR RATIO", "BUDGET REMAINING"
            );
            for b in &budgets {
                let labels: Vec<String> =
                    b.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let name = if labels.is_empty() {
                    b.slo.clone()
                } else {
                    format!("{}{{{}}}", b.slo, labels.join(","))
                };
                let remaining = if b.budget_remaining.is_nan() {
                    "no data".to_string()
                } else {
                    format!("{:.1}%", b.budget_remaining * 100.0)
                };
                println!(
                    "{:<36} {:<14} {:>8}% {:>7} {:>12.6} {:>17}  {}",
                    name,
                    b.service,
                    b.objective,
                    b.period,
                    b.error_ratio,
                    remaining,
                    b.firing.join(",")
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The specs, with `--group-by` and `--min-events` applied to every SLO.
fn load_tuned(
    paths: &[PathBuf],
    group_by: &[String],
    min_events: f64,
) -> anyhow::Result<spec::SloSet> {
    let mut set = crate::inputs::load_slo_specs(paths)?;
    if !group_by.is_empty() || min_events > 0.0 {
        set.tune(&[spec::Tuning {
            group_by: group_by.to_vec(),
            min_events,
            ..Default::default()
        }])
        .map_err(|e| anyhow::anyhow!("--group-by/--min-events: {e}"))?;
    }
    Ok(set)
}

fn time_arg(flag: &str, text: &str) -> anyhow::Result<i64> {
    if let Ok(secs) = text.parse::<f64>() {
        return Ok((secs * 1000.0).round() as i64);
    }
    parse_iso8601_ms(text)
        .with_context(|| format!("--{flag} {text:?}: expected RFC 3339 or Unix seconds"))
}

/// The samples file as series, every line checked.
fn read_samples(path: &PathBuf) -> anyhow::Result<SeriesSet> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let samples = exposition::parse(&text, Format::OpenMetrics)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut set = SeriesSet::default();
    for s in samples {
        let Some(t) = s.timestamp_ms else {
            bail!(
                "{}: sample {} has no timestamp; slo eval needs one on every sample",
                path.display(),
                s.name
            );
        };
        let mut labels = s.labels;
        labels.push(("__name__".into(), s.name.clone()));
        if !set.push(Labels::new(labels), t, s.value) {
            bail!(
                "{}: sample {} at {} is older than the one before it in its series",
                path.display(),
                s.name,
                format_epoch_ms(t)
            );
        }
    }
    Ok(set)
}

fn eval(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let set = load_tuned(&args.spec, &args.group_by, args.min_events)?;
    let step = parse_duration(&args.step).map_err(|e| anyhow::anyhow!("--step: {e}"))?;
    let step_ms = step.as_millis() as i64;
    if step_ms <= 0 {
        bail!("--step must be longer than zero");
    }
    let series = read_samples(&args.samples)?;
    let Some((first, last)) = series.span() else {
        bail!("{}: no samples", args.samples.display());
    };
    let from = args
        .from
        .as_deref()
        .map(|t| time_arg("from", t))
        .transpose()?
        .unwrap_or(first);
    let to = args
        .to
        .as_deref()
        .map(|t| time_arg("to", t))
        .transpose()?
        .unwrap_or(last);
    let rates = BurnRates::new(&set)?;
    let intervals = offline::evaluate(&rates, &series, from, to, step_ms)?;
    match args.output {
        EvalOutput::Json => println!("{}", serde_json::to_string_pretty(&json(&intervals))?),
        EvalOutput::Table => print_table(&intervals),
    }
    Ok(ExitCode::SUCCESS)
}

fn json(intervals: &[AlertInterval]) -> serde_json::Value {
    let alerts: Vec<serde_json::Value> = intervals
        .iter()
        .map(|a| {
            let mut v = serde_json::to_value(a).unwrap_or_default();
            v["start"] = format_epoch_ms(a.start_ms).into();
            v["end"] = a.end_ms.map(format_epoch_ms).into();
            v["peak_burn_rates"] = serde_json::to_value(&a.peak_burn_rates).unwrap_or_default();
            v
        })
        .collect();
    serde_json::json!({ "alerts": alerts })
}

fn print_table(intervals: &[AlertInterval]) {
    if intervals.is_empty() {
        println!("no SLO alert fired");
        return;
    }
    println!(
        "{:<28} {:<16} {:<7} {:<25} {:<25} peak burn rates",
        "SLO", "SERVICE", "SEVERITY", "START", "END"
    );
    for a in intervals {
        let labels: Vec<String> = a.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let name = if labels.is_empty() {
            a.slo.clone()
        } else {
            format!("{}{{{}}}", a.slo, labels.join(","))
        };
        let burn: Vec<String> = a
            .peak_burn_rates
            .iter()
            .map(|(w, b)| format!("{w}={b:.1}"))
            .collect();
        println!(
            "{:<28} {:<16} {:<7} {:<25} {:<25} {}",
            name,
            a.service,
            a.severity.as_str(),
            format_epoch_ms(a.start_ms),
            a.end_ms
                .map(format_epoch_ms)
                .unwrap_or_else(|| "(firing)".into()),
            burn.join(" ")
        );
    }
}
