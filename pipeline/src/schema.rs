//! Arrow schemas of the snapshot tables and the conversions into record
//! batches. Nested values travel as JSON text columns: they are compared by
//! detectors with per-type rules, not queried column by column.

use std::sync::{Arc, LazyLock};

use arrow::array::{ArrayRef, BooleanBuilder, Int64Builder, StringBuilder, UInt64Builder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use crate::model::{DeclaredResource, ObservedResource};

fn utf8(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}

/// Schema of the `declared` table (Terraform state instances).
pub static DECLARED_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        utf8("resource_key", false),
        utf8("type_id", false),
        utf8("account", false),
        utf8("region", false),
        utf8("address", false),
        utf8("mode", false),
        utf8("tf_type", false),
        utf8("provider", false),
        utf8("id", true),
        utf8("status", false),
        Field::new("deposed", DataType::Boolean, false),
        utf8("attributes", false),
        utf8("source", false),
        Field::new("serial", DataType::UInt64, false),
        utf8("lineage", false),
        Field::new("observed_at", DataType::Int64, false),
    ]))
});

/// Schema of the `observed` table (AWS Config configuration items).
pub static OBSERVED_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        utf8("resource_key", false),
        utf8("type_id", false),
        utf8("account", false),
        utf8("region", false),
        utf8("resource_type", false),
        utf8("resource_id", false),
        utf8("resource_name", true),
        utf8("arn", true),
        utf8("status", false),
        Field::new("captured_at", DataType::Int64, true),
        utf8("configuration", false),
        utf8("supplementary_configuration", false),
        utf8("tags", false),
        Field::new("summary_only", DataType::Boolean, false),
        utf8("source", false),
    ]))
});

/// Builds one `declared` batch.
pub fn declared_batch(rows: &[&DeclaredResource]) -> Result<RecordBatch, ArrowError> {
    let n = rows.len();
    let mut key = StringBuilder::with_capacity(n, n * 64);
    let mut tid = StringBuilder::with_capacity(n, n * 48);
    let mut account = StringBuilder::with_capacity(n, n * 12);
    let mut region = StringBuilder::with_capacity(n, n * 10);
    let mut address = StringBuilder::with_capacity(n, n * 32);
    let mut mode = StringBuilder::with_capacity(n, n * 7);
    let mut tf_type = StringBuilder::with_capacity(n, n * 16);
    let mut provider = StringBuilder::with_capacity(n, n * 40);
    let mut id = StringBuilder::with_capacity(n, n * 20);
    let mut status = StringBuilder::with_capacity(n, n * 5);
    let mut deposed = BooleanBuilder::with_capacity(n);
    let mut attributes = StringBuilder::with_capacity(n, n * 512);
    let mut source = StringBuilder::with_capacity(n, n * 32);
    let mut serial = UInt64Builder::with_capacity(n);
    let mut lineage = StringBuilder::with_capacity(n, n * 36);
    let mut observed_at = Int64Builder::with_capacity(n);
    for r in rows {
        key.append_value(&r.resource_key);
        tid.append_value(&r.type_id);
        account.append_value(&r.account);
        region.append_value(&r.region);
        address.append_value(&r.address);
        mode.append_value(r.mode.as_str());
        tf_type.append_value(&r.tf_type);
        provider.append_value(&r.provider);
        id.append_option(r.id.as_deref());
        status.append_value(r.status.as_str());
        deposed.append_value(r.deposed.is_some());
        attributes.append_value(&r.attributes);
        source.append_value(&r.source);
        serial.append_value(r.serial);
        lineage.append_value(&r.lineage);
        observed_at.append_value(r.observed_at);
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(key.finish()),
        Arc::new(tid.finish()),
        Arc::new(account.finish()),
        Arc::new(region.finish()),
        Arc::new(address.finish()),
        Arc::new(mode.finish()),
        Arc::new(tf_type.finish()),
        Arc::new(provider.finish()),
        Arc::new(id.finish()),
        Arc::new(status.finish()),
        Arc::new(deposed.finish()),
        Arc::new(attributes.finish()),
        Arc::new(source.finish()),
        Arc::new(serial.finish()),
        Arc::new(lineage.finish()),
        Arc::new(observed_at.finish()),
    ];
    RecordBatch::try_new(DECLARED_SCHEMA.clone(), cols)
}

