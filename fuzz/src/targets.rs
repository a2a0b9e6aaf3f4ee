//! The targets' bodies. Each goes as far into the product as the input
//! would: a remote-write body is decoded, put on the bus's wire form, read
//! back as the store writer reads it and turned into table rows.

use std::sync::{Arc, LazyLock};

use driftline_collectors::aws_config::api::NotificationSettings;
use driftline_collectors::aws_config::notifications::NotificationReceiver;
use driftline_collectors::logs::{LineFormat, parse_line};
use driftline_collectors::otlp::{Encoding, decode, log_batch, metric_batch};
use driftline_collectors::prometheus::{exposition, remote_write};
use driftline_collectors::push::unsnappy;
use driftline_collectors::terraform::{Salt, TerraformConfig, load_state_bytes};
use driftline_collectors::{aws_config, cost};
use driftline_detectors::Mappings;
use driftline_detectors::drift::driftignore::DriftIgnore;
use driftline_detectors::slo::{promql::Query, spec};
use driftline_pipeline::bus::{BusError, RecordSink};
use driftline_pipeline::schema::{DECLARED_SCHEMA, OBSERVED_SCHEMA};
use driftline_pipeline::telemetry::tables::{LogRows, MetricRows};
use driftline_pipeline::{Record, Topic, TypeTable, codec, telemetry};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;

/// The name inputs are read under; every loader's error must carry it.
const SOURCE: &str = "fuzz-input";

static TYPES: LazyLock<Arc<TypeTable>> = LazyLock::new(|| {
    Arc::new(
        Mappings::builtin()
            .expect("the shipped mappings load")
            .type_table(),
    )
});

/// The form byte and the rest; an empty input has neither.
fn split_form(data: &[u8]) -> Option<(u8, &[u8])> {
    data.split_first().map(|(form, rest)| (*form, rest))
}

fn text(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(data)
}

fn assert_names_source(error: &dyn std::fmt::Display) {
    let message = error.to_string();
    assert!(
        message.contains(SOURCE),
        "an error that does not name its source: {message}"
    );
}

pub(crate) fn terraform_state(data: &[u8]) {
    static CONFIG: LazyLock<TerraformConfig> =
        LazyLock::new(|| TerraformConfig::new(TYPES.clone(), Salt::new(b"fuzz".to_vec())));
    if let Err(e) = load_state_bytes(data, SOURCE, &CONFIG) {
        assert_names_source(&e);
    }
}

pub(crate) fn aws_config_items(data: &[u8]) {
    if let Err(e) = aws_config::load_bytes(data, SOURCE, &TYPES) {
        assert_names_source(&e);
    }
}

/// A sink that takes everything: what a target publishes is not checked.
struct Discard;

impl RecordSink for Discard {
    fn publish(&self, _topic: Topic, _records: Vec<Record>) -> Result<(), BusError> {
        Ok(())
    }
}

pub(crate) fn aws_config_notification(data: &[u8]) {
    // No SubscribeURL host is allowed, so a confirmation is refused before
    // any call leaves the process.
    static RECEIVER: LazyLock<NotificationReceiver> = LazyLock::new(|| {
        let settings = NotificationSettings {
            subscribe_url_hosts: Vec::new(),
            ..NotificationSettings::default()
        };
        NotificationReceiver::new(settings, TYPES.clone(), None)
    });
    let _ = RECEIVER.handle(data, &Discard);
}

pub(crate) fn focus_csv(data: &[u8]) {
    let _ = cost::read_csv_bytes(data, SOURCE, &mut |_batch| Ok(()));
}

pub(crate) fn focus_parquet(data: &[u8]) {
    // The importer catches the parquet crate's panics on corrupt files and
    // answers an error (`cost::read_parquet`); the libFuzzer binary of this
    // target replaces the hook that would abort before they are caught.
    let _ = cost::read_parquet_bytes(data, SOURCE, &mut |_batch| Ok(()));
}

pub(crate) fn exposition(data: &[u8]) {
    let Some((form, body)) = split_form(data) else {
        return;
    };
    let format = if form & 1 == 0 {
        exposition::Format::Text
    } else {
        exposition::Format::OpenMetrics
    };
    let _ = exposition::parse(&text(body), format);
}

/// A metric batch as the store writer meets it: on the bus's wire form,
/// read in place and turned into `metric_samples` rows.
fn store_metrics(batch: &driftline_pipeline::telemetry::MetricBatch) {
    let mut rows = MetricRows::default();
    for message in codec::encode_metrics(batch) {
        let Some(payload) = message.payload else {
            continue;
        };
        let shared: Arc<[u8]> = payload.into();
        let read = telemetry::decode_metrics_shared(&shared)
            .expect("a message driftline encoded decodes again");
        rows.push_shared_request("fuzz", &read)
            .expect("labels driftline accepted are UTF-8");
    }
    rows.finish().expect("accepted samples make a batch");
}

