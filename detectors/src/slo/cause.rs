//! The probable cause on an SLO page: what changed on the SLO's
//! service's resources in the lookback window before the burn began,
//! newest first. Two kinds of change: drift findings (`finding_events`:
//! which path, declared vs observed) and new versions of an observed
//! configuration (`resources_observed_history`: which paths, before and
//! after), so a change applied through Terraform is on the page too.
//! Resources belong to a service by a tag (`service` by default) or by
//! an explicit list of resource keys or ids.

use std::collections::BTreeMap;

use arrow::array::{Array, RecordBatch};
use driftline_pipeline::store::{QueryLimits, Store};
use driftline_pipeline::{AttributeDiff, ConfigurationChange, ProbableCause};
use serde_json::Value;

use super::answer::Answer;

/// How an SLO finds its resources.
#[derive(Debug, Clone, PartialEq)]
pub struct CauseScope {
    /// The tag whose value is the SLO's service.
    pub tag: String,
    pub service: String,
    /// Resource keys or ids that belong to it whatever their tags.
    pub resources: Vec<String>,
}

/// Most changes one page carries.
pub const MAX_CAUSES: usize = 10;

/// Most changed paths one configuration change lists.
const MAX_PATHS: usize = 20;

impl CauseScope {
    fn holds(&self, tags: &[(String, String)], key: &str, id: &str) -> bool {
        tags.iter()
            .any(|(k, v)| k.eq_ignore_ascii_case(&self.tag) && *v == self.service)
            || self.resources.iter().any(|r| r == key || r == id)
    }
}

/// What the store holds from a lookback window, read once per decision
/// and shared by every burn that begins at it.
#[derive(Default)]
pub struct Evidence {
    drift: Vec<RecordBatch>,
    versions: Vec<RecordBatch>,
    to_ms: i64,
}

/// Reads the drift events and the observed configuration versions of
/// `[from, to]`. Says in the log when a window held more than one read.
pub fn read_evidence(store: &dyn Store, from_ms: i64, to_ms: i64) -> Result<Evidence, String> {
    let limits = QueryLimits::default();
    let read = |sql: String, what: &str| -> Result<Vec<RecordBatch>, String> {
        let answer = store
            .query(&sql, &limits)
            .map_err(|e| format!("reading {what}: {e}"))?;
        if answer.truncated {
            tracing::warn!(
                rows = limits.max_rows,
                what,
                "probable cause: only the newest were read"
            );
        }
        Ok(answer.batches)
    };
    Ok(Evidence {
        drift: read(causes_sql(from_ms, to_ms), "drift events")?,
        versions: read(versions_sql(from_ms, to_ms), "configuration versions")?,
        to_ms,
    })
}

/// Everything in `evidence` that belongs to `scope`, newest first, at
/// most `MAX_CAUSES`. A configuration change is diffed against the
/// resource's version before it (one more read, for those resources).
pub fn probable_cause(
    store: &dyn Store,
    evidence: &Evidence,
    scope: &CauseScope,
) -> Result<Vec<ProbableCause>, String> {
    let mut out = causes_from(&evidence.drift, scope)?;
    out.extend(configuration_changes(store, evidence, scope)?);
    // RFC 3339 in UTC with milliseconds: text order is time order.
    out.sort_by(|a, b| b.at.cmp(&a.at));
    out.truncate(MAX_CAUSES);
    Ok(out)
}

/// History versions are `seen_at` in ms × 1000 plus a counter (the
/// store's `next_versions`), so a time window is a version range both
/// stores filter on without date functions.
fn version_range(from_ms: i64, to_ms: i64) -> (i64, i64) {
    (
        from_ms.saturating_mul(1000),
        to_ms.saturating_mul(1000) + 999,
    )
}

/// SQL both stores answer: observed versions seen in `[from, to]`,
/// without their configurations (read later for the service's only).
fn versions_sql(from_ms: i64, to_ms: i64) -> String {
    let (lo, hi) = version_range(from_ms, to_ms);
    format!(
        "SELECT version, key, resource_type, resource_id, tag_keys, tag_values \
         FROM resources_observed_history WHERE version >= {lo} AND version <= {hi} AND NOT deleted \
         ORDER BY version DESC"
    )
}

/// One version of one resource as read.
struct Version {
    version: i64,
    key: String,
    resource_type: String,
    resource_id: String,
}

