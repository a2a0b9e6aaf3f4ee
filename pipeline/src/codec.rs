//! How records look on the bus: one JSON object per message, readable with
//! any Kafka tool (`kcat -C -t driftline.config`), with a schema version
//! field `v`.
//!
//! Snapshot messages are rows of the table schemas (`schema.rs`) written by
//! arrow-json, nested documents as JSON text, so a batch of messages decodes
//! straight into an Arrow record batch with arrow-json's decoder — in bulk,
//! not record by record. A record that does not decode is found by
//! decoding the batch's messages one at a time, and goes to the dead
//! letters with the reason.

use arrow::array::{AsArray, BooleanArray, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, UInt32Type};
use arrow::error::ArrowError;
use arrow_json::ReaderBuilder;

use crate::bus::{BusError, DeadLetter, OutMessage, Record, Topic};
use crate::model::{
    DRIFT_DETECTOR, DeclaredResource, FindingEvent, ObservedResource, SCHEMA_VERSION,
    type_id_of_key,
};
use crate::schema::{declared_batch, observed_batch};
use crate::source_status::{SourceStatus, is_status_key};
use crate::telemetry::{BUCKETS, LogBatch, LogRecord, MetricBatch, prompb, series_id};

/// Bytes of a rejected payload kept in its dead letter.
pub(crate) const DEAD_PAYLOAD_MAX: usize = 64 * 1024;

/// Encodes collector records for `topic`.
pub fn encode_records(topic: Topic, records: &[Record]) -> Result<Vec<OutMessage>, BusError> {
    let mut out = Vec::with_capacity(records.len());
    let mut declared: Vec<&DeclaredResource> = Vec::new();
    let mut observed: Vec<&ObservedResource> = Vec::new();
    // Keep the records' order: flush a run of snapshots before anything else.
    let flush = |out: &mut Vec<OutMessage>,
                 declared: &mut Vec<&DeclaredResource>,
                 observed: &mut Vec<&ObservedResource>|
     -> Result<(), BusError> {
        if !declared.is_empty() {
            let lines = rows_as_json(&declared_batch(declared).map_err(enc)?)?;
            for (d, payload) in declared.drain(..).zip(lines) {
                let (key, shard) = declared_key(d);
                out.push(OutMessage {
                    topic,
                    key,
                    shard,
                    payload: Some(payload),
                    broadcast: false,
                });
            }
        }
        if !observed.is_empty() {
            let lines = rows_as_json(&observed_batch(observed).map_err(enc)?)?;
            for (o, payload) in observed.drain(..).zip(lines) {
                out.push(OutMessage {
                    topic,
                    key: o.resource_key.clone(),
                    shard: o.type_id.clone(),
                    payload: Some(payload),
                    broadcast: false,
                });
            }
        }
        Ok(())
    };
    for r in records {
        match r {
            Record::Declared(d) => declared.push(d),
            Record::Observed(o) => observed.push(o),
            Record::DeadLetter(d) => {
                flush(&mut out, &mut declared, &mut observed)?;
                out.push(OutMessage {
                    topic,
                    key: d.source.clone(),
                    shard: d.source.clone(),
                    payload: Some(encode_json(d)?),
                    broadcast: false,
                });
            }
            Record::Deleted { key } => {
                flush(&mut out, &mut declared, &mut observed)?;
                out.push(OutMessage {
                    topic,
                    key: key.clone(),
                    shard: type_id_of_key(key).unwrap_or(key).to_string(),
                    payload: None,
                    broadcast: is_status_key(key),
                });
            }
            Record::Metrics(batch) => {
                flush(&mut out, &mut declared, &mut observed)?;
                out.extend(encode_metrics(batch));
            }
            Record::Logs(batch) => {
                flush(&mut out, &mut declared, &mut observed)?;
                out.extend(encode_logs(batch)?);
            }
            Record::Status(s) => {
                flush(&mut out, &mut declared, &mut observed)?;
                let key = s.key();
                out.push(OutMessage {
                    topic,
                    shard: key.clone(),
                    key,
                    payload: Some(encode_json(s)?),
                    broadcast: true,
                });
            }
        }
    }
    flush(&mut out, &mut declared, &mut observed)?;
    Ok(out)
}

/// Key and shard of a declared snapshot. Types with no AWS Config
/// counterpart have no resource key; they are keyed by state and address.
pub fn declared_key(d: &DeclaredResource) -> (String, String) {
    if d.resource_key.is_empty() {
        let key = format!("tf/{}#{}", d.source, d.address);
        (key.clone(), key)
    } else {
        (d.resource_key.clone(), d.type_id.clone())
    }
}

