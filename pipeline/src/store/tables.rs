//! The store's history tables beside `finding_events`: every version of a
//! declared and an observed resource (`resources_declared_history`,
//! `resources_observed_history`; the views `resources_declared` and
//! `resources_observed` are their latest rows), and every step of an alert
//! (`alert_events`; the views `alerts` and `alert_outcomes` read it).
//!
//! A history row is the snapshot table's row (`schema.rs`) behind a few
//! columns of its own: `version` (unique and increasing, so "the latest"
//! needs no tie-break), `seen_at`, the resource's identity `key` (the bus
//! key), `deleted` (a tombstone), a `digest` of what the resource says (a
//! scan appends only versions that differ), and its tags as parallel lists.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, LazyLock};

use arrow::array::{
    ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
    new_null_array,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use sha2::{Digest, Sha256};

use crate::schema::{DECLARED_SCHEMA, OBSERVED_SCHEMA, string_list, string_map_lists, utc_ms};

pub const DECLARED_HISTORY: &str = "resources_declared_history";
pub const OBSERVED_HISTORY: &str = "resources_observed_history";
pub const ALERT_EVENTS: &str = "alert_events";
pub const REMEDIATION_AUDIT: &str = "remediation_audit";

/// Every table a store has, with its schema: registered empty by the
/// Parquet store until first written (so queries and views over them work
/// from the start), and created by the ClickHouse migrations (a test holds
/// the two to each other).
pub fn every_table() -> Vec<(&'static str, SchemaRef)> {
    use crate::telemetry::tables as telemetry;
    vec![
        (crate::focus::TABLE, crate::focus::schema()),
        (
            "finding_events",
            crate::schema::FINDING_EVENTS_SCHEMA.clone(),
        ),
        ("dead_letters", crate::schema::DEAD_LETTERS_SCHEMA.clone()),
        (DECLARED_HISTORY, DECLARED_HISTORY_SCHEMA.clone()),
        (OBSERVED_HISTORY, OBSERVED_HISTORY_SCHEMA.clone()),
        (ALERT_EVENTS, ALERT_EVENTS_SCHEMA.clone()),
        (REMEDIATION_AUDIT, REMEDIATION_AUDIT_SCHEMA.clone()),
        (
            telemetry::METRIC_SAMPLES,
            telemetry::METRIC_SAMPLES_SCHEMA.clone(),
        ),
        (
            telemetry::LOG_RECORDS,
            telemetry::LOG_RECORDS_SCHEMA.clone(),
        ),
    ]
}

/// The columns a history table puts before the snapshot's.
fn history_schema(snapshot: &SchemaRef, with_resource_type: bool) -> SchemaRef {
    let mut fields = vec![
        Field::new("version", DataType::Int64, false),
        Field::new("seen_at", utc_ms(), false),
        Field::new("key", DataType::Utf8, false),
        Field::new("deleted", DataType::Boolean, false),
        Field::new("digest", DataType::Utf8, false),
    ];
    if with_resource_type {
        // Declared rows carry it only inside type_id; the views group by it.
        fields.push(Field::new("resource_type", DataType::Utf8, false));
    }
    fields.push(string_list("tag_keys"));
    fields.push(string_list("tag_values"));
    fields.extend(snapshot.fields().iter().map(|f| f.as_ref().clone()));
    Arc::new(Schema::new(fields))
}

pub static DECLARED_HISTORY_SCHEMA: LazyLock<SchemaRef> =
    LazyLock::new(|| history_schema(&DECLARED_SCHEMA, true));
pub static OBSERVED_HISTORY_SCHEMA: LazyLock<SchemaRef> =
    LazyLock::new(|| history_schema(&OBSERVED_SCHEMA, false));

/// Versions increase across every history row this process writes, even
/// within one millisecond.
fn next_versions(n: usize, at_ms: i64) -> Vec<i64> {
    static LAST: AtomicI64 = AtomicI64::new(0);
    let floor = at_ms.saturating_mul(1000);
    let mut first = 0;
    let _ = LAST.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
        first = floor.max(last + 1);
        Some(first + n as i64 - 1)
    });
    (0..n as i64).map(|i| first + i).collect()
}

