//! SLO specs as SREs already write them. `load` reads files and folders
//! of YAML documents and tells each kind by its header:
//! - Sloth `version: prometheus/v1`, and `kind: PrometheusServiceLevel`;
//! - Sloth `kind: AlertWindows` (custom alert windows);
//! - OpenSLO `apiVersion: openslo/v1` objects, references resolved
//!   across the whole load.
//!
//! Every problem names the file, the path in the document and the reason.

mod openslo;
mod sloth;
mod windows;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use windows::{AlertWindows, BurnPair, QuickSlow, Severity, Window, promql_duration};

/// The template variable Sloth queries carry their window in.
pub const WINDOW_VAR: &str = "{{.window}}";

/// One SLO, whichever format it came in.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    /// `{service}-{name}`, as Sloth's `sloth_id`.
    pub id: String,
    pub service: String,
    pub name: String,
    pub description: String,
    /// Percent, in (0, 100].
    pub objective: f64,
    pub sli: Sli,
    /// The spec's and the SLO's labels, the SLO's winning.
    pub labels: BTreeMap<String, String>,
    pub alerting: Alerting,
    /// The SLO period; `None`: the alert windows' (30 days by default).
    pub period_ms: Option<i64>,
    /// Burn-rate conditions the spec names itself (OpenSLO alert
    /// conditions); empty: the alert windows' pairs.
    pub conditions: Vec<BurnPair>,
    /// Labels the SLO is split by: each value is its own SLO, with its own
    /// budget and alerts (`Tuning`).
    pub group_by: Vec<String>,
    /// The fewest events a long window must hold before it may alert, so
    /// one failure in three requests at night does not page (`Tuning`).
    pub min_events: f64,
    /// Resource keys or ids that belong to the SLO's service whatever
    /// their tags, for the probable cause (`Tuning`).
    pub resources: Vec<String>,
}

impl Slo {
    /// The conditions this SLO alerts on, its disabled severities left out.
    pub fn burn_pairs(&self, windows: &AlertWindows) -> Vec<BurnPair> {
        let pairs = if self.conditions.is_empty() {
            windows.pairs(self.period_ms)
        } else {
            self.conditions.clone()
        };
        pairs
            .into_iter()
            .filter(|p| match p.severity {
                Severity::Page => self.alerting.page.is_some(),
                Severity::Ticket => self.alerting.ticket.is_some(),
            })
            .collect()
    }

    /// The share of events allowed to fail: `(100 - objective) / 100`,
    /// as Sloth computes it.
    pub fn error_budget(&self) -> f64 {
        (100.0 - self.objective) / 100.0
    }
}

/// What counts as failure, with `{{.window}}` for the window.
#[derive(Debug, Clone, PartialEq)]
pub enum Sli {
    /// Bad events over all events.
    Events { error: String, total: String },
    /// A query that already answers the error ratio.
    Raw { error_ratio: String },
    /// Good events over all events (OpenSLO's good/total); errors are
    /// the rest.
    Good { good: String, total: String },
}

impl Sli {
    /// The error ratio over `window` (e.g. `5m`), as Sloth's recording
    /// rule writes it.
    pub fn ratio_query(&self, window: &str) -> String {
        match self {
            Sli::Events { error, total } => format!(
                "({})\n/\n({})",
                error.replace(WINDOW_VAR, window),
                total.replace(WINDOW_VAR, window)
            ),
            Sli::Raw { error_ratio } => error_ratio.replace(WINDOW_VAR, window),
            Sli::Good { good, total } => format!(
                "1 - (\n({})\n/\n({})\n)",
                good.replace(WINDOW_VAR, window),
                total.replace(WINDOW_VAR, window)
            ),
        }
    }

    /// All events per second over `window`, when the SLI counts events.
    pub fn total_query(&self, window: &str) -> Option<String> {
        match self {
            Sli::Events { total, .. } | Sli::Good { total, .. } => {
                Some(total.replace(WINDOW_VAR, window))
            }
            Sli::Raw { .. } => None,
        }
    }
}

/// What driftline's configuration adds to specs (`[[slo.tuning]]`, or
/// `slo eval --group-by/--min-events`): a split by label values and a
/// minimum-traffic guard, for one SLO (`slo`: its id) or every one.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tuning {
    #[serde(default)]
    pub slo: Option<String>,
    #[serde(default)]
    pub group_by: Vec<String>,
    #[serde(default)]
    pub min_events: f64,
    /// Resources (keys or ids) whose drift is a probable cause of this
    /// SLO's burns, beside those tagged with its service.
    #[serde(default)]
    pub resources: Vec<String>,
}