/// Builds one `observed` batch.
pub fn observed_batch(rows: &[&ObservedResource]) -> Result<RecordBatch, ArrowError> {
    let n = rows.len();
    let mut key = StringBuilder::with_capacity(n, n * 64);
    let mut tid = StringBuilder::with_capacity(n, n * 48);
    let mut account = StringBuilder::with_capacity(n, n * 12);
    let mut region = StringBuilder::with_capacity(n, n * 10);
    let mut rtype = StringBuilder::with_capacity(n, n * 24);
    let mut rid = StringBuilder::with_capacity(n, n * 20);
    let mut rname = StringBuilder::with_capacity(n, n * 20);
    let mut arn = StringBuilder::with_capacity(n, n * 48);
    let mut status = StringBuilder::with_capacity(n, n * 2);
    let mut captured = Int64Builder::with_capacity(n);
    let mut conf = StringBuilder::with_capacity(n, n * 512);
    let mut supp = StringBuilder::with_capacity(n, n * 16);
    let mut tags = StringBuilder::with_capacity(n, n * 32);
    let mut summary_only = BooleanBuilder::with_capacity(n);
    let mut source = StringBuilder::with_capacity(n, n * 32);
    let mut buf = Vec::with_capacity(1024);
    let mut json = |b: &mut StringBuilder, v: &serde_json::Value| -> Result<(), ArrowError> {
        buf.clear();
        serde_json::to_writer(&mut buf, v).map_err(|e| ArrowError::ExternalError(Box::new(e)))?;
        b.append_value(std::str::from_utf8(&buf).unwrap_or_default());
        Ok(())
    };
    for r in rows {
        key.append_value(&r.resource_key);
        tid.append_value(&r.type_id);
        account.append_value(&r.account);
        region.append_value(&r.region);
        rtype.append_value(&r.resource_type);
        rid.append_value(&r.resource_id);
        rname.append_option(r.resource_name.as_deref());
        arn.append_option(r.arn.as_deref());
        status.append_value(r.status.as_str());
        captured.append_option(r.captured_at);
        json(&mut conf, &r.configuration)?;
        json(&mut supp, &r.supplementary_configuration)?;
        json(&mut tags, &r.tags)?;
        summary_only.append_value(r.summary_only);
        source.append_value(&r.source);
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(key.finish()),
        Arc::new(tid.finish()),
        Arc::new(account.finish()),
        Arc::new(region.finish()),
        Arc::new(rtype.finish()),
        Arc::new(rid.finish()),
        Arc::new(rname.finish()),
        Arc::new(arn.finish()),
        Arc::new(status.finish()),
        Arc::new(captured.finish()),
        Arc::new(conf.finish()),
        Arc::new(supp.finish()),
        Arc::new(tags.finish()),
        Arc::new(summary_only.finish()),
        Arc::new(source.finish()),
    ];
    RecordBatch::try_new(OBSERVED_SCHEMA.clone(), cols)
}

/// Schema of the `finding_events` table.
pub static FINDING_EVENTS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        utf8("event", false),
        utf8("timestamp", false),
        utf8("fingerprint", false),
        utf8("detector", false),
        utf8("class", false),
        utf8("resource_key", false),
        utf8("resource_type", false),
        utf8("resource_id", false),
        utf8("tf_type", true),
        utf8("address", true),
        utf8("source", true),
        utf8("account", false),
        utf8("region", false),
        utf8("summary", false),
        utf8("diffs", false),
        utf8("remediation", false),
        // Added later (nullable, so files written before read as null):
        // the event's time as a typed column for time filters, in ms for
        // arithmetic, and the resource's tags for per-team figures.
        Field::new("at", utc_ms(), true),
        Field::new("at_ms", DataType::Int64, true),
        string_list("tag_keys"),
        string_list("tag_values"),
    ]))
});

/// Milliseconds since the epoch, in UTC: the stores' time columns.
pub fn utc_ms() -> DataType {
    DataType::Timestamp(
        arrow::datatypes::TimeUnit::Millisecond,
        Some("+00:00".into()),
    )
}