fn digest_of(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    h.finalize()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A tag map as AWS reports it: an object, or a list of `{key, value}`.
fn tag_pairs(tags: &serde_json::Value) -> Vec<(String, String)> {
    use serde_json::Value;
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    match tags {
        Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), text(v))).collect(),
        Value::Array(items) => items
            .iter()
            .filter_map(|t| {
                let k = t.get("key").or_else(|| t.get("Key"))?;
                let v = t.get("value").or_else(|| t.get("Value"));
                Some((text(k), v.map(text).unwrap_or_default()))
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn parse_tags(json: &str, field: Option<&str>) -> Vec<(String, String)> {
    serde_json::from_str::<serde_json::Value>(json)
        .ok()
        .map(|v| match field {
            Some(f) => tag_pairs(&v[f]),
            None => tag_pairs(&v),
        })
        .unwrap_or_default()
}

/// Snapshot columns for tombstones: the key in `resource_key`, every other
/// column its type's empty value.
fn tombstone_columns(snapshot: &SchemaRef, keys: &[&str]) -> Vec<ArrayRef> {
    let n = keys.len();
    snapshot
        .fields()
        .iter()
        .map(|f| -> ArrayRef {
            match f.data_type() {
                _ if f.name() == "resource_key" => Arc::new(StringArray::from_iter_values(keys)),
                _ if f.is_nullable() => new_null_array(f.data_type(), n),
                DataType::Utf8 => Arc::new(StringArray::from_iter_values(vec![""; n])),
                DataType::Boolean => Arc::new(BooleanArray::from(vec![false; n])),
                DataType::Int64 => Arc::new(Int64Array::from(vec![0; n])),
                DataType::UInt64 => Arc::new(arrow::array::UInt64Array::from(vec![0; n])),
                other => new_null_array(other, n),
            }
        })
        .collect()
}

/// A text cell, empty for null.
fn value(a: &StringArray, i: usize) -> &str {
    use arrow::array::Array;
    if a.is_null(i) { "" } else { a.value(i) }
}

/// Which history a snapshot batch goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// `declared` rows (`schema::DECLARED_SCHEMA`).
    Declared,
    /// `observed` rows (`schema::OBSERVED_SCHEMA`).
    Observed,
}

impl Side {
    pub fn table(self) -> &'static str {
        match self {
            Side::Declared => DECLARED_HISTORY,
            Side::Observed => OBSERVED_HISTORY,
        }
    }

    fn snapshot_schema(self) -> &'static SchemaRef {
        match self {
            Side::Declared => &DECLARED_SCHEMA,
            Side::Observed => &OBSERVED_SCHEMA,
        }
    }

    fn history_schema(self) -> &'static SchemaRef {
        match self {
            Side::Declared => &DECLARED_HISTORY_SCHEMA,
            Side::Observed => &OBSERVED_HISTORY_SCHEMA,
        }
    }
}

/// Per row of a snapshot batch: its key, whether it says the resource is
/// deleted, its digest, its resource type and its tags.
pub struct RowFacts {
    pub keys: Vec<String>,
    pub deleted: Vec<bool>,
    pub digests: Vec<String>,
    resource_types: Vec<String>,
    tags: Vec<Vec<(String, String)>>,
}

