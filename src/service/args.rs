//! `driftline run`'s flags, and the configuration they settle with the
//! config file (flags win).

use std::path::PathBuf;

use super::config::ServiceConfig;

/// Quick-start flags; they override the config file.
#[derive(Debug, Default, clap::Args)]
pub struct RunArgs {
    /// driftline.toml (see examples/driftline.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Folders of Terraform state files to watch.
    #[arg(long, num_args = 1..)]
    pub watch_state: Vec<PathBuf>,
    /// Folders of AWS Config items / notifications to watch.
    #[arg(long, num_args = 1..)]
    pub watch_observed: Vec<PathBuf>,
    /// Terraform state to watch, as `scan --state` takes it: folders,
    /// `s3://BUCKET/KEY`, `https://…`.
    #[arg(long, num_args = 1..)]
    pub state: Vec<String>,
    /// What the cloud runs, as `scan --observed` takes it: folders,
    /// `aws-config[:REGION,…]`, `aws-config-aggregator:NAME`.
    #[arg(long, num_args = 1..)]
    pub observed: Vec<String>,
    /// Where the embedded store keeps its tables [default: ./driftline-data].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Use ClickHouse at URL (`http://host:8123`) instead of the embedded store.
    #[arg(long, value_name = "URL")]
    pub clickhouse: Option<String>,
    /// Also write each finding event as one JSON line to FILE (`-` = stdout).
    #[arg(long, value_name = "FILE|-")]
    pub findings_out: Option<String>,
    /// Kafka brokers (`host:port,…`): use the Kafka bus instead of the embedded one.
    #[arg(long)]
    pub brokers: Option<String>,
    /// Address of /metrics, /healthz and /readyz [default: 127.0.0.1:9464].
    #[arg(long)]
    pub listen: Option<String>,
    /// A .driftignore file (driftctl syntax).
    #[arg(long)]
    pub driftignore: Option<PathBuf>,
    /// Policy rules: `shipped` or a folder of `*.sql`, hot-reloaded.
    #[arg(long, value_name = "DIR|shipped")]
    pub rules: Option<PathBuf>,
    /// SLO specs (Sloth or OpenSLO files or folders, repeatable), evaluated
    /// on the metrics stream; burns page through the alert engine.
    #[arg(long, value_name = "FILE|DIR")]
    pub slo: Vec<PathBuf>,
    /// Page PagerDuty: the environment variable holding the Events API v2
    /// routing key (the key itself never goes on a command line).
    #[arg(long, value_name = "VAR")]
    pub pagerduty_routing_key_env: Option<String>,
    /// PagerDuty Events API v2 endpoint.
    #[arg(long, value_name = "URL", default_value = driftline_alerts::config::PAGERDUTY_EVENTS_URL)]
    pub pagerduty_url: String,
    /// Scrape this Prometheus target (repeatable); job `scrape`.
    #[arg(long, value_name = "URL")]
    pub scrape: Vec<String>,
    /// Between two scrapes of a `--scrape` target (Prometheus duration).
    #[arg(long, value_name = "DURATION")]
    pub scrape_interval: Option<String>,
    /// Export driftline's own spans to this OTLP/HTTP receiver
    /// (`http://host:4318`).
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
}

pub(super) fn settle(args: RunArgs) -> anyhow::Result<ServiceConfig> {
    let mut cfg = match &args.config {
        Some(p) => ServiceConfig::load(p)?,
        None => ServiceConfig::default(),
    };
    let folders = |v: Vec<PathBuf>| v.into_iter().map(|p| p.display().to_string());
    cfg.watch.state.extend(folders(args.watch_state));
    cfg.watch.observed.extend(folders(args.watch_observed));
    cfg.watch.state.extend(args.state);
    cfg.watch.observed.extend(args.observed);
    if let Some(d) = args.data_dir {
        cfg.data_dir = d;
    }
    if let Some(url) = args.clickhouse {
        cfg.store.clickhouse = Some(url);
    }
    if let Some(o) = args.findings_out {
        cfg.findings.out = Some(o);
    }
    if let Some(b) = args.brokers {
        cfg.bus.kind = driftline_pipeline::bus::BusKind::Kafka;
        cfg.bus.brokers = b;
    }
    if let Some(l) = args.listen {
        cfg.http.listen = l;
    }
    if let Some(r) = args.rules {
        cfg.drift.rules = Some(r);
    }
    cfg.slo.specs.extend(args.slo);
    if let Some(d) = args.driftignore {
        cfg.drift.driftignore = Some(d);
    }
    cfg.metrics.scrape.extend(
        args.scrape
            .iter()
            .map(|u| driftline_collectors::prometheus::ScrapeTarget::from_url(u)),
    );
    if let Some(i) = args.scrape_interval {
        cfg.metrics.scrape_interval = i;
    }
    if let Some(e) = args.otlp_endpoint {
        cfg.telemetry.otlp_endpoint = Some(e);
    }
    if let Some(var) = args.pagerduty_routing_key_env {
        cfg.alerts.page_pagerduty(var, args.pagerduty_url);
    }
    cfg.validate().map_err(|e| anyhow::anyhow!(e))?;
    Ok(cfg)
}
