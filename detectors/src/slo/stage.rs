//! The SLO detector on the stream: `driftline.metrics` in, the samples of
//! the metrics the SLOs' queries name kept for their longest window, and
//! every evaluation interval the burn-rate decision made at the aligned
//! step. What starts firing is published on `driftline.findings` as a
//! `new` `slo_burn` finding, what stops as `resolved`, so the alert engine
//! pages (and inhibits a ticket under a page) as it does for drift.
//!
//! One instance sees every series: run one detect role per bus, or the
//! sums of a split topic would be partial.

use std::collections::{BTreeMap, HashSet};

use driftline_pipeline::bus::{ConsumerSpec, Message, OutMessage, Topic};
use driftline_pipeline::codec::encode_finding_event;
use driftline_pipeline::stage::{Stage, StageError};
use driftline_pipeline::telemetry::decode_metrics;
use driftline_pipeline::{Finding, FindingClass, FindingEvent, FindingEventKind, SloBurn};

use super::burn::{BurnRates, Firing};
use super::cause::{CauseScope, Evidence, probable_cause, read_evidence};
use super::promql::{LOOKBACK_MS, Labels, SeriesSet};
use super::report;
use super::spec::SloSet;

/// What the stage reads from the store: at start, the recent samples of
/// the SLO metrics (so a restart does not forget the windows); at a burn,
/// the drift on the service's resources (`tag` names a resource's
/// service; `lookback_ms` is how far back from the burn).
pub struct History {
    pub store: std::sync::Arc<dyn driftline_pipeline::Store>,
    pub tag: String,
    pub lookback_ms: i64,
}

pub struct SloStage {
    rates: BurnRates,
    history: Option<History>,
    /// The store's samples have been read (once, before live ones).
    backfilled: bool,
    group: String,
    series: SeriesSet,
    /// The metric names kept; `None`: every metric (a query selects by
    /// labels only).
    names: Option<HashSet<String>>,
    /// How much history a decision reads: the longest window, the lookback.
    keep_ms: i64,
    interval_ms: i64,
    /// The next step to decide at.
    next_step: Option<i64>,
    /// What fires now, by fingerprint.
    open: BTreeMap<String, Finding>,
    gauges: super::gauges::Gauges,
    clock: fn() -> i64,
}

impl SloStage {
    pub fn new(
        set: &SloSet,
        group: String,
        interval_ms: i64,
    ) -> Result<Self, super::burn::BurnError> {
        let keep_ms = set
            .slos
            .iter()
            .flat_map(|s| s.burn_pairs(&set.windows))
            .map(|p| p.long_ms)
            .max()
            .unwrap_or(0)
            + LOOKBACK_MS;
        Ok(Self {
            rates: BurnRates::new(set)?,
            history: None,
            backfilled: false,
            group,
            series: SeriesSet::default(),
            names: report::metric_names(set).map(|n| n.into_iter().collect()),
            keep_ms,
            interval_ms: interval_ms.max(1000),
            next_step: None,
            open: BTreeMap::new(),
            gauges: Default::default(),
            clock: driftline_pipeline::now_ms,
        })
    }

    /// Starts from the store's recent samples and attaches the probable
    /// cause to each new burn.
    pub fn with_history(mut self, history: History) -> Self {
        self.history = Some(history);
        self
    }

    /// The store's samples of the SLO metrics over the longest window, read
    /// before any live sample (a series refuses older points after newer).
    /// A store that cannot answer leaves the windows to fill from the
    /// stream, said in the log.
    fn backfill(&mut self) {
        if std::mem::replace(&mut self.backfilled, true) {
            return;
        }
        let Some(h) = &self.history else {
            return;
        };
        let now = (self.clock)();
        let names: Option<Vec<String>> = self.names.as_ref().map(|n| n.iter().cloned().collect());
        // The burns open before the restart: resolved here when they have
        // stopped, never published again while they go on.
        match driftline_pipeline::store::open_findings(&*h.store) {
            Ok(found) => {
                for f in found
                    .into_iter()
                    .filter(|f| f.class == FindingClass::SloBurn)
                {
                    self.open.insert(f.fingerprint.clone(), f);
                }
            }
            Err(e) => tracing::warn!(error = %e, "open SLO burns could not be read back"),
        }
        match report::read_series(&*h.store, names.as_deref(), now - self.keep_ms, now) {
            Ok(series) => {
                tracing::info!(
                    series = series.len(),
                    "SLO windows read back from the store"
                );
                self.series = series;
            }
            Err(e) => {
                tracing::warn!(error = %e, "SLO windows start empty: the store's samples could not be read")
            }
        }
    }