fn enc(e: impl std::fmt::Display) -> BusError {
    BusError::Encode(e.to_string())
}

/// A serde record with the schema version first.
pub fn encode_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, BusError> {
    let body = serde_json::to_vec(value).map_err(enc)?;
    Ok(with_version(&body))
}

fn with_version(object: &[u8]) -> Vec<u8> {
    // `{…}` → `{"v":1,…}`; `{}` → `{"v":1}`.
    let head = format!("{{\"v\":{SCHEMA_VERSION}");
    let mut out = Vec::with_capacity(object.len() + head.len() + 1);
    out.extend_from_slice(head.as_bytes());
    let inner = &object[1..];
    if inner.first() != Some(&b'}') {
        out.push(b',');
    }
    out.extend_from_slice(inner);
    out
}

/// One JSON object per row of `batch`, each with the version field.
pub fn rows_as_json(batch: &RecordBatch) -> Result<Vec<Vec<u8>>, BusError> {
    let mut w = arrow_json::LineDelimitedWriter::new(Vec::with_capacity(batch.num_rows() * 512));
    w.write(batch).map_err(enc)?;
    w.finish().map_err(enc)?;
    let text = w.into_inner();
    Ok(text
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(with_version)
        .collect())
}

/// The result of decoding a batch of snapshot messages.
pub struct Decoded {
    /// The accepted rows, in input order, without the version column.
    pub batch: RecordBatch,
    /// Input index of each row of `batch`.
    pub rows: Vec<usize>,
    /// Input index and reason of each rejected message.
    pub rejected: Vec<(usize, String)>,
}

fn wire_schema(schema: &SchemaRef) -> SchemaRef {
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("v", DataType::UInt32, false));
    std::sync::Arc::new(Schema::new(fields))
}

fn decode_all(wire: &SchemaRef, payloads: &[&[u8]]) -> Result<RecordBatch, ArrowError> {
    let mut decoder = ReaderBuilder::new(wire.clone())
        .with_batch_size(payloads.len().max(1))
        .build_decoder()?;
    for p in payloads {
        let mut buf: &[u8] = p;
        while !buf.is_empty() {
            let read = decoder.decode(buf)?;
            if read == 0 {
                break;
            }
            buf = &buf[read..];
        }
    }
    Ok(decoder
        .flush()?
        .unwrap_or_else(|| RecordBatch::new_empty(wire.clone())))
}

/// Decodes snapshot payloads against a table schema, in bulk.
pub fn decode_table(schema: &SchemaRef, payloads: &[&[u8]]) -> Decoded {
    let wire = wire_schema(schema);
    let mut rejected = Vec::new();
    let (batch, rows) = match decode_all(&wire, payloads) {
        Ok(b) if b.num_rows() == payloads.len() => (b, (0..payloads.len()).collect::<Vec<_>>()),
        _ => {
            // Someone in this batch is bad: find who, decode the rest.
            let mut good: Vec<&[u8]> = Vec::with_capacity(payloads.len());
            let mut rows = Vec::with_capacity(payloads.len());
            for (i, p) in payloads.iter().enumerate() {
                match decode_all(&wire, &[p]) {
                    Ok(b) if b.num_rows() == 1 => {
                        good.push(p);
                        rows.push(i);
                    }
                    Ok(b) => rejected.push((
                        i,
                        format!("expected one JSON object, found {}", b.num_rows()),
                    )),
                    Err(e) => rejected.push((i, format!("not a valid record: {e}"))),
                }
            }
            match decode_all(&wire, &good) {
                Ok(b) => (b, rows),
                Err(e) => {
                    // Cannot happen (each decoded alone); reject all rather than guess.
                    rejected.extend(rows.drain(..).map(|i| (i, e.to_string())));
                    (RecordBatch::new_empty(wire.clone()), Vec::new())
                }
            }
        }
    };
    // Version check, then drop the version column.
    let v_idx = batch.num_columns() - 1;
    let versions = batch.column(v_idx).as_primitive::<UInt32Type>();
    let keep: BooleanArray = (0..batch.num_rows())
        .map(|r| Some(versions.value(r) == SCHEMA_VERSION))
        .collect();
    let mut kept_rows = Vec::with_capacity(rows.len());
    for (r, i) in rows.into_iter().enumerate() {
        if keep.value(r) {
            kept_rows.push(i);
        } else {
            rejected.push((
                i,
                format!(
                    "unsupported schema version {} (this driftline reads {SCHEMA_VERSION})",
                    versions.value(r)
                ),
            ));
        }
    }
    let filtered = if keep.true_count() == keep.len() {
        batch
    } else {
        filter_record_batch(&batch, &keep).unwrap_or_else(|_| RecordBatch::new_empty(wire.clone()))
    };
    let projection: Vec<usize> = (0..v_idx).collect();
    let batch = filtered
        .project(&projection)
        .and_then(|b| b.with_schema(schema.clone()))
        .unwrap_or_else(|_| RecordBatch::new_empty(schema.clone()));
    rejected.sort_by_key(|(i, _)| *i);
    Decoded {
        batch,
        rows: kept_rows,
        rejected,
    }
}