/// A nullable list of strings (tag keys or values, parallel arrays).
pub fn string_list(name: &str) -> Field {
    Field::new(
        name,
        DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
        true,
    )
}

/// Parallel key and value lists of string maps, one entry per row.
pub fn string_map_lists<'a>(
    rows: impl Iterator<Item = Vec<(&'a str, &'a str)>>,
) -> (ArrayRef, ArrayRef) {
    use arrow::array::ListBuilder;
    let mut keys = ListBuilder::new(StringBuilder::new());
    let mut values = ListBuilder::new(StringBuilder::new());
    for pairs in rows {
        for (k, v) in pairs {
            keys.values().append_value(k);
            values.values().append_value(v);
        }
        keys.append(true);
        values.append(true);
    }
    (Arc::new(keys.finish()), Arc::new(values.finish()))
}

/// Builds one `finding_events` batch.
pub fn finding_events_batch(
    rows: &[crate::model::FindingEvent],
) -> Result<RecordBatch, ArrowError> {
    let n = rows.len();
    let mut cols: Vec<StringBuilder> = (0..16)
        .map(|_| StringBuilder::with_capacity(n, n * 32))
        .collect();
    for e in rows {
        let f = &e.finding;
        let values: [Option<String>; 16] = [
            Some(e.event.as_str().into()),
            Some(e.timestamp.clone()),
            Some(f.fingerprint.clone()),
            Some(f.detector.clone()),
            Some(f.class.as_str().into()),
            Some(f.resource_key.clone()),
            Some(f.resource_type.clone()),
            Some(f.resource_id.clone()),
            f.tf_type.clone(),
            f.address.clone(),
            f.source.clone(),
            Some(f.account.clone()),
            Some(f.region.clone()),
            Some(f.summary.clone()),
            Some(json_text(&f.diffs)),
            Some(json_text(&f.remediation)),
        ];
        for (b, v) in cols.iter_mut().zip(values) {
            b.append_option(v);
        }
    }
    let mut arrays: Vec<ArrayRef> = cols
        .into_iter()
        .map(|mut b| Arc::new(b.finish()) as ArrayRef)
        .collect();
    let at: Vec<Option<i64>> = rows
        .iter()
        .map(|e| crate::time::parse_iso8601_ms(&e.timestamp))
        .collect();
    arrays.push(Arc::new(
        arrow::array::TimestampMillisecondArray::from(at.clone()).with_timezone("+00:00"),
    ));
    arrays.push(Arc::new(arrow::array::Int64Array::from(at)));
    let (keys, values) = string_map_lists(rows.iter().map(|e| {
        e.finding
            .tags
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }));
    arrays.push(keys);
    arrays.push(values);
    RecordBatch::try_new(FINDING_EVENTS_SCHEMA.clone(), arrays)
}

/// Compact JSON text of a value that always serialises (model types).
fn json_text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

/// The store's `dead_letters` table: what was rejected, from where, why.
pub static DEAD_LETTERS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("at_ms", DataType::Int64, false),
        utf8("source", false),
        utf8("reason", false),
        Field::new("partition", DataType::Int32, true),
        Field::new("offset", DataType::Int64, true),
        utf8("key", true),
        utf8("payload", true),
    ]))
});

/// Builds one `dead_letters` batch, every row stamped `at_ms`.
pub fn dead_letters_batch(
    rows: &[crate::bus::DeadLetter],
    at_ms: i64,
) -> Result<RecordBatch, ArrowError> {
    use arrow::array::{Int32Array, Int64Array, StringArray};
    let text = |f: &dyn Fn(&crate::bus::DeadLetter) -> Option<&str>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<StringArray>())
    };
    RecordBatch::try_new(
        DEAD_LETTERS_SCHEMA.clone(),
        vec![
            Arc::new(Int64Array::from(vec![at_ms; rows.len()])),
            text(&|d| Some(d.source.as_str())),
            text(&|d| Some(d.reason.as_str())),
            Arc::new(rows.iter().map(|d| d.partition).collect::<Int32Array>()),
            Arc::new(rows.iter().map(|d| d.offset).collect::<Int64Array>()),
            text(&|d| d.key.as_deref()),
            text(&|d| d.payload.as_deref()),
        ],
    )
}
