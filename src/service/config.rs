//! `driftline.toml`: what `driftline run` runs. Every field has a default,
//! so the quick-start flags only fill in the folders.

use std::path::{Path, PathBuf};

use anyhow::Context;
use driftline_pipeline::bus::BusConfig;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceConfig {
    /// Where the embedded store keeps its tables.
    pub data_dir: PathBuf,
    /// Which parts this instance runs: `collect`, `detect`, `sink`.
    pub roles: Vec<Role>,
    pub bus: BusConfig,
    pub http: HttpConfig,
    pub watch: WatchSection,
    pub drift: DriftSection,
    pub findings: FindingsSection,
    pub alerts: driftline_alerts::AlertsConfig,
    /// Notification retry timing.
    pub alerts_delivery: DeliverySection,
    /// The live AWS Config API, used when `watch.observed` names
    /// `aws-config` (see README, "Reading AWS for real").
    pub aws_config: driftline_collectors::aws_config::api::AwsConfigSettings,
    /// The tag keys the FinOps views use.
    pub finops: driftline_pipeline::store::FinOpsConfig,
    /// ClickHouse, or the Parquet store under `data_dir`.
    pub store: driftline_pipeline::store::StoreConfig,
    /// Prometheus targets to scrape (`[[metrics.scrape]]`).
    pub metrics: driftline_collectors::prometheus::MetricsConfig,
    /// Log files to follow (`[[logs.files]]`).
    pub logs: driftline_collectors::logs::LogsConfig,
    /// driftline's own spans, exported over OTLP.
    pub telemetry: crate::telemetry::TelemetryConfig,
    /// SLO specs evaluated on the metrics stream (detect role).
    pub slo: SloSection,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SloSection {
    /// Sloth or OpenSLO spec files or folders; none: no SLO detector.
    pub specs: Vec<PathBuf>,
    /// How often the burn-rate decision is made (Prometheus duration),
    /// as a rule group's evaluation interval.
    pub interval: String,
    /// Splits, traffic guards and the resources of an SLO
    /// (`[[slo.tuning]]`: `slo`, `group_by`, `min_events`, `resources`).
    pub tuning: Vec<driftline_detectors::slo::spec::Tuning>,
    /// The resource tag whose value is an SLO's service: the drift on
    /// those resources is the probable cause on its pages.
    pub cause_tag: String,
    /// How far before a burn begins its probable cause is looked for.
    pub cause_lookback: String,
}

impl Default for SloSection {
    fn default() -> Self {
        Self {
            specs: Vec::new(),
            interval: "1m".into(),
            tuning: Vec::new(),
            cause_tag: "service".into(),
            cause_lookback: "1h".into(),
        }
    }
}

impl SloSection {
    /// The specs, tuned, and the interval in milliseconds; errors name the
    /// file and path, or the key.
    /// The probable cause's lookback, in milliseconds.
    pub fn cause_lookback_ms(&self) -> anyhow::Result<i64> {
        let d = driftline_pipeline::time::parse_duration(&self.cause_lookback)
            .map_err(|e| anyhow::anyhow!("slo.cause_lookback: {e}"))?;
        Ok(d.as_millis() as i64)
    }

    pub fn load(&self) -> anyhow::Result<Option<(driftline_detectors::slo::spec::SloSet, i64)>> {
        if self.specs.is_empty() {
            return Ok(None);
        }
        let mut set = crate::inputs::load_slo_specs(&self.specs)?;
        set.tune(&self.tuning)
            .map_err(|e| anyhow::anyhow!("slo.tuning: {e}"))?;
        let interval = driftline_pipeline::time::parse_duration(&self.interval)
            .map_err(|e| anyhow::anyhow!("slo.interval: {e}"))?;
        if interval.is_zero() {
            anyhow::bail!("slo.interval must be longer than zero");
        }
        self.cause_lookback_ms()?;
        Ok(Some((set, interval.as_millis() as i64)))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliverySection {
    /// First retry after about this long (doubling, with jitter).
    #[serde(with = "driftline_alerts::labels::duration")]
    pub initial_backoff: std::time::Duration,
    /// Retries never wait longer than this (unless Retry-After says so).
    #[serde(with = "driftline_alerts::labels::duration")]
    pub max_backoff: std::time::Duration,
}

impl Default for DeliverySection {
    fn default() -> Self {
        Self {
            initial_backoff: std::time::Duration::from_secs(1),
            max_backoff: std::time::Duration::from_secs(300),
        }
    }
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("driftline-data"),
            roles: vec![Role::Collect, Role::Detect, Role::Sink, Role::Alert],
            bus: BusConfig::default(),
            http: HttpConfig::default(),
            watch: WatchSection::default(),
            drift: DriftSection::default(),
            findings: FindingsSection::default(),
            alerts: driftline_alerts::AlertsConfig::default(),
            alerts_delivery: DeliverySection::default(),
            aws_config: Default::default(),
            finops: Default::default(),
            store: Default::default(),
            metrics: Default::default(),
            logs: Default::default(),
            telemetry: Default::default(),
            slo: Default::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Collect,
    Detect,
    Sink,
    /// Findings → alerts → notifications. Run it on one instance: its
    /// state (alerts, notification log, outbox) lives in its data dir.
    Alert,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// `/metrics`, `/healthz`, `/readyz` and the API; empty turns the server off.
    pub listen: String,
    /// Environment variable holding a token the API's changing endpoints
    /// (silences, approvals, posted alerts) require as `Authorization: Bearer`.
    pub api_token_env: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9464".into(),
            api_token_env: "DRIFTLINE_API_TOKEN".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WatchSection {
    /// Terraform state: folders, files, `s3://BUCKET/KEY` (S3 backend, all
    /// workspaces) or `https://…` (HTTP backend): input specs, not paths.
    pub state: Vec<String>,
    /// AWS Config: folders or files of items and notifications, or
    /// `aws-config` / `aws-config:REGION,…` / `aws-config-aggregator:NAME`
    /// (the live API, set up in `[aws_config]`): input specs, not paths.
    pub observed: Vec<String>,
    /// FOCUS cost exports: folders, files or `s3://BUCKET/PREFIX`; each new
    /// export found there is loaded into the store.
    pub cost: Vec<String>,
    /// Time between looks for new cost exports.
    pub cost_interval_secs: u64,
    pub interval_ms: u64,
    /// Time between listings of remote state (S3 LIST / HTTP GET).
    pub remote_interval_ms: u64,
    /// Account and region for declared resources that name none.
    pub account: Option<String>,
    pub region: Option<String>,
}

impl Default for WatchSection {
    fn default() -> Self {
        Self {
            state: Vec::new(),
            observed: Vec::new(),
            cost: Vec::new(),
            cost_interval_secs: 300,
            interval_ms: 200,
            remote_interval_ms: 30_000,
            account: None,
            region: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DriftSection {
    pub driftignore: Option<PathBuf>,
    /// Extra mapping files, overriding the shipped ones by type.
    pub mappings: Option<PathBuf>,
    /// Policy rules: `shipped` or a folder of `*.sql` (re-read on every
    /// pass, so edits take effect without a restart); none when unset.
    pub rules: Option<PathBuf>,
    /// How often the rules look for changed inputs.
    pub rules_interval_secs: u64,
}

impl Default for DriftSection {
    fn default() -> Self {
        Self {
            driftignore: None,
            mappings: None,
            rules: None,
            rules_interval_secs: 30,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FindingsSection {
    /// Also write each finding event as a JSON line here (`-` = stdout).
    pub out: Option<String>,
}

impl ServiceConfig {
    /// Reads a config file; relative paths in it are relative to the file.
    /// Reads and validates a service configuration.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let cfg = Self::read(path)?;
        cfg.validate()
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok(cfg)
    }

    /// Reads a configuration without asking it to describe a whole service
    /// (`scan --config` takes only its `[aws_config]`).
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        let mut cfg: ServiceConfig =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let rebase = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        // A local input relative to the config file; a remote one as written.
        let rebase_input = |spec: &mut String| {
            if Path::new(spec.as_str()).is_relative()
                && !driftline_collectors::registry::is_remote(spec)
            {
                *spec = base.join(spec.as_str()).display().to_string();
            }
        };
        rebase(&mut cfg.data_dir);
        for f in &mut cfg.logs.files {
            f.paths.iter_mut().for_each(rebase_input);
        }
        cfg.watch.state.iter_mut().for_each(rebase_input);
        cfg.watch.observed.iter_mut().for_each(rebase_input);
        cfg.watch.cost.iter_mut().for_each(rebase_input);
        if let Some(p) = cfg.drift.driftignore.as_mut() {
            rebase(p);
        }
        if let Some(p) = cfg.drift.mappings.as_mut() {
            rebase(p);
        }
        if let Some(p) = cfg
            .drift
            .rules
            .as_mut()
            .filter(|p| *p != Path::new("shipped"))
        {
            rebase(p);
        }
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), String> {
        self.bus.validate()?;
        if self.roles.is_empty() {
            return Err("roles is empty: nothing to run".into());
        }
        // A collect role with no inputs still takes pushes (remote-write,
        // OTLP, AWS Config notifications) on the HTTP listener.
        self.metrics.collectors()?;
        self.logs.collectors(&self.data_dir.join("logs"))?;
        self.aws_config
            .validate("aws_config")
            .map_err(|e| e.to_string())?;
        use driftline_collectors::registry;
        use driftline_pipeline::SourceSide;
        for (key, specs, side) in [
            ("watch.state", &self.watch.state, SourceSide::Declared),
            ("watch.observed", &self.watch.observed, SourceSide::Observed),
        ] {
            for (i, spec) in specs.iter().enumerate() {
                registry::input(spec, side, &self.aws_config)
                    .map_err(|e| format!("{key}[{i}]: {e}"))?;
            }
        }
        // [alerts] is checked once the quick-start flags are in (`run`
        // adds receivers), by `Alerting::open`.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use driftline_pipeline::bus::BusKind;

    #[test]
    fn example_config_parses_and_paths_are_rebased() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/driftline.toml");
        let cfg = ServiceConfig::load(&p).unwrap();
        assert!(cfg.watch.state[0].ends_with("examples/estate/terraform"));
        assert!(Path::new(&cfg.watch.state[0]).is_dir());
        assert_eq!(cfg.bus.kind, BusKind::Memory);
    }

    #[test]
    fn deploy_configs_are_valid() {
        let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
        let mut n = 0;
        for dir in ["systemd", "kubernetes", "compose"] {
            for e in std::fs::read_dir(deploy.join(dir)).unwrap() {
                let p = e.unwrap().path();
                if p.extension().is_some_and(|x| x == "toml") {
                    let text = std::fs::read_to_string(&p).unwrap();
                    let cfg: ServiceConfig =
                        toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                    cfg.validate()
                        .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                    assert_eq!(cfg.bus.kind, BusKind::Kafka, "{}", p.display());
                    n += 1;
                }
            }
        }
        assert_eq!(n, 4);
    }

    #[test]
    fn bad_configs_say_what_is_wrong() {
        let e = toml::from_str::<ServiceConfig>("[bus]\nkind = \"rabbit\"").unwrap_err();
        assert!(e.to_string().contains("rabbit"), "{e}");
        let mut c = ServiceConfig::default();
        c.watch.state.push("x".into());
        c.bus.kind = BusKind::Kafka;
        assert!(c.validate().unwrap_err().contains("bus.brokers"));
    }
}
