//! `driftline sql` and `driftline cost import`: the store's SQL side and
//! the FOCUS cost loader, from the command line.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use driftline_collectors::cost::CostImport;
use std::sync::Arc;

use driftline_pipeline::store::{QueryLimits, Store};

/// Which store, and where.
#[derive(Args, Clone)]
pub struct StoreArgs {
    /// Where the embedded store keeps its tables.
    #[arg(long, default_value = "driftline-data")]
    pub data_dir: PathBuf,
    /// Use ClickHouse at URL (`http://host:8123`) instead of the embedded store.
    #[arg(long, value_name = "URL")]
    pub clickhouse: Option<String>,
    /// A driftline.toml: its `[store]` and `[finops]` (tag keys the views use).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

impl StoreArgs {
    pub fn open(&self) -> anyhow::Result<Arc<dyn Store>> {
        let (mut store, finops) = match &self.config {
            Some(p) => {
                let cfg = crate::service::config::ServiceConfig::read(p)?;
                (cfg.store, cfg.finops)
            }
            None => Default::default(),
        };
        if let Some(url) = &self.clickhouse {
            store.clickhouse = Some(url.clone());
        }
        Ok(driftline_pipeline::store::open(
            &store,
            &self.data_dir,
            &finops,
        )?)
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum SqlOutput {
    Table,
    Json,
    Csv,
}

#[derive(Args)]
pub struct SqlArgs {
    /// One query (SELECT / WITH / VALUES); anything else is refused.
    pub query: String,
    #[arg(long, value_enum, default_value_t = SqlOutput::Table)]
    pub output: SqlOutput,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 30)]
    pub timeout_secs: u64,
    /// Return at most this many rows (a note on stderr says when cut).
    #[arg(long, default_value_t = 100_000)]
    pub max_rows: usize,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `driftline sql`.
pub fn sql(args: SqlArgs) -> anyhow::Result<ExitCode> {
    let store = args.store.open()?;
    let limits = QueryLimits {
        timeout: Duration::from_secs(args.timeout_secs.max(1)),
        max_rows: args.max_rows,
    };
    let result = store.query(&args.query, &limits)?;
    let mut out = crate::stdout_in_blocks();
    match args.output {
        SqlOutput::Table => {
            driftline_pipeline::text::write_table(
                &mut out,
                &result
                    .columns()
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>(),
                &result.cells()?,
            )?;
        }
        SqlOutput::Json => {
            serde_json::to_writer_pretty(&mut out, &result.to_json()?)?;
            writeln!(out)?;
        }
        SqlOutput::Csv => {
            let mut w = csv::Writer::from_writer(&mut out);
            w.write_record(result.columns())?;
            for row in result.cells()? {
                w.write_record(row)?;
            }
            w.flush()?;
        }
    }
    out.flush()?;
    if result.truncated {
        eprintln!("note: only the first {} rows (--max-rows)", limits.max_rows);
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand)]
pub enum CostCommand {
    /// Load FOCUS exports (CSV, CSV.gz, Parquet; files, folders or globs)
    /// into `focus_data_table`. Rows that cannot be read go to
    /// `dead_letters` with file, line and reason; the rest load, and the
    /// command exits 2 naming the count.
    Import {
        #[arg(required = true)]
        inputs: Vec<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Errors printed one by one before the rest are only counted.
const ERRORS_SHOWN: usize = 20;

/// `driftline cost import`.
pub fn cost(command: CostCommand) -> anyhow::Result<ExitCode> {
    let CostCommand::Import { inputs, store } = command;
    let store = store.open()?;
    let mut import = CostImport::new(inputs);
    // Listed once: the sizes size the progress bar, then the same list loads.
    let (exports, errors) = import.exports();
    let total: u64 = exports.iter().map(|e| e.size).sum();
    let bar = crate::scan::progress_bar("importing cost exports", total, 1);
    let report = import.load(exports, errors, &*store, &|_: &Path, bytes| bar.inc(bytes));
    bar.finish_and_clear();
    for n in &report.notes {
        eprintln!("note: {n}");
    }
    for e in report.errors.iter().take(ERRORS_SHOWN) {
        eprintln!("error: {e}");
    }
    if report.errors.len() > ERRORS_SHOWN {
        eprintln!(
            "error: … and {} more (all in the dead_letters table)",
            report.errors.len() - ERRORS_SHOWN
        );
    }
    println!(
        "imported {} cost rows into focus_data_table; {} rejected",
        report.published,
        report.errors.len()
    );
    Ok(if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}