    /// What changed in the lookback before `step`, read once for every
    /// burn that begins at it. A store that cannot answer leaves the pages
    /// without a probable cause, said in the log.
    fn evidence_before(&self, step: i64) -> Evidence {
        let Some(h) = &self.history else {
            return Evidence::default();
        };
        read_evidence(h.store.as_ref(), step - h.lookback_ms, step).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "probable cause not looked up");
            Evidence::default()
        })
    }

    /// What of `evidence` belongs to `slo`'s service.
    fn probable_cause(
        &self,
        slo: &super::spec::Slo,
        evidence: &Evidence,
    ) -> Vec<driftline_pipeline::ProbableCause> {
        let Some(h) = &self.history else {
            return Vec::new();
        };
        let scope = CauseScope {
            tag: h.tag.clone(),
            service: slo.service.clone(),
            resources: slo.resources.clone(),
        };
        probable_cause(h.store.as_ref(), evidence, &scope).unwrap_or_else(|e| {
            tracing::warn!(slo = %slo.id, error = %e, "probable cause not read");
            Vec::new()
        })
    }

    /// Decides with another clock (tests, the demo).
    pub fn with_clock(mut self, clock: fn() -> i64) -> Self {
        self.clock = clock;
        self
    }

    fn take_one(&mut self, m: &Message) -> Result<(), String> {
        let payload = m.payload.as_deref().ok_or("no payload")?;
        let req = decode_metrics(payload)?;
        for ts in req.timeseries {
            let name = ts
                .labels
                .iter()
                .find(|l| l.name == "__name__")
                .map(|l| l.value.as_str())
                .unwrap_or("");
            if self.names.as_ref().is_some_and(|n| !n.contains(name)) {
                continue;
            }
            let labels = Labels::new(ts.labels.into_iter().map(|l| (l.name, l.value)).collect());
            for s in ts.samples {
                // A sample older than its series' newest is dropped, as the
                // TSDB drops it.
                self.series.push(labels.clone(), s.timestamp, s.value);
            }
        }
        Ok(())
    }

    /// The finding for one firing alert.
    fn finding(&self, f: &Firing) -> Finding {
        let slo = &self.rates.slos()[f.slo];
        let split: Vec<String> = f
            .labels
            .pairs()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let key = format!("slo/{}/{}/{}", slo.id, f.severity.as_str(), split.join(","));
        let alert = match f.severity {
            super::burn::Severity::Page => slo.alerting.page.as_ref(),
            super::burn::Severity::Ticket => slo.alerting.ticket.as_ref(),
        };
        let mut labels: BTreeMap<String, String> = slo.labels.clone();
        labels.extend(slo.alerting.labels.clone());
        if let Some(a) = alert {
            labels.extend(a.labels.clone());
        }
        labels.extend(f.labels.pairs().iter().cloned());
        let mut annotations = slo.alerting.annotations.clone();
        if let Some(a) = alert {
            annotations.extend(a.annotations.clone());
        }
        let fastest = f
            .burn_rates
            .iter()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(w, b)| format!(" ({b:.1}× over {w})"))
            .unwrap_or_default();
        let summary = format!(
            "{} SLO {} ({}%) burns its error budget too fast{fastest}{}",
            slo.service,
            slo.name,
            slo.objective,
            if split.is_empty() {
                String::new()
            } else {
                format!(" for {}", split.join(", "))
            }
        );
        Finding::slo_burn(
            key,
            summary,
            SloBurn {
                id: slo.id.clone(),
                name: slo.name.clone(),
                service: slo.service.clone(),
                severity: f.severity.as_str().into(),
                alert_name: slo.alerting.name.clone(),
                objective: slo.objective,
                labels,
                annotations,
                burn_rates: f.burn_rates.clone(),
                probable_cause: Vec::new(),
            },
        )
    }

    /// Decides at `step`: the events that change what fires.
    fn decide(&mut self, step: i64) -> Result<Vec<FindingEvent>, StageError> {
        self.series.trim(step - self.keep_ms);
        let decision = self
            .rates
            .decide(&self.series, step, self.interval_ms)
            .map_err(|e| StageError::of("slo", e))?;
        self.gauges.show(&self.rates, &decision, step);
        let firing = decision.firing;
        // Each firing's finding, with the SLO it belongs to.
        let mut now: BTreeMap<String, (usize, Finding)> = BTreeMap::new();
        for f in &firing {
            let finding = self.finding(f);
            now.insert(finding.fingerprint.clone(), (f.slo, finding));
        }
        let mut events = Vec::new();
        for (fp, f) in &self.open {
            if !now.contains_key(fp) {
                events.push(FindingEvent::new(
                    FindingEventKind::Resolved,
                    step,
                    f.clone(),
                ));
            }
        }
        let mut evidence = None;
        for (fp, (slo, f)) in &mut now {
            match self.open.get(fp) {
                // Still firing: the cause found when it began stays on it.
                Some(open) => {
                    if let (Some(cur), Some(prev)) = (f.slo.as_mut(), open.slo.as_ref()) {
                        cur.probable_cause.clone_from(&prev.probable_cause);
                    }
                }
                None => {
                    let evidence = evidence.get_or_insert_with(|| self.evidence_before(step));
                    if let Some(burn) = f.slo.as_mut() {
                        burn.probable_cause =
                            self.probable_cause(&self.rates.slos()[*slo], evidence);
                    }
                    events.push(FindingEvent::new(FindingEventKind::New, step, f.clone()));
                }
            }
        }
        self.open = now.into_iter().map(|(fp, (_, f))| (fp, f)).collect();
        Ok(events)
    }
}

