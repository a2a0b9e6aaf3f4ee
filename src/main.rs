//! The driftline binary: the only place that knows the whole graph
//! (collectors → bus → detectors → report). `anyhow` lives here only.

mod allocator;
mod demo;
mod inputs;
mod list;
mod oncall;
mod scan;
mod service;
mod slo;
mod sql;
mod telemetry;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use driftline_detectors::drift::render;

use crate::scan::{ScanInputs, ScanOutcome};

#[derive(Parser)]
#[command(
    name = "driftline",
    version,
    about = "Finds drift between what infrastructure code declares and what the cloud runs"
)]
struct Cli {
    /// Log level filter (also RUST_LOG), e.g. `info`, `driftline=debug`.
    #[arg(long, global = true, default_value = "warn")]
    log_level: String,
    /// Log as JSON lines instead of text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// What driftline reads from Terraform state files.
    State {
        #[command(subcommand)]
        command: ListCommand,
    },
    /// What driftline reads from AWS Config items and notifications.
    Observed {
        #[command(subcommand)]
        command: ListCommand,
    },
    /// One-shot drift scan: exit 0 without drift, 1 with drift, 2 on error.
    Scan(ScanArgs),
    /// The service: watch folders, keep findings current, publish them.
    Run(service::RunArgs),
    /// Silence alerts on a running driftline (like amtool silence).
    Silence {
        #[command(subcommand)]
        command: oncall::SilenceCommand,
    },
    /// Show an alert's remediation proposals; `--approve` runs them.
    Remediate(oncall::RemediateArgs),
    /// Validate a driftline.toml (and the mappings and .driftignore it
    /// names) without running anything; errors name the key.
    Check {
        /// The configuration to check (driftline.toml when neither this nor
        /// `--rules` is given).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Policy rules to check: `shipped` or a folder of `*.sql`. Each is
        /// planned over the rule tables; errors name the file.
        #[arg(long, value_name = "DIR|shipped")]
        rules: Option<PathBuf>,
        /// SLO specs to check (Sloth files or folders); errors name the
        /// file, the path in the document and the reason.
        #[arg(long, value_name = "FILE|DIR")]
        slo: Vec<PathBuf>,
    },
    /// Ask the store in SQL: one read-only query over the tables and the
    /// FinOps views (`focus_data_table`, `cost_by_tag`, `tagging_coverage`, …).
    Sql(sql::SqlArgs),
    /// FOCUS cost data.
    Cost {
        #[command(subcommand)]
        command: sql::CostCommand,
    },
    /// Service level objectives: evaluate Sloth specs offline.
    Slo {
        #[command(subcommand)]
        command: slo::SloCommand,
    },
    /// Scan the example estate shipped in examples/estate.
    Demo {
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
}

#[derive(Subcommand)]
enum ListCommand {
    /// One entry per resource instance (state) or configuration item (observed).
    List {
        /// Files, directories or globs.
        #[arg(required = true)]
        inputs: Vec<String>,
        #[arg(long, value_enum, default_value_t = ListOutput::Table)]
        output: ListOutput,
        #[command(flatten)]
        identity: IdentityArgs,
    },
}

#[derive(Args, Clone, Default)]
struct IdentityArgs {
    /// Account for declared resources whose attributes name none.
    #[arg(long)]
    account: Option<String>,
    /// Region for declared resources whose attributes name none.
    #[arg(long)]
    region: Option<String>,
    /// Extra mapping files (*.toml), overriding the shipped ones by type.
    #[arg(long)]
    mappings: Option<PathBuf>,
}

#[derive(Args)]
struct ScanArgs {
    /// Terraform state: files, directories, globs, `s3://BUCKET/KEY` (S3
    /// backend, every workspace under env:/) or `https://…` (HTTP backend;
    /// basic auth from TF_HTTP_USERNAME / TF_HTTP_PASSWORD).
    #[arg(long, required = true, num_args = 1..)]
    state: Vec<String>,
    /// AWS Config: item / notification / history files or directories, or
    /// the live API: `aws-config` (the environment's region),
    /// `aws-config:REGION,REGION` or `aws-config-aggregator:NAME`. The
    /// standard AWS environment applies (AWS_REGION, AWS_PROFILE,
    /// AWS_ENDPOINT_URL, credentials), as in the AWS CLI.
    #[arg(long, required = true, num_args = 1..)]
    observed: Vec<String>,
    /// A .driftignore file (driftctl syntax).
    #[arg(long)]
    driftignore: Option<PathBuf>,
    /// A driftline.toml: its `[aws_config]` (regions, budget, endpoint,
    /// profile) for `--observed aws-config`, `[drift] rules` when `--rules`
    /// is not given, `[finops]` required tags, and `[store]`.
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
    #[command(flatten)]
    identity: IdentityArgs,
    /// Also send one PagerDuty trigger per finding: the environment
    /// variable holding the Events API v2 routing key. Nothing is resolved.
    #[arg(long, value_name = "VAR")]
    pagerduty_routing_key_env: Option<String>,
    /// PagerDuty Events API v2 endpoint.
    #[arg(long, value_name = "URL", default_value = driftline_alerts::config::PAGERDUTY_EVENTS_URL)]
    pagerduty_url: String,
    /// Record the findings in the store under DIR (`finding_events`: new
    /// ones, and open ones this scan no longer finds as resolved), for
    /// `driftline sql` and the dashboards.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Also run policy rules: `shipped` (required tags, open admin ports,
    /// unencrypted volumes, public buckets, untagged spend) or a folder of
    /// `*.sql` rules. Cost rules read the store's cost rows when
    /// `--data-dir` or `--clickhouse` names one.
    #[arg(long, value_name = "DIR|shipped")]
    rules: Option<PathBuf>,
    /// Record them in ClickHouse at URL instead.
    #[arg(long, value_name = "URL")]
    clickhouse: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Output {
    Table,
    Json,
    Sarif,
}

#[derive(Clone, Copy, ValueEnum)]
enum ListOutput {
    Table,
    Json,
}

fn main() -> ExitCode {
    allocator::tune();
    let cli = Cli::parse();
    let logging = Logging {
        level: cli.log_level.clone(),
        json: cli.log_json,
    };
    match run(cli.command, &logging) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// How to log, from the global flags. `run` installs it once its
/// configuration says whether spans are exported; every other command at
/// once.
pub struct Logging {
    pub level: String,
    pub json: bool,
}

impl Logging {
    pub fn install(&self, telemetry: Option<&telemetry::TelemetryConfig>) -> telemetry::Guard {
        telemetry::init(&self.level, self.json, telemetry).unwrap_or_else(|e| {
            eprintln!("warning: logging not installed: {e:#}");
            telemetry::Guard::none()
        })
    }
}

fn run(command: Command, logging: &Logging) -> anyhow::Result<ExitCode> {
    let _logs = match &command {
        Command::Run(_) => None,
        _ => Some(logging.install(None)),
    };
    match command {
        Command::State {
            command:
                ListCommand::List {
                    inputs,
                    output,
                    identity,
                },
        } => list::state_list(&inputs, &identity, matches!(output, ListOutput::Json)),
        Command::Observed {
            command:
                ListCommand::List {
                    inputs,
                    output,
                    identity,
                },
        } => list::observed_list(&inputs, &identity, matches!(output, ListOutput::Json)),
        Command::Scan(args) => {
            let config = args
                .config
                .as_deref()
                .map(service::config::ServiceConfig::read)
                .transpose()?;
            let aws = match (&config, &args.config) {
                (Some(c), Some(p)) => {
                    c.aws_config
                        .validate("aws_config")
                        .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
                    c.aws_config.clone()
                }
                _ => Default::default(),
            };
            let inputs = ScanInputs {
                state: args.state,
                observed: args.observed,
                driftignore: args.driftignore,
                account: args.identity.account,
                region: args.identity.region,
                mappings: args.identity.mappings,
                aws,
                // `--rules`, else the configuration's `[drift] rules`.
                rules: args
                    .rules
                    .or(config.as_ref().and_then(|c| c.drift.rules.clone())),
                required_tags: config
                    .as_ref()
                    .map(|c| c.finops.required_tags.clone())
                    .unwrap_or_default(),
            };
            // Read the key first: a missing one fails before the scan.
            let key =
                args.pagerduty_routing_key_env
                    .as_deref()
                    .map(|var| {
                        std::env::var(var).ok().filter(|k| !k.is_empty()).ok_or_else(|| {
                        anyhow::anyhow!(
                            "--pagerduty-routing-key-env: environment variable {var} is not set"
                        )
                    })
                    })
                    .transpose()?;
            let store = if args.data_dir.is_some() || args.clickhouse.is_some() {
                let dir = args
                    .data_dir
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("driftline-data"));
                let place = args.clickhouse.clone().unwrap_or(dir.display().to_string());
                let store = sql::StoreArgs {
                    data_dir: dir,
                    clickhouse: args.clickhouse.clone(),
                    config: args.config.clone(),
                }
                .open()?;
                Some((store, place))
            } else {
                None
            };
            let mut outcome = scan::scan(&inputs, store.as_ref().map(|(s, _)| &**s))?;
            if let Some((store, place)) = &store {
                // Only a scan that read every source may say a finding is gone.
                let saw_everything =
                    outcome.errors.is_empty() && outcome.report.unobserved.is_empty();
                let r = driftline_pipeline::store::record_scan(
                    &**store,
                    &outcome.report.findings,
                    saw_everything,
                    driftline_pipeline::now_ms(),
                )?;
                eprintln!(
                    "recorded in {place}: {} new, {} resolved",
                    r.new, r.resolved
                );
            }
            if let Some(key) = key {
                // One page per outage, beside one per finding.
                let mut findings = outcome.report.findings.clone();
                findings.extend(outcome.statuses.unavailable_findings().into_values());
                let (sent, errors) = driftline_alerts::page_once(
                    &findings,
                    key,
                    &args.pagerduty_url,
                    "http://127.0.0.1:9464",
                    driftline_alerts::outbox::Backoff::default(),
                );
                eprintln!("paged PagerDuty: {sent} trigger(s) accepted");
                outcome.errors.extend(errors.into_iter().map(|reason| {
                    driftline_collectors::SourceError {
                        source: args.pagerduty_url.clone(),
                        reason,
                    }
                }));
            }
            finish(outcome, args.output, true)
        }
        Command::Silence { command } => oncall::silence(command),
        Command::Slo { command } => slo::run(command),
        Command::Remediate(args) => oncall::remediate(args),
        Command::Run(args) => {
            allocator::tune_for_service();
            service::run(args, logging)
        }
        Command::Check { config, rules, slo } => {
            if !slo.is_empty() {
                let set = match driftline_detectors::slo::spec::load(&slo) {
                    Ok(set) => set,
                    Err(errors) => {
                        for e in &errors {
                            eprintln!("error: {e}");
                        }
                        return Ok(ExitCode::from(2));
                    }
                };
                println!("SLO specs ok: {} SLOs", set.slos.len());
                if config.is_none() && rules.is_none() {
                    return Ok(ExitCode::SUCCESS);
                }
            }
            if let Some(spec) = rules {
                let errors =
                    tokio::runtime::Runtime::new()?.block_on(scan::load_rules(&spec)?.check());
                for e in &errors {
                    eprintln!("error: {e}");
                }
                if !errors.is_empty() {
                    return Ok(ExitCode::from(2));
                }
                println!("{}: rules ok", spec.display());
                if config.is_none() {
                    return Ok(ExitCode::SUCCESS);
                }
            }
            service::check(&config.unwrap_or_else(|| PathBuf::from("driftline.toml")))
        }
        Command::Sql(args) => sql::sql(args),
        Command::Cost { command } => sql::cost(command),
        Command::Demo { output } => {
            let estate = demo::demo_estate()?;
            let inputs = ScanInputs {
                state: vec![estate.join("terraform").display().to_string()],
                observed: vec![estate.join("aws-config").display().to_string()],
                driftignore: Some(estate.join(".driftignore")),
                account: None,
                region: None,
                mappings: None,
                aws: Default::default(),
                rules: None,
                required_tags: Vec::new(),
            };
            let outcome = scan::scan(&inputs, None)?;
            let summary = demo::finops_summary(&estate, &outcome.report.findings)?;
            let slo = demo::slo_story(&outcome.report.findings)?;
            // The demo always has drift; its exit code says only whether it ran.
            let code = finish(outcome, output, false)?;
            if matches!(output, Output::Table) {
                println!();
                for line in summary {
                    println!("{line}");
                }
                println!();
                for line in slo {
                    println!("{line}");
                }
            }
            Ok(code)
        }
    }
}

/// Standard output written in blocks. Rust's is line-buffered: a report of
/// 10 000 findings written pretty is 350 000 lines, a system call each
/// (half a second of a million-resource scan). Flush it before it drops, or
/// an error writing the last block is lost.
pub fn stdout_in_blocks() -> std::io::BufWriter<std::io::StdoutLock<'static>> {
    std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock())
}

/// Prints the report and picks the exit code: errors (2) beat drift (1,
/// when `drift_fails`).
fn finish(outcome: ScanOutcome, output: Output, drift_fails: bool) -> anyhow::Result<ExitCode> {
    for note in &outcome.notes {
        eprintln!("note: {note}");
    }
    for e in &outcome.errors {
        eprintln!("error: {e}");
    }
    let mut stdout = stdout_in_blocks();
    match output {
        Output::Table => render::write_table(&mut stdout, &outcome.report)?,
        Output::Json => render::write_json(&mut stdout, &outcome.report, &outcome.errors)?,
        Output::Sarif => render::write_sarif(&mut stdout, &outcome.report, &outcome.errors)?,
    }
    std::io::Write::flush(&mut stdout)?;
    // A source that could not be read is an error even when no collector
    // said so: what it hides was not checked.
    let unread = outcome.report.unobserved.iter().any(|u| !u.source_up);
    Ok(if !outcome.errors.is_empty() || unread {
        ExitCode::from(2)
    } else if outcome.report.findings.is_empty() || !drift_fails {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