impl SloSet {
    /// `slo`'s period: its own (an OpenSLO time window), else the alert
    /// windows' (30 days unless an `AlertWindows` document says otherwise).
    pub fn period_ms(&self, slo: &Slo) -> i64 {
        slo.period_ms.unwrap_or(self.windows.period_ms)
    }

    /// Applies tunings in order; one naming an SLO that is not loaded, or
    /// a guard on an SLI that does not count events, is refused.
    pub fn tune(&mut self, tunings: &[Tuning]) -> Result<(), String> {
        for t in tunings {
            if t.min_events < 0.0 || t.min_events.is_nan() {
                return Err(format!("min_events {} must be 0 or more", t.min_events));
            }
            let mut matched = false;
            for s in &mut self.slos {
                if t.slo.as_ref().is_some_and(|id| *id != s.id) {
                    continue;
                }
                matched = true;
                if t.min_events > 0.0 && s.sli.total_query("5m").is_none() {
                    if t.slo.is_some() {
                        return Err(format!(
                            "SLO {}: min_events needs an SLI that counts events (events or good/total), not a raw ratio",
                            s.id
                        ));
                    }
                    continue;
                }
                s.group_by.clone_from(&t.group_by);
                s.min_events = t.min_events;
                s.resources.clone_from(&t.resources);
            }
            if let Some(id) = &t.slo
                && !matched
            {
                return Err(format!("no SLO {id:?} is loaded"));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Alerting {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// `None` when disabled.
    pub page: Option<Alert>,
    pub ticket: Option<Alert>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}: {path}: {reason}")]
pub struct SpecError {
    pub file: String,
    /// Where in the file: the document (when there are several) and the
    /// field path, e.g. `slos[0].objective`.
    pub path: String,
    pub reason: String,
}

/// Every SLO loaded, with the alert windows they use.
#[derive(Debug, Clone, Default)]
pub struct SloSet {
    pub slos: Vec<Slo>,
    pub windows: AlertWindows,
}

/// The header every document is told apart by.
#[derive(Deserialize)]
struct Header {
    #[serde(default)]
    version: Option<String>,
    #[serde(default, rename = "apiVersion")]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
}

/// Reads specs from files and folders (every `.yaml`/`.yml` inside, in
/// name order). Every problem found is returned, not only the first.
pub fn load(paths: &[PathBuf]) -> Result<SloSet, Vec<SpecError>> {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|f| f.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(p.clone());
        }
    }
    let mut texts = Vec::with_capacity(files.len());
    for f in files {
        match std::fs::read_to_string(&f) {
            Ok(text) => texts.push((f, text)),
            Err(e) => errors.push(SpecError {
                file: f.display().to_string(),
                path: String::new(),
                reason: e.to_string(),
            }),
        }
    }
    load_texts(&texts, errors)
}

/// Loads spec documents already read, each with the file it came from (for
/// messages), as `load` loads files: the entry point for text that did not
/// come from a file, and for the fuzz targets.
pub fn load_str(file: &str, text: &str) -> Result<SloSet, Vec<SpecError>> {
    load_texts(&[(PathBuf::from(file), text.to_string())], Vec::new())
}

fn load_texts(
    texts: &[(PathBuf, String)],
    mut errors: Vec<SpecError>,
) -> Result<SloSet, Vec<SpecError>> {
    let mut set = SloSet::default();
    let mut windows: Option<(String, AlertWindows)> = None;
    let mut openslo_objects = Vec::new();
    for (f, text) in texts {
        match load_text(f, text) {
            Ok(loaded) => {
                openslo_objects.extend(loaded.openslo);
                for s in loaded.slos {
                    if set.slos.iter().any(|o| o.id == s.id) {
                        errors.push(SpecError {
                            file: f.display().to_string(),
                            path: format!("slos[{:?}]", s.name),
                            reason: format!("SLO {:?} is defined twice", s.id),
                        });
                    } else {
                        set.slos.push(s);
                    }
                }
                for w in loaded.windows {
                    if let Some((first, _)) = &windows {
                        errors.push(SpecError {
                            file: f.display().to_string(),
                            path: "spec".into(),
                            reason: format!("alert windows are already set by {first}"),
                        });
                    } else {
                        windows = Some((f.display().to_string(), w));
                    }
                }
            }
            Err(e) => errors.extend(e),
        }
    }
    for resolved in openslo::resolve(&openslo_objects) {
        match resolved {
            Ok(s) if set.slos.iter().any(|o| o.id == s.id) => errors.push(SpecError {
                file: openslo_objects
                    .iter()
                    .find(|o| o.name() == s.name)
                    .map(|o| o.file.clone())
                    .unwrap_or_default(),
                path: "metadata.name".into(),
                reason: format!("SLO {:?} is defined twice", s.id),
            }),
            Ok(s) => set.slos.push(s),
            Err((file, path, reason)) => errors.push(SpecError { file, path, reason }),
        }
    }
    if let Some((_, w)) = windows {
        set.windows = w;
    }
    if errors.is_empty() {
        Ok(set)
    } else {
        Err(errors)
    }
}

#[derive(Default)]
struct Loaded {
    slos: Vec<Slo>,
    windows: Vec<AlertWindows>,
    openslo: Vec<openslo::Object>,
}

fn load_text(file: &Path, text: &str) -> Result<Loaded, Vec<SpecError>> {
    let fail = |path: String, reason: String| SpecError {
        file: file.display().to_string(),
        path,
        reason,
    };
    // serde's messages carry the field path and the line; the document
    // is read twice, once for its header and once as its kind.
    let yaml_error = |doc: &str, e: &dyn std::fmt::Display| {
        let msg = e.to_string();
        let (path, reason) = match msg.split_once(": ") {
            Some((p, r)) if !p.contains(' ') => (p.to_string(), r.to_string()),
            _ => (String::new(), msg),
        };
        fail(format!("{doc}{path}"), reason)
    };
    // After a document it cannot parse, serde_norway's iterator yields
    // that error again and again (found by fuzzing: a file with an
    // unterminated quote took 3 GB): read up to the first error only.
    let mut headers: Vec<Result<Header, serde_norway::Error>> = Vec::new();
    for header in serde_norway::Deserializer::from_str(text).map(Header::deserialize) {
        let failed = header.is_err();
        headers.push(header);
        if failed {
            break;
        }
    }
    let several = headers.len() > 1;
    let mut out = Loaded::default();
    let mut errors = Vec::new();
    for (i, doc) in serde_norway::Deserializer::from_str(text)
        .enumerate()
        .take(headers.len())
    {
        let prefix = if several {
            format!("document {} ", i + 1)
        } else {
            String::new()
        };
        let header = match &headers[i] {
            Ok(h) => h,
            Err(e) => {
                errors.push(yaml_error(&prefix, e));
                continue;
            }
        };
        let kind = header.kind.as_deref().unwrap_or("");
        let api = header.api_version.as_deref().unwrap_or("");
        let result: Result<(), SpecError> = if header.version.is_some() {
            sloth::Spec::deserialize(doc)
                .map_err(|e| yaml_error(&prefix, &e))
                .and_then(|s| {
                    s.resolve("")
                        .map_err(|(p, r)| fail(format!("{prefix}{p}"), r))
                })
                .map(|slos| out.slos.extend(slos))
        } else if api == "sloth.slok.dev/v1" && kind == "PrometheusServiceLevel" {
            sloth::Resource::deserialize(doc)
                .map_err(|e| yaml_error(&prefix, &e))
                .and_then(|r| {
                    r.spec()
                        .resolve("spec.")
                        .map_err(|(p, r)| fail(format!("{prefix}{p}"), r))
                })
                .map(|slos| out.slos.extend(slos))
        } else if api == "sloth.slok.dev/v1" && kind == "AlertWindows" {
            windows::AlertWindowsDoc::deserialize(doc)
                .map_err(|e| yaml_error(&prefix, &e))
                .and_then(|d| {
                    d.spec
                        .resolve()
                        .map_err(|(p, r)| fail(format!("{prefix}{p}"), r))
                })
                .map(|w| out.windows.push(w))
        } else if api.starts_with("openslo/") {
            let file_name = file.display().to_string();
            openslo::Doc::deserialize(doc)
                .map_err(|e| yaml_error(&prefix, &e))
                .and_then(|d| {
                    d.into_object(&file_name, &prefix)
                        .map_err(|(p, r)| fail(format!("{prefix}{p}"), r))
                })
                .map(|o| out.openslo.push(o))
        } else {
            Err(fail(
                prefix.trim_end().to_string(),
                "not an SLO spec: expected Sloth's `version: prometheus/v1`, `apiVersion: sloth.slok.dev/v1` \
                 with kind PrometheusServiceLevel or AlertWindows, or `apiVersion: openslo/v1`"
                    .into(),
            ))
        };
        if let Err(e) = result {
            errors.push(e);
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// One spec file's text, loaded as `load` loads a file (tests).
#[cfg(test)]
pub(crate) fn load_test_spec(name: &str, yaml: &str) -> SloSet {
    let dir = tempfile::tempdir().expect("a temp dir");
    let f = dir.path().join(name);
    std::fs::write(&f, yaml).expect("the spec written");
    load(&[f]).unwrap_or_else(|e| panic!("{e:?}"))
}

#[cfg(test)]
mod tests;