/// Decodes a source status message.
pub fn decode_status(payload: &[u8]) -> Result<SourceStatus, String> {
    #[derive(serde::Deserialize)]
    struct Versioned {
        v: u32,
        #[serde(flatten)]
        status: SourceStatus,
    }
    let s: Versioned =
        serde_json::from_slice(payload).map_err(|e| format!("not a source status: {e}"))?;
    if s.v != SCHEMA_VERSION {
        return Err(format!(
            "unsupported schema version {} (this driftline reads {SCHEMA_VERSION})",
            s.v
        ));
    }
    Ok(s.status)
}

/// Decodes one finding event.
pub fn decode_finding_event(payload: &[u8]) -> Result<FindingEvent, String> {
    let ev: FindingEvent =
        serde_json::from_slice(payload).map_err(|e| format!("not a finding event: {e}"))?;
    if ev.v != SCHEMA_VERSION {
        return Err(format!(
            "unsupported schema version {} (this driftline reads {SCHEMA_VERSION})",
            ev.v
        ));
    }
    Ok(ev)
}

/// Encodes a finding event (it already carries `v`). A drift finding is
/// sharded like its resource's snapshots (by type id), so the instance that
/// owns the resource reads its findings back when it takes it over; the
/// rest by fingerprint. Either way one fingerprint's events stay in order.
pub fn encode_finding_event(ev: &FindingEvent) -> Result<OutMessage, BusError> {
    let f = &ev.finding;
    let shard = match type_id_of_key(&f.resource_key) {
        Some(type_id) if f.detector == DRIFT_DETECTOR => type_id.to_string(),
        _ => f.fingerprint.clone(),
    };
    Ok(OutMessage {
        topic: Topic::Findings,
        key: f.fingerprint.clone(),
        shard,
        payload: Some(serde_json::to_vec(ev).map_err(enc)?),
        broadcast: false,
    })
}

/// A dead letter for a message read from `topic` that could not be used.
pub fn dead_letter_for(
    topic: Topic,
    partition: i32,
    offset: i64,
    key: Option<&str>,
    payload: Option<&[u8]>,
    reason: &str,
) -> Result<OutMessage, BusError> {
    let dl = DeadLetter {
        source: topic.name().to_string(),
        reason: reason.to_string(),
        partition: Some(partition),
        offset: Some(offset),
        key: key.map(str::to_string),
        // Bytes no collector read: another tool's, maybe with secrets.
        payload: payload.map(|p| crate::secrets::shown_bytes(p, DEAD_PAYLOAD_MAX)),
    };
    let key = key.unwrap_or(topic.name()).to_string();
    Ok(OutMessage {
        topic: Topic::DeadLetters,
        key: key.clone(),
        shard: key,
        payload: Some(encode_json(&dl)?),
        broadcast: false,
    })
}

/// The bucket of a series or service hash: a message key's suffix, and so
/// its partition.
fn bucket_of(hash: u64) -> u64 {
    hash % BUCKETS
}

/// The messages a batch of series becomes: one `WriteRequest` per bucket.
pub fn encode_metrics(batch: &MetricBatch) -> Vec<OutMessage> {
    let mut buckets: Vec<Vec<&prompb::TimeSeries>> = vec![Vec::new(); BUCKETS as usize];
    for s in &batch.series {
        buckets[bucket_of(series_id(&s.labels)) as usize].push(s);
    }
    let mut out = Vec::new();
    for (b, series) in buckets.iter().enumerate() {
        for chunk in series.chunks(MAX_PER_MESSAGE) {
            // A WriteRequest is its series as field 1, one after another:
            // encoded from the borrowed series, with no copy of them.
            let mut payload = Vec::new();
            for ts in chunk {
                prost::encoding::message::encode(1, *ts, &mut payload);
            }
            out.push(OutMessage {
                topic: Topic::Metrics,
                key: format!("{}/{b}", batch.source),
                shard: format!("series/{b}"),
                payload: Some(payload),
                broadcast: false,
            });
        }
    }
    out
}

