//! Scraping one target the way Prometheus does: the Accept header it
//! sends, the timeout it announces, `job` and `instance` target labels and
//! `honor_labels`, the synthetic `up`, `scrape_duration_seconds`,
//! `scrape_samples_scraped` and `scrape_series_added` series, and
//! staleness — a series the last scrape had and this one lacks gets a stale
//! marker at this scrape's time, and so does every series when a scrape
//! fails. A target that fails is logged with its reason and its `up` is 0;
//! other targets have collectors of their own and go on.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::time::{Duration, Instant};

use driftline_pipeline::telemetry::{
    METRIC_NAME_LABEL, MetricBatch, normalise_labels, prompb, series_id, stale_nan,
};
use driftline_pipeline::{Record, RecordSink, Topic};

use super::ScrapeTarget;
use super::exposition::{self, Format};
use crate::metrics::metrics;
use crate::{CollectReport, Collector, ProgressFn, SourceError};

/// What Prometheus 2.42 asks a target for.
const ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
/// Most bytes a scrape may return, inflated.
const MAX_SCRAPE_BYTES: u64 = 64 << 20;
const SOURCE: &str = "scrape";

pub struct ScrapeCollector {
    target: ScrapeTarget,
    /// `host:port`, with the scheme's port when the URL has none.
    instance: String,
    interval: Duration,
    timeout: Duration,
    client: reqwest::blocking::Client,
    /// Series the last scrape wrote without their own timestamp: the ones
    /// that get a stale marker when they disappear.
    previous: HashMap<u64, Vec<prompb::Label>>,
}