/// What each row of a snapshot batch says, read from its columns (so a
/// scan's rows and the bus's decoded rows digest alike).
pub fn row_facts(side: Side, snapshot: &RecordBatch) -> Result<RowFacts, ArrowError> {
    use arrow::array::AsArray;
    let text = |name: &str| -> Result<&StringArray, ArrowError> {
        Ok(snapshot
            .column(snapshot.schema().index_of(name)?)
            .as_string::<i32>())
    };
    let n = snapshot.num_rows();
    let mut f = RowFacts {
        keys: Vec::with_capacity(n),
        deleted: Vec::with_capacity(n),
        digests: Vec::with_capacity(n),
        resource_types: Vec::with_capacity(n),
        tags: Vec::with_capacity(n),
    };
    match side {
        Side::Declared => {
            let (key, type_id, address, id, status, attributes, source) = (
                text("resource_key")?,
                text("type_id")?,
                text("address")?,
                text("id")?,
                text("status")?,
                text("attributes")?,
                text("source")?,
            );
            let deposed = snapshot
                .column(snapshot.schema().index_of("deposed")?)
                .as_boolean();
            for i in 0..n {
                // Types with no AWS Config counterpart are keyed by state and
                // address, as on the bus (`codec::declared_key`).
                f.keys.push(match value(key, i) {
                    "" => format!("tf/{}#{}", value(source, i), value(address, i)),
                    k => k.to_string(),
                });
                f.deleted.push(false);
                f.digests.push(digest_of(&[
                    value(address, i),
                    value(id, i),
                    value(status, i),
                    if deposed.value(i) { "deposed" } else { "" },
                    value(attributes, i),
                    value(source, i),
                ]));
                f.resource_types.push(
                    value(type_id, i)
                        .split('/')
                        .next()
                        .unwrap_or_default()
                        .to_string(),
                );
                f.tags.push(parse_tags(value(attributes, i), Some("tags")));
            }
        }
        Side::Observed => {
            let (key, status, name, arn, conf, supp, tags, source) = (
                text("resource_key")?,
                text("status")?,
                text("resource_name")?,
                text("arn")?,
                text("configuration")?,
                text("supplementary_configuration")?,
                text("tags")?,
                text("source")?,
            );
            for i in 0..n {
                f.keys.push(value(key, i).to_string());
                let s = value(status, i);
                f.deleted
                    .push(crate::model::ConfigStatus::parse(s).is_some_and(|s| s.is_deleted()));
                f.digests.push(digest_of(&[
                    s,
                    value(name, i),
                    value(arn, i),
                    value(conf, i),
                    value(supp, i),
                    value(tags, i),
                    value(source, i),
                ]));
                f.tags.push(parse_tags(value(tags, i), None));
            }
        }
    }
    Ok(f)
}

/// History rows: the snapshot rows `keep` selects (all when `None`), as
/// seen at `at_ms`, then a deletion for each key in `gone`.
pub fn history_batch(
    side: Side,
    snapshot: &RecordBatch,
    facts: &RowFacts,
    keep: Option<&[usize]>,
    gone: &[&str],
    at_ms: i64,
) -> Result<RecordBatch, ArrowError> {
    let all: Vec<usize>;
    let keep = match keep {
        Some(k) => k,
        None => {
            all = (0..snapshot.num_rows()).collect();
            &all
        }
    };
    let n = keep.len() + gone.len();
    let pick = |v: &[String]| -> Vec<String> { keep.iter().map(|&i| v[i].clone()).collect() };
    let mut keys = pick(&facts.keys);
    keys.extend(gone.iter().map(|k| k.to_string()));
    let mut deleted: Vec<bool> = keep.iter().map(|&i| facts.deleted[i]).collect();
    deleted.extend(vec![true; gone.len()]);
    let mut digests = pick(&facts.digests);
    digests.extend(vec![String::new(); gone.len()]);
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(next_versions(n, at_ms))),
        Arc::new(TimestampMillisecondArray::from(vec![at_ms; n]).with_timezone("+00:00")),
        Arc::new(StringArray::from_iter_values(&keys)),
        Arc::new(BooleanArray::from(deleted)),
        Arc::new(StringArray::from_iter_values(&digests)),
    ];
    if side == Side::Declared {
        let mut types = pick(&facts.resource_types);
        types.extend(gone.iter().map(|k| {
            crate::model::type_id_of_key(k)
                .and_then(|t| t.split('/').next())
                .unwrap_or_default()
                .to_string()
        }));
        columns.push(Arc::new(StringArray::from_iter_values(&types)));
    }
    let no_tags = Vec::new();
    let (k, v) = string_map_lists(
        keep.iter()
            .map(|&i| &facts.tags[i])
            .chain(std::iter::repeat_n(&no_tags, gone.len()))
            .map(|pairs| {
                pairs
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect()
            }),
    );
    columns.push(k);
    columns.push(v);
    let indices = arrow::array::UInt32Array::from_iter_values(keep.iter().map(|&i| i as u32));
    let tombstones = tombstone_columns(side.snapshot_schema(), gone);
    for (column, dead) in snapshot.columns().iter().zip(tombstones) {
        let kept = arrow::compute::take(column.as_ref(), &indices, None)?;
        columns.push(arrow::compute::concat(&[kept.as_ref(), dead.as_ref()])?);
    }
    RecordBatch::try_new(side.history_schema().clone(), columns)
}