pub(crate) fn remote_write(data: &[u8]) {
    let Some((form, body)) = split_form(data) else {
        return;
    };
    let raw = if form & 1 == 0 {
        match unsnappy(body) {
            Ok(raw) => raw,
            Err(_) => return,
        }
    } else {
        body.to_vec()
    };
    if let Ok(batch) = remote_write::decode(&raw) {
        store_metrics(&batch);
    }
}

fn encoding(form: u8) -> Encoding {
    if form & 1 == 0 {
        Encoding::Protobuf
    } else {
        Encoding::Json
    }
}

pub(crate) fn otlp_metrics(data: &[u8]) {
    let Some((form, body)) = split_form(data) else {
        return;
    };
    if let Ok(req) = decode::<ExportMetricsServiceRequest>(encoding(form), body) {
        let (batch, _rejected) = metric_batch(&req, 0);
        store_metrics(&batch);
    }
}

pub(crate) fn otlp_logs(data: &[u8]) {
    let Some((form, body)) = split_form(data) else {
        return;
    };
    if let Ok(req) = decode::<ExportLogsServiceRequest>(encoding(form), body) {
        store_logs(&log_batch(&req, 0));
    }
}

/// A log batch as the store writer meets it.
fn store_logs(batch: &telemetry::LogBatch) {
    let mut rows = LogRows::default();
    for message in codec::encode_logs(batch).expect("a log batch encodes") {
        let Some(payload) = message.payload else {
            continue;
        };
        let read = telemetry::decode_logs(&payload).expect("a message driftline encoded decodes");
        for record in &read.records {
            rows.push("fuzz", record);
        }
    }
    rows.finish().expect("accepted log records make a batch");
}

pub(crate) fn log_line(data: &[u8]) {
    static REGEX: LazyLock<LineFormat> = LazyLock::new(|| {
        LineFormat::Regex(
            regex::Regex::new(r"^(?P<time>\S+) (?P<level>\w+) (?P<msg>.*)$")
                .expect("the regex compiles"),
        )
    });
    let Some((form, line)) = split_form(data) else {
        return;
    };
    let format = match form % 3 {
        0 => &LineFormat::Json,
        1 => &LineFormat::Logfmt,
        _ => &*REGEX,
    };
    if let Ok(record) = parse_line(&text(line), format, "fuzz", 0) {
        store_logs(&telemetry::LogBatch {
            source: "fuzz".into(),
            records: vec![record],
        });
    }
}

pub(crate) fn slo_spec(data: &[u8]) {
    if let Err(errors) = spec::load_str(SOURCE, &text(data)) {
        for e in &errors {
            assert_names_source(e);
        }
    }
}

pub(crate) fn promql(data: &[u8]) {
    let _ = Query::parse(&text(data));
}

pub(crate) fn driftignore(data: &[u8]) {
    // The rules, then a NUL, then the path a resource and an attribute are
    // asked about.
    let input = text(data);
    let (rules, probe) = input
        .split_once('\0')
        .unwrap_or((&input, "aws_instance.web"));
    let ignore = DriftIgnore::parse(rules);
    let (tf_type, id) = probe.split_once('.').unwrap_or((probe, ""));
    let _ = ignore.ignores_resource(tf_type, id, Some(probe));
    let _ = ignore.ignores_attribute(tf_type, id, probe);
}

pub(crate) fn mapping_toml(data: &[u8]) {
    let mut mappings = Mappings::default();
    match mappings.add_text(SOURCE, &text(data), false) {
        Ok(()) => drop(mappings.type_table()),
        Err(e) => assert_names_source(&e),
    }
}

pub(crate) fn bus_snapshot(data: &[u8]) {
    let Some((form, payload)) = split_form(data) else {
        return;
    };
    let rejected = match form % 4 {
        0 => codec::decode_table(&DECLARED_SCHEMA, &[payload])
            .rejected
            .pop()
            .map(|(_, reason)| reason),
        1 => codec::decode_table(&OBSERVED_SCHEMA, &[payload])
            .rejected
            .pop()
            .map(|(_, reason)| reason),
        2 => codec::decode_status(payload).err(),
        _ => codec::decode_finding_event(payload).err(),
    };
    // What the stage runner makes of a message it cannot use: a dead letter
    // that shows the bytes with their secrets hashed.
    if let Some(reason) = rejected {
        codec::dead_letter_for(Topic::Config, 0, 0, Some("k"), Some(payload), &reason)
            .expect("a dead letter encodes");
    }
}

pub(crate) fn bus_telemetry(data: &[u8]) {
    let Some((form, payload)) = split_form(data) else {
        return;
    };
    if form & 1 == 0 {
        let shared: Arc<[u8]> = payload.into();
        if let Ok(read) = telemetry::decode_metrics_shared(&shared) {
            let mut rows = MetricRows::default();
            if rows.push_shared_request("fuzz", &read).is_ok() {
                rows.finish().expect("accepted samples make a batch");
            }
        }
    } else if let Ok(batch) = telemetry::decode_logs(payload) {
        let mut rows = LogRows::default();
        for record in &batch.records {
            rows.push("fuzz", record);
        }
        rows.finish().expect("accepted log records make a batch");
    }
}
