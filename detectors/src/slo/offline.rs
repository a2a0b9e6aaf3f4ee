//! `driftline slo eval`: the SLOs evaluated at every step over a fixed
//! set of samples, as `promtool test rules` evaluates rules, and the
//! intervals each alert fired over. An interval starts at the first step
//! that fires and ends at the first step that does not (`None` while it
//! still fires at the last step).

use std::collections::BTreeMap;

use super::burn::{BurnError, BurnRates, Severity};
use super::promql::{Labels, SeriesSet};

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AlertInterval {
    pub slo: String,
    pub service: String,
    pub severity: Severity,
    /// The split's labels, when the SLI keeps any.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Milliseconds since the epoch.
    #[serde(skip)]
    pub start_ms: i64,
    #[serde(skip)]
    pub end_ms: Option<i64>,
    /// Highest burn rate per window while it fired.
    #[serde(skip)]
    pub peak_burn_rates: BTreeMap<String, f64>,
}

/// Evaluates every step from `from` to `to` (both included; steps are
/// multiples of `step_ms`, as a rule group's evaluations are).
pub fn evaluate(
    rates: &BurnRates,
    series: &SeriesSet,
    from: i64,
    to: i64,
    step_ms: i64,
) -> Result<Vec<AlertInterval>, BurnError> {
    let mut open: BTreeMap<(usize, Severity, Labels), usize> = BTreeMap::new();
    let mut out: Vec<AlertInterval> = Vec::new();
    let mut t = from.div_euclid(step_ms) * step_ms;
    if t < from {
        t += step_ms;
    }
    while t <= to {
        let firing = rates.step(series, t, step_ms)?;
        let mut now: BTreeMap<(usize, Severity, Labels), BTreeMap<String, f64>> = BTreeMap::new();
        for f in firing {
            now.insert((f.slo, f.severity, f.labels), f.burn_rates);
        }
        // Close what stopped firing.
        open.retain(|key, i| {
            if now.contains_key(key) {
                true
            } else {
                out[*i].end_ms = Some(t);
                false
            }
        });
        for (key, burn) in now {
            let i = *open.entry(key.clone()).or_insert_with(|| {
                let slo = &rates.slos()[key.0];
                out.push(AlertInterval {
                    slo: slo.name.clone(),
                    service: slo.service.clone(),
                    severity: key.1,
                    labels: key
                        .2
                        .pairs()
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    start_ms: t,
                    end_ms: None,
                    peak_burn_rates: BTreeMap::new(),
                });
                out.len() - 1
            });
            for (w, b) in burn {
                let peak = out[i].peak_burn_rates.entry(w).or_insert(b);
                if b > *peak {
                    *peak = b;
                }
            }
        }
        t += step_ms;
    }
    out.sort_by(|a, b| (a.start_ms, &a.slo, a.severity).cmp(&(b.start_ms, &b.slo, b.severity)));
    Ok(out)
}
