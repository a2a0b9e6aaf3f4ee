//! Prometheus in: scraping targets (`scrape.rs`, the text and OpenMetrics
//! formats read by `exposition.rs`) and receiving remote-write pushes
//! (`remote_write.rs`). Both put series onto `driftline.metrics`, which the
//! store's telemetry writer lands in `metric_samples`.

pub mod exposition;
pub mod remote_write;
pub mod scrape;

use std::collections::BTreeMap;

use driftline_pipeline::time::parse_duration;

use serde::Deserialize;

pub use scrape::ScrapeCollector;

/// `[metrics]` in driftline.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Between two scrapes of a target that names no interval.
    pub scrape_interval: String,
    /// Longest a scrape may take, when a target names none; at most the
    /// interval.
    pub scrape_timeout: String,
    pub scrape: Vec<ScrapeTarget>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            scrape_interval: "15s".into(),
            scrape_timeout: "10s".into(),
            scrape: Vec::new(),
        }
    }
}

/// `[[metrics.scrape]]`: one target, with Prometheus's scrape options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeTarget {
    /// `http://host:port/metrics`.
    pub url: String,
    /// The `job` label.
    #[serde(default = "default_job")]
    pub job: String,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    /// Keep the target's own `job`, `instance` and configured labels when
    /// they clash with the target labels (else they become `exported_*`).
    #[serde(default)]
    pub honor_labels: bool,
    /// Use the timestamps the target writes (else the scrape's time).
    #[serde(default = "yes")]
    pub honor_timestamps: bool,
    /// Extra target labels, added to every series.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

fn default_job() -> String {
    "scrape".into()
}

fn yes() -> bool {
    true
}

impl ScrapeTarget {
    /// A target from `run --scrape URL`.
    pub fn from_url(url: &str) -> Self {
        Self {
            url: url.to_string(),
            job: default_job(),
            interval: None,
            timeout: None,
            honor_labels: false,
            honor_timestamps: true,
            labels: BTreeMap::new(),
        }
    }
}

impl MetricsConfig {
    /// The targets as collectors, or what is wrong, named by its key.
    pub fn collectors(&self) -> Result<Vec<ScrapeCollector>, String> {
        let default_interval = parse_duration(&self.scrape_interval)
            .map_err(|e| format!("metrics.scrape_interval: {e}"))?;
        let default_timeout = parse_duration(&self.scrape_timeout)
            .map_err(|e| format!("metrics.scrape_timeout: {e}"))?;
        self.scrape
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let key = |k: &str| format!("metrics.scrape[{i}].{k}");
                let interval = match &t.interval {
                    Some(v) => {
                        parse_duration(v).map_err(|e| format!("{}: {e}", key("interval")))?
                    }
                    None => default_interval,
                };
                let timeout = match &t.timeout {
                    Some(v) => parse_duration(v).map_err(|e| format!("{}: {e}", key("timeout")))?,
                    None => default_timeout.min(interval),
                };
                if timeout > interval {
                    return Err(format!(
                        "{}: {timeout:?} is longer than the interval {interval:?}",
                        key("timeout")
                    ));
                }
                ScrapeCollector::new(t.clone(), interval, timeout)
                    .map_err(|e| format!("{}: {e}", key("url")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_longer_than_the_interval_is_refused() {
        let mut cfg = MetricsConfig::default();
        let mut t = ScrapeTarget::from_url("http://127.0.0.1:1/metrics");
        t.interval = Some("1s".into());
        t.timeout = Some("2s".into());
        cfg.scrape.push(t);
        let e = cfg.collectors().err().unwrap();
        assert!(e.starts_with("metrics.scrape[0].timeout"), "{e}");
    }
}