/// The `alert_events` table: each step of an alert's life — `pending`,
/// `firing`, `resolved` (its state changed), `notified` (a receiver was
/// told it fires), `silenced` (a paged alert was acknowledged because
/// someone silenced it), `remediated` (a remediation hook ran and
/// succeeded).
pub static ALERT_EVENTS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let text = |name: &str| Field::new(name, DataType::Utf8, false);
    Arc::new(Schema::new(vec![
        Field::new("at", utc_ms(), false),
        Field::new("at_ms", DataType::Int64, false),
        text("event"),
        text("fingerprint"),
        text("alertname"),
        text("severity"),
        text("class"),
        text("team"),
        text("account"),
        text("resource_type"),
        text("receiver"),
        text("labels"),
    ]))
});

/// The `remediation_audit` table: every remediation proposal, approval and
/// run (the alerts crate's remediator writes it).
pub static REMEDIATION_AUDIT_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let text = |name: &str| Field::new(name, DataType::Utf8, false);
    Arc::new(Schema::new(vec![
        Field::new("at_ms", DataType::Int64, false),
        text("at"),
        text("proposal_id"),
        text("alert_fingerprint"),
        text("hook"),
        text("kind"),
        text("action"),
        text("actor"),
        text("command"),
        text("output"),
        Field::new("exit_code", DataType::Int32, true),
    ]))
});

/// One `alert_events` row.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertEventRow {
    pub at_ms: i64,
    pub event: &'static str,
    pub fingerprint: String,
    /// The alert's labels; `alertname`, `severity`, `class`, `team`,
    /// `account` and `resource_type` also get columns of their own.
    pub labels: std::collections::BTreeMap<String, String>,
    /// The integration told (`{receiver}/{kind}/{index}`), for `notified`
    /// and `silenced`.
    pub receiver: String,
}

pub fn alert_events_batch(rows: &[AlertEventRow]) -> Result<RecordBatch, ArrowError> {
    let label = |name: &'static str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| {
            r.labels.get(name).map(String::as_str).unwrap_or_default()
        })))
    };
    let at: Vec<i64> = rows.iter().map(|r| r.at_ms).collect();
    RecordBatch::try_new(
        ALERT_EVENTS_SCHEMA.clone(),
        vec![
            Arc::new(TimestampMillisecondArray::from(at.clone()).with_timezone("+00:00")),
            Arc::new(Int64Array::from(at)),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.event))),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.fingerprint.as_str()),
            )),
            label("alertname"),
            label("severity"),
            label("class"),
            label("team"),
            label("account"),
            label("resource_type"),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.receiver.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| {
                serde_json::to_string(&r.labels).unwrap_or_else(|_| "{}".into())
            }))),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_increase_within_a_millisecond() {
        let a = next_versions(3, 1_000);
        let b = next_versions(2, 1_000);
        assert!(a.windows(2).all(|w| w[1] > w[0]));
        assert!(b[0] > a[2], "{a:?} {b:?}");
    }

    #[test]
    fn tags_come_as_maps_or_key_value_lists() {
        let m = serde_json::json!({"team": "core", "env": "prod"});
        assert_eq!(tag_pairs(&m).len(), 2);
        let l = serde_json::json!([{"key": "team", "value": "core"}, {"Key": "x"}]);
        assert_eq!(
            tag_pairs(&l),
            vec![("team".into(), "core".into()), ("x".into(), String::new())]
        );
        assert!(tag_pairs(&serde_json::Value::Null).is_empty());
    }
}