impl Stage for SloStage {
    fn name(&self) -> &'static str {
        "slo"
    }

    fn consumes(&self) -> ConsumerSpec {
        ConsumerSpec {
            group: self.group.clone(),
            topics: vec![Topic::Metrics],
            rewind: Vec::new(),
            restore: Vec::new(),
        }
    }

    fn replay(&mut self, _messages: Vec<Message>) {}

    fn caught_up(&mut self) -> Result<(), StageError> {
        self.backfill();
        Ok(())
    }

    fn ready_at_start(&self) -> bool {
        true
    }

    fn take(&mut self, messages: Vec<Message>) -> Vec<(Message, String)> {
        self.backfill();
        let mut rejected = Vec::new();
        for m in messages {
            if let Err(reason) = self.take_one(&m) {
                rejected.push((m, reason));
            }
        }
        rejected
    }

    fn flush(&mut self, _drained: bool) -> Result<Option<Vec<OutMessage>>, StageError> {
        let now = (self.clock)();
        let step = now.div_euclid(self.interval_ms) * self.interval_ms;
        let mut next = *self.next_step.get_or_insert(step);
        // A clock stepped back leaves the next step further off than one
        // interval: evaluate from now on rather than wait, blind, for the
        // clock to catch up (a day, after a day's step back).
        if next > step + self.interval_ms {
            next = step;
        }
        if now < next {
            return Ok(Some(Vec::new()));
        }
        self.next_step = Some(step + self.interval_ms);
        let mut out = Vec::new();
        for ev in self.decide(step)? {
            out.push(encode_finding_event(&ev).map_err(|e| StageError::of("slo", e))?);
        }
        Ok(Some(out))
    }
}

#[cfg(test)]
#[path = "stage_tests.rs"]
mod tests;