fn configuration_changes(
    store: &dyn Store,
    evidence: &Evidence,
    scope: &CauseScope,
) -> Result<Vec<ProbableCause>, String> {
    let mut changed: Vec<Version> = Vec::new();
    for b in &evidence.versions {
        let a = Answer {
            batch: b,
            table: "resources_observed_history",
        };
        let (version, key, rtype, rid) = (
            a.int64("version")?,
            a.text("key")?,
            a.text("resource_type")?,
            a.text("resource_id")?,
        );
        let tags = a.pairs("tag_keys", "tag_values")?;
        for i in 0..b.num_rows() {
            if scope.holds(&tags.at(i), key.value(i), rid.value(i)) {
                changed.push(Version {
                    version: version.value(i),
                    key: key.value(i).into(),
                    resource_type: rtype.value(i).into(),
                    resource_id: rid.value(i).into(),
                });
            }
        }
    }
    if changed.is_empty() {
        return Ok(Vec::new());
    }
    // Every version of those resources up to the window's end, with its
    // configuration: each change and its predecessor are among them.
    let mut keys: Vec<&str> = changed.iter().map(|v| v.key.as_str()).collect();
    keys.sort();
    keys.dedup();
    let quoted: Vec<String> = keys
        .iter()
        .map(|k| format!("'{}'", k.replace('\'', "''")))
        .collect();
    let (_, hi) = version_range(0, evidence.to_ms);
    let sql = format!(
        "SELECT version, key, configuration FROM resources_observed_history \
         WHERE key IN ({}) AND version <= {hi} AND NOT deleted ORDER BY version",
        quoted.join(", ")
    );
    let answer = store
        .query(&sql, &QueryLimits::default())
        .map_err(|e| format!("reading earlier configuration versions: {e}"))?;
    let mut history: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    for b in &answer.batches {
        let a = Answer {
            batch: b,
            table: "resources_observed_history",
        };
        let (version, key, conf) = (
            a.int64("version")?,
            a.text("key")?,
            a.text("configuration")?,
        );
        for i in 0..b.num_rows() {
            history
                .entry(key.value(i).into())
                .or_default()
                .push((version.value(i), conf.value(i).into()));
        }
    }
    let mut out = Vec::new();
    for v in changed {
        let Some(h) = history.get(&v.key) else {
            continue;
        };
        let n = h.partition_point(|(ver, _)| *ver < v.version);
        let after = h.get(n).filter(|(ver, _)| *ver == v.version);
        // A first sighting is not a change.
        let (Some((_, before)), Some((_, after))) = (n.checked_sub(1).map(|i| &h[i]), after) else {
            continue;
        };
        let changes = diff_configurations(before, after);
        if changes.is_empty() {
            continue;
        }
        let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
        out.push(ProbableCause {
            at: driftline_pipeline::time::format_epoch_ms(v.version.div_euclid(1000)),
            event: "changed".into(),
            class: "configuration_change".into(),
            summary: format!(
                "{} {} configuration changed: {}",
                v.resource_type,
                v.resource_id,
                paths.join(", ")
            ),
            resource_key: v.key,
            resource_type: v.resource_type,
            resource_id: v.resource_id,
            address: None,
            diffs: Vec::new(),
            changes,
        });
    }
    Ok(out)
}

/// The paths whose values differ between two configurations (JSON text),
/// objects walked key by key, arrays and scalars compared whole.
fn diff_configurations(before: &str, after: &str) -> Vec<ConfigurationChange> {
    fn leaves(v: &Value, path: String, out: &mut BTreeMap<String, Value>) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, v) in m {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    leaves(v, p, out);
                }
            }
            other => {
                out.insert(path, other.clone());
            }
        }
    }
    let parse = |t: &str| serde_json::from_str::<Value>(t).unwrap_or(Value::Null);
    let (mut b, mut a) = (BTreeMap::new(), BTreeMap::new());
    leaves(&parse(before), String::new(), &mut b);
    leaves(&parse(after), String::new(), &mut a);
    let mut paths: Vec<&String> = b.keys().chain(a.keys()).collect();
    paths.sort();
    paths.dedup();
    paths
        .into_iter()
        .filter(|p| b.get(*p) != a.get(*p))
        .take(MAX_PATHS)
        .map(|p| ConfigurationChange {
            path: p.clone(),
            before: b.get(p).cloned().unwrap_or(Value::Null),
            after: a.get(p).cloned().unwrap_or(Value::Null),
        })
        .collect()
}

/// SQL both stores answer: drift events in `[from, to]`, newest first.
fn causes_sql(from_ms: i64, to_ms: i64) -> String {
    format!(
        "SELECT at_ms, event, class, resource_key, resource_type, resource_id, address, summary, diffs, \
         tag_keys, tag_values FROM finding_events WHERE at_ms >= {from_ms} AND at_ms <= {to_ms} \
         AND class IN ('changed', 'missing', 'unmanaged') AND event IN ('new', 'changed') \
         ORDER BY at_ms DESC"
    )
}

/// The rows of `causes_sql` that belong to `scope`, newest first.
fn causes_from(batches: &[RecordBatch], scope: &CauseScope) -> Result<Vec<ProbableCause>, String> {
    let mut out = Vec::new();
    for b in batches {
        let a = Answer {
            batch: b,
            table: "finding_events",
        };
        let at = a.int64("at_ms")?;
        let (event, class, key, rtype, rid, address, summary, diffs) = (
            a.text("event")?,
            a.text("class")?,
            a.text("resource_key")?,
            a.text("resource_type")?,
            a.text("resource_id")?,
            a.text("address")?,
            a.text("summary")?,
            a.text("diffs")?,
        );
        let tags = a.pairs("tag_keys", "tag_values")?;
        for i in 0..b.num_rows() {
            if !scope.holds(&tags.at(i), key.value(i), rid.value(i)) {
                continue;
            }
            let diffs: Vec<AttributeDiff> =
                serde_json::from_str(diffs.value(i)).unwrap_or_default();
            out.push(ProbableCause {
                at: driftline_pipeline::time::format_epoch_ms(at.value(i)),
                event: event.value(i).into(),
                class: class.value(i).into(),
                resource_key: key.value(i).into(),
                resource_type: rtype.value(i).into(),
                resource_id: rid.value(i).into(),
                address: (!address.is_null(i)).then(|| address.value(i).to_string()),
                summary: summary.value(i).into(),
                diffs,
                changes: Vec::new(),
            });
            if out.len() == MAX_CAUSES {
                return Ok(out);
            }
        }
    }
    Ok(out)
}