/// Most series (or log records) one telemetry message carries, so a large
/// push stays well under a Kafka broker's message size limit.
const MAX_PER_MESSAGE: usize = 2000;

/// The messages a batch of log records becomes: one per service bucket.
pub fn encode_logs(batch: &LogBatch) -> Result<Vec<OutMessage>, BusError> {
    // `LogBatch`'s JSON, from borrowed records.
    #[derive(serde::Serialize)]
    struct Batch<'a> {
        source: &'a str,
        records: &'a [&'a LogRecord],
    }
    let mut buckets: Vec<Vec<&LogRecord>> = vec![Vec::new(); BUCKETS as usize];
    for r in &batch.records {
        let h = xxhash_rust::xxh64::xxh64(r.service_name.as_bytes(), 0);
        buckets[bucket_of(h) as usize].push(r);
    }
    let mut out = Vec::new();
    for (b, records) in buckets.into_iter().enumerate() {
        for chunk in records.chunks(MAX_PER_MESSAGE) {
            let payload = serde_json::to_vec(&Batch {
                source: &batch.source,
                records: chunk,
            })
            .map_err(|e| BusError::Encode(e.to_string()))?;
            out.push(OutMessage {
                topic: Topic::Logs,
                key: format!("{}/{b}", batch.source),
                shard: format!("logs/{b}"),
                payload: Some(payload),
                broadcast: false,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ConfigStatus, InstanceStatus, ResourceMode};
    use crate::schema::{DECLARED_SCHEMA, OBSERVED_SCHEMA};

    fn declared(id: &str) -> DeclaredResource {
        DeclaredResource {
            resource_key: format!("aws/-/-/AWS::S3::Bucket/{id}"),
            type_id: format!("AWS::S3::Bucket/{id}"),
            account: "-".into(),
            region: "-".into(),
            address: format!("aws_s3_bucket.b[\"{id}\"]"),
            mode: ResourceMode::Managed,
            tf_type: "aws_s3_bucket".into(),
            provider: "registry.terraform.io/hashicorp/aws".into(),
            id: Some(id.into()),
            index_key: None,
            status: InstanceStatus::Ready,
            deposed: None,
            attributes: r#"{"bucket":"x","tags":{"a":"b"}}"#.into(),
            sensitive_paths: vec![],
            source: "s.tfstate".into(),
            serial: 3,
            lineage: "l".into(),
            observed_at: 5,
            cut: None,
        }
    }

    fn observed(id: &str) -> ObservedResource {
        ObservedResource {
            resource_key: format!("aws/1/us-east-1/AWS::S3::Bucket/{id}"),
            type_id: format!("AWS::S3::Bucket/{id}"),
            account: "1".into(),
            region: "us-east-1".into(),
            resource_type: "AWS::S3::Bucket".into(),
            resource_id: id.into(),
            resource_name: None,
            arn: Some(format!("arn:aws:s3:::{id}")),
            status: ConfigStatus::Ok,
            captured_at: Some(7),
            configuration_state_id: None,
            configuration: serde_json::json!({"name": id}),
            supplementary_configuration: serde_json::json!({}),
            tags: serde_json::json!({}),
            relationships: serde_json::json!([]),
            summary_only: false,
            source: "o.json".into(),
        }
    }

    #[test]
    fn snapshots_round_trip_through_json_in_bulk() {
        let recs = vec![
            Record::Declared(Box::new(declared("a"))),
            Record::Declared(Box::new(declared("b"))),
        ];
        let msgs = encode_records(Topic::Declared, &recs).unwrap();
        assert_eq!(msgs.len(), 2);
        let text = std::str::from_utf8(msgs[0].payload.as_ref().unwrap()).unwrap();
        assert!(
            text.starts_with(r#"{"v":1,"resource_key":"aws/-/-/AWS::S3::Bucket/a""#),
            "{text}"
        );
        assert_eq!(msgs[0].shard, "AWS::S3::Bucket/a");
        let payloads: Vec<&[u8]> = msgs.iter().map(|m| m.payload.as_deref().unwrap()).collect();
        let d = decode_table(&DECLARED_SCHEMA, &payloads);
        assert!(d.rejected.is_empty());
        assert_eq!(d.batch.num_rows(), 2);
        assert_eq!(
            d.batch,
            declared_batch(&[&declared("a"), &declared("b")]).unwrap()
        );

        let o =
            encode_records(Topic::Config, &[Record::Observed(Box::new(observed("c")))]).unwrap();
        let d = decode_table(&OBSERVED_SCHEMA, &[o[0].payload.as_deref().unwrap()]);
        assert_eq!(d.batch, observed_batch(&[&observed("c")]).unwrap());
    }

    #[test]
    fn bad_messages_are_rejected_with_reasons_and_the_rest_kept() {
        let msgs = encode_records(
            Topic::Declared,
            &[
                Record::Declared(Box::new(declared("a"))),
                Record::Declared(Box::new(declared("b"))),
            ],
        )
        .unwrap();
        let good_a = msgs[0].payload.as_deref().unwrap();
        let good_b = msgs[1].payload.as_deref().unwrap();
        let old = String::from_utf8(good_b.to_vec())
            .unwrap()
            .replacen(r#""v":1"#, r#""v":9"#, 1);
        let payloads: Vec<&[u8]> = vec![
            good_a,
            b"{not json",
            br#"{"v":1,"resource_key":"k"}"#,
            old.as_bytes(),
            good_b,
        ];
        let d = decode_table(&DECLARED_SCHEMA, &payloads);
        assert_eq!(d.rows, vec![0, 4]);
        assert_eq!(d.batch.num_rows(), 2);
        let reasons: Vec<_> = d.rejected.iter().map(|(i, r)| (*i, r.as_str())).collect();
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert_eq!(reasons[0].0, 1);
        assert!(reasons[0].1.starts_with("not a valid record"));
        assert_eq!(reasons[1].0, 2);
        assert!(
            reasons[2].1.contains("unsupported schema version 9"),
            "{reasons:?}"
        );
    }

    #[test]
    fn tombstones_and_dead_letters() {
        let msgs = encode_records(
            Topic::Config,
            &[Record::Deleted {
                key: "aws/1/r/AWS::SQS::Queue/q".into(),
            }],
        )
        .unwrap();
        assert_eq!(msgs[0].payload, None);
        assert_eq!(msgs[0].shard, "AWS::SQS::Queue/q");
        let dl = dead_letter_for(Topic::Config, 2, 40, Some("k"), Some(b"{oops"), "bad").unwrap();
        let v: serde_json::Value = serde_json::from_slice(dl.payload.as_deref().unwrap()).unwrap();
        assert_eq!(v["v"], 1);
        assert_eq!(v["source"], "driftline.config");
        assert_eq!(v["partition"], 2);
        assert_eq!(v["offset"], 40);
        assert_eq!(v["payload"], "{oops");
        assert_eq!(v["reason"], "bad");
    }

    #[test]
    fn a_series_stays_in_one_bucket_and_stale_markers_survive() {
        let series = |job: &str, v: f64| prompb::TimeSeries {
            labels: vec![
                prompb::Label::new("__name__", "up"),
                prompb::Label::new("job", job),
            ],
            samples: vec![prompb::Sample {
                value: v,
                timestamp: 1,
            }],
            ..Default::default()
        };
        let batch = MetricBatch {
            source: "scrape".into(),
            series: (0..100)
                .map(|i| series(&format!("j{i}"), crate::telemetry::stale_nan()))
                .collect(),
        };
        let out = encode_metrics(&batch);
        assert!(out.len() > 1 && out.len() <= BUCKETS as usize);
        let again = encode_metrics(&batch);
        assert_eq!(
            out.iter().map(|m| &m.key).collect::<Vec<_>>(),
            again.iter().map(|m| &m.key).collect::<Vec<_>>()
        );
        let mut n = 0;
        for m in &out {
            assert_eq!(crate::telemetry::source_of_key(Some(&m.key)), "scrape");
            let req = crate::telemetry::decode_metrics(m.payload.as_deref().unwrap()).unwrap();
            for s in req.timeseries {
                assert!(crate::telemetry::is_stale_nan(s.samples[0].value));
                n += 1;
            }
        }
        assert_eq!(n, 100);
        assert!(crate::telemetry::decode_metrics(b"\xff\xff").is_err());
    }
}