impl ScrapeCollector {
    pub fn new(
        target: ScrapeTarget,
        interval: Duration,
        timeout: Duration,
    ) -> Result<Self, String> {
        let url = reqwest::Url::parse(&target.url).map_err(|e| format!("{:?}: {e}", target.url))?;
        let host = url
            .host_str()
            .ok_or_else(|| format!("{:?} has no host", target.url))?;
        let port = url
            .port_or_known_default()
            .ok_or_else(|| format!("{:?} has no port", target.url))?;
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        Ok(Self {
            instance: format!("{host}:{port}"),
            client: driftline_pipeline::http_client_with_timeout(timeout),
            target,
            interval,
            timeout,
            previous: HashMap::new(),
        })
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The target labels: configured ones, then `job` and `instance`.
    fn target_labels(&self) -> Vec<(String, String)> {
        let mut labels: Vec<(String, String)> = self
            .target
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        labels.retain(|(k, _)| k != "job" && k != "instance");
        labels.push(("job".into(), self.target.job.clone()));
        labels.push(("instance".into(), self.instance.clone()));
        labels
    }

    /// GETs the target and parses what it says.
    fn fetch(&self) -> Result<Vec<exposition::ParsedSample>, String> {
        let resp = self
            .client
            .get(&self.target.url)
            .header(reqwest::header::ACCEPT, ACCEPT)
            .header(reqwest::header::ACCEPT_ENCODING, "gzip")
            .header(
                "X-Prometheus-Scrape-Timeout-Seconds",
                format!("{}", self.timeout.as_secs_f64()),
            )
            .send()
            .map_err(|e| {
                if e.is_timeout() {
                    format!("timed out after {:?}", self.timeout)
                } else {
                    format!("cannot reach the target: {e}")
                }
            })?;
        if !resp.status().is_success() {
            return Err(format!("server returned HTTP status {}", resp.status()));
        }
        let header = |name| {
            resp.headers()
                .get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let format = Format::of_content_type(&header(reqwest::header::CONTENT_TYPE));
        let gzip = header(reqwest::header::CONTENT_ENCODING).eq_ignore_ascii_case("gzip");
        let mut raw = Vec::new();
        let reader: Box<dyn Read> = if gzip {
            Box::new(flate2::read::GzDecoder::new(resp))
        } else {
            Box::new(resp)
        };
        reader
            .take(MAX_SCRAPE_BYTES + 1)
            .read_to_end(&mut raw)
            .map_err(|e| format!("cannot read the body: {e}"))?;
        if raw.len() as u64 > MAX_SCRAPE_BYTES {
            return Err(format!("body exceeds {MAX_SCRAPE_BYTES} bytes"));
        }
        let text = String::from_utf8(raw).map_err(|_| "body is not UTF-8".to_string())?;
        exposition::parse(&text, format).map_err(|e| e.to_string())
    }

    /// A sample's labels with the target labels applied (`honor_labels`).
    fn labelled(
        &self,
        s: exposition::ParsedSample,
        targets: &[(String, String)],
    ) -> Result<Vec<prompb::Label>, String> {
        let mut labels: Vec<prompb::Label> = s
            .labels
            .into_iter()
            .map(|(name, value)| prompb::Label { name, value })
            .collect();
        labels.retain(|l| !l.value.is_empty());
        for (name, value) in targets {
            match labels.iter().position(|l| &l.name == name) {
                None => labels.push(prompb::Label {
                    name: name.clone(),
                    value: value.clone(),
                }),
                Some(_) if self.target.honor_labels => {}
                Some(i) => {
                    // Prometheus keeps the target's value and moves the
                    // scraped one aside, prefixing until the name is free.
                    let mut moved = format!("exported_{name}");
                    while labels.iter().any(|l| l.name == moved) {
                        moved = format!("exported_{moved}");
                    }
                    labels[i].name = moved;
                    labels.push(prompb::Label {
                        name: name.clone(),
                        value: value.clone(),
                    });
                }
            }
        }
        labels.push(prompb::Label {
            name: METRIC_NAME_LABEL.into(),
            value: s.name,
        });
        normalise_labels(&mut labels)?;
        Ok(labels)
    }

    /// One scrape's series (its samples, the synthetic ones and the stale
    /// markers), and the error when it failed.
    pub fn scrape(&mut self, now_ms: i64) -> (Vec<prompb::TimeSeries>, Option<String>) {
        let started = Instant::now();
        let targets = self.target_labels();
        let fetched = self.fetch().and_then(|samples| {
            let mut seen = HashSet::new();
            let mut series = Vec::with_capacity(samples.len());
            let mut current = HashMap::new();
            for s in samples {
                let own_time = s.timestamp_ms.filter(|_| self.target.honor_timestamps);
                let value = s.value;
                let labels = self.labelled(s, &targets)?;
                let id = series_id(&labels);
                if !seen.insert(id) {
                    // Prometheus reports a duplicate and keeps the first.
                    continue;
                }
                if own_time.is_none() {
                    current.insert(id, labels.clone());
                }
                series.push(prompb::TimeSeries {
                    labels,
                    samples: vec![prompb::Sample {
                        value,
                        timestamp: own_time.unwrap_or(now_ms),
                    }],
                    ..Default::default()
                });
            }
            Ok((series, current))
        });
        let took = started.elapsed().as_secs_f64();
        let (mut series, current, error) = match fetched {
            Ok((series, current)) => (series, current, None),
            Err(e) => (Vec::new(), HashMap::new(), Some(e)),
        };
        let scraped = series.len();
        let added = current
            .keys()
            .filter(|id| !self.previous.contains_key(id))
            .count();
        for (id, labels) in &self.previous {
            if !current.contains_key(id) {
                series.push(prompb::TimeSeries {
                    labels: labels.clone(),
                    samples: vec![prompb::Sample {
                        value: stale_nan(),
                        timestamp: now_ms,
                    }],
                    ..Default::default()
                });
            }
        }
        self.previous = current;
        let up = if error.is_none() { 1.0 } else { 0.0 };
        for (name, value) in [
            ("up", up),
            ("scrape_duration_seconds", took),
            ("scrape_samples_scraped", scraped as f64),
            ("scrape_samples_post_metric_relabeling", scraped as f64),
            ("scrape_series_added", added as f64),
        ] {
            let mut labels: Vec<prompb::Label> = targets
                .iter()
                .map(|(k, v)| prompb::Label {
                    name: k.clone(),
                    value: v.clone(),
                })
                .collect();
            labels.push(prompb::Label {
                name: METRIC_NAME_LABEL.into(),
                value: name.into(),
            });
            if normalise_labels(&mut labels).is_ok() {
                series.push(prompb::TimeSeries {
                    labels,
                    samples: vec![prompb::Sample {
                        value,
                        timestamp: now_ms,
                    }],
                    ..Default::default()
                });
            }
        }
        let m = metrics();
        m.scrape_seconds
            .with_label_values(&[&self.target.job])
            .observe(took);
        m.scrape_up
            .with_label_values(&[&self.target.job, &self.instance])
            .set(up as i64);
        (series, error)
    }
}

impl Collector for ScrapeCollector {
    fn name(&self) -> &'static str {
        "scrape"
    }

    fn poll_once(&mut self, out: &dyn RecordSink, _progress: ProgressFn<'_>) -> CollectReport {
        let mut report = CollectReport::default();
        let (series, error) = self.scrape(driftline_pipeline::now_ms());
        if let Some(reason) = error {
            report.errors.push(SourceError {
                source: self.target.url.clone(),
                reason,
            });
        }
        let batch = MetricBatch {
            source: SOURCE.into(),
            series,
        };
        let samples = batch.samples();
        match out.publish(Topic::Metrics, vec![Record::Metrics(batch)]) {
            Ok(()) => {
                metrics()
                    .samples_in
                    .with_label_values(&[SOURCE])
                    .inc_by(samples as u64);
                report.published = samples;
            }
            Err(e) => {
                // Not accepted from anyone: the next scrape reads the target again.
                metrics()
                    .ingest_rejected
                    .with_label_values(&[SOURCE, "busy"])
                    .inc_by(samples as u64);
                report.errors.push(SourceError {
                    source: self.target.url.clone(),
                    reason: format!("scraped samples not published: {e}"),
                });
            }
        }
        report
    }

    fn interval(&self) -> Duration {
        self.interval
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collector(honor: bool) -> ScrapeCollector {
        let mut t = ScrapeTarget::from_url("http://127.0.0.1:9/metrics");
        t.job = "api".into();
        t.honor_labels = honor;
        ScrapeCollector::new(t, Duration::from_secs(15), Duration::from_secs(1)).unwrap()
    }

    fn parsed(labels: &[(&str, &str)]) -> exposition::ParsedSample {
        exposition::ParsedSample {
            name: "m".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            value: 1.0,
            timestamp_ms: None,
        }
    }

    fn get<'a>(labels: &'a [prompb::Label], name: &str) -> Option<&'a str> {
        labels
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.value.as_str())
    }

    #[test]
    fn clashing_labels_are_exported_unless_honoured() {
        let c = collector(false);
        assert_eq!(c.instance(), "127.0.0.1:9");
        let t = c.target_labels();
        let l = c.labelled(parsed(&[("job", "theirs")]), &t).unwrap();
        assert_eq!(get(&l, "job"), Some("api"));
        assert_eq!(get(&l, "exported_job"), Some("theirs"));
        assert_eq!(get(&l, "instance"), Some("127.0.0.1:9"));
        let c = collector(true);
        let l = c.labelled(parsed(&[("job", "theirs")]), &t).unwrap();
        assert_eq!(get(&l, "job"), Some("theirs"));
        assert_eq!(get(&l, "exported_job"), None);
        // An empty scraped value is an absent label: the target's fills it.
        let l = c.labelled(parsed(&[("job", "")]), &t).unwrap();
        assert_eq!(get(&l, "job"), Some("api"));
    }

    #[test]
    fn a_failed_scrape_is_up_0_and_marks_what_it_had_stale() {
        let mut c = collector(false);
        let labels = c.labelled(parsed(&[]), &c.target_labels()).unwrap();
        c.previous.insert(series_id(&labels), labels);
        // Nothing listens on port 9 of the loopback.
        let (series, error) = c.scrape(1_000);
        assert!(error.unwrap().contains("cannot reach"));
        let value = |name: &str| {
            series
                .iter()
                .find(|s| get(&s.labels, "__name__") == Some(name))
                .map(|s| s.samples[0].value)
        };
        assert_eq!(value("up"), Some(0.0));
        assert!(driftline_pipeline::telemetry::is_stale_nan(
            value("m").unwrap()
        ));
        assert!(c.previous.is_empty());
    }
}
