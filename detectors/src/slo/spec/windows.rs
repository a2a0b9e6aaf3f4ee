//! Alert windows: the SRE workbook's multi-window, multi-burn-rate pairs,
//! in Sloth's `AlertWindows` format (`sloth.slok.dev/v1`). A window pair
//! fires when both its short and long windows burn faster than its
//! factor: the share of the period's budget it may spend, over the long
//! window's share of the period.

use serde::Deserialize;

/// One pair: `budget_percent` of the period's error budget spent within
/// `long_ms`, still burning over `short_ms`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub budget_percent: f64,
    pub short_ms: i64,
    pub long_ms: i64,
}

/// The quick and the slow pair of one severity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuickSlow {
    pub quick: Window,
    pub slow: Window,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlertWindows {
    pub period_ms: i64,
    pub page: QuickSlow,
    pub ticket: QuickSlow,
}

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;

impl Default for AlertWindows {
    /// Google's 30-day set (the SRE workbook, table 5-8), Sloth's default.
    fn default() -> Self {
        let w = |budget_percent, short_ms, long_ms| Window {
            budget_percent,
            short_ms,
            long_ms,
        };
        Self {
            period_ms: 30 * DAY,
            page: QuickSlow {
                quick: w(2.0, 5 * MIN, HOUR),
                slow: w(5.0, 30 * MIN, 6 * HOUR),
            },
            ticket: QuickSlow {
                quick: w(10.0, 2 * HOUR, DAY),
                slow: w(10.0, 6 * HOUR, 3 * DAY),
            },
        }
    }
}

/// Page or ticket: how urgent an SLO alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Page,
    Ticket,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Page => "page",
            Severity::Ticket => "ticket",
        }
    }
}

/// One resolved condition: both windows' error ratios above `factor`
/// times the error budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BurnPair {
    pub severity: Severity,
    pub short_ms: i64,
    pub long_ms: i64,
    pub factor: f64,
}

impl AlertWindows {
    /// The burn rate a pair alerts above over an SLO period of
    /// `period_ms`, computed as Sloth computes it (so the thresholds match
    /// its rules to the last bit). Sloth's 28-day windows are its 30-day
    /// ones over another period; so are these.
    pub fn factor(&self, w: &Window, period_ms: i64) -> f64 {
        let hours = |ms: i64| ms as f64 / HOUR as f64;
        let hours_to_spend = w.budget_percent * hours(period_ms) / 100.0;
        hours_to_spend / hours(w.long_ms)
    }

    /// The four pairs over an SLO period (the windows' own when `None`).
    pub fn pairs(&self, period_ms: Option<i64>) -> Vec<BurnPair> {
        let period = period_ms.unwrap_or(self.period_ms);
        [(Severity::Page, self.page), (Severity::Ticket, self.ticket)]
            .into_iter()
            .flat_map(|(severity, qs)| [(severity, qs.quick), (severity, qs.slow)])
            .map(|(severity, w)| BurnPair {
                severity,
                short_ms: w.short_ms,
                long_ms: w.long_ms,
                factor: self.factor(&w, period),
            })
            .collect()
    }
}

/// A window length as PromQL writes it (`5m`, `1h`, `3d`), for
/// `{{.window}}`.
pub fn promql_duration(ms: i64) -> String {
    for (unit, size) in [("d", DAY), ("h", HOUR), ("m", MIN), ("s", 1000)] {
        if ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

// Sloth's document, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AlertWindowsDoc {
    #[serde(rename = "apiVersion")]
    _api_version: String,
    #[serde(rename = "kind")]
    _kind: String,
    pub spec: AlertWindowsSpec,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct AlertWindowsSpec {
    slo_period: String,
    page: QuickSlowDoc,
    ticket: QuickSlowDoc,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuickSlowDoc {
    quick: WindowDoc,
    slow: WindowDoc,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct WindowDoc {
    error_budget_percent: f64,
    short_window: String,
    long_window: String,
}

impl AlertWindowsSpec {
    /// Checked windows, or the path of what is wrong and why.
    pub(super) fn resolve(&self) -> Result<AlertWindows, (String, String)> {
        let duration = |path: &str, text: &str| -> Result<i64, (String, String)> {
            let d = driftline_pipeline::time::parse_duration(text)
                .map_err(|e| (path.to_string(), e))?;
            if d.is_zero() {
                return Err((path.to_string(), "must be longer than zero".into()));
            }
            Ok(d.as_millis() as i64)
        };
        let period_ms = duration("spec.sloPeriod", &self.slo_period)?;
        let window = |path: &str, w: &WindowDoc| -> Result<Window, (String, String)> {
            if !(w.error_budget_percent > 0.0 && w.error_budget_percent <= 100.0) {
                return Err((
                    format!("{path}.errorBudgetPercent"),
                    format!("{} is not in (0, 100]", w.error_budget_percent),
                ));
            }
            let short_ms = duration(&format!("{path}.shortWindow"), &w.short_window)?;
            let long_ms = duration(&format!("{path}.longWindow"), &w.long_window)?;
            if short_ms >= long_ms {
                return Err((
                    format!("{path}.shortWindow"),
                    "must be shorter than longWindow".into(),
                ));
            }
            Ok(Window {
                budget_percent: w.error_budget_percent,
                short_ms,
                long_ms,
            })
        };
        let pair = |path: &str, qs: &QuickSlowDoc| -> Result<QuickSlow, (String, String)> {
            Ok(QuickSlow {
                quick: window(&format!("{path}.quick"), &qs.quick)?,
                slow: window(&format!("{path}.slow"), &qs.slow)?,
            })
        };
        Ok(AlertWindows {
            period_ms,
            page: pair("spec.page", &self.page)?,
            ticket: pair("spec.ticket", &self.ticket)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn google_windows_give_the_workbook_factors() {
        let w = AlertWindows::default();
        let factors: Vec<f64> = w
            .pairs(None)
            .iter()
            .map(|p| (p.factor * 1000.0).round() / 1000.0)
            .collect();
        assert_eq!(factors, [14.4, 6.0, 3.0, 1.0]);
        // Sloth's 28-day set: the same windows over 28 days.
        assert!((w.pairs(Some(28 * DAY))[0].factor - 13.44).abs() < 1e-12);
        assert_eq!(promql_duration(3 * DAY), "3d");
        assert_eq!(promql_duration(30 * MIN), "30m");
    }
}
