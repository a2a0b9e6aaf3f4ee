//! OTLP log records as the store's `log_records` rows: the OpenTelemetry
//! log data model kept as it is (time, observed time, severity text and
//! number, body, attributes, resource, trace and span ids, scope), with
//! `service.name` as the service and secret-looking attribute values
//! hashed. A body that is not a string is kept as JSON text.

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};

use driftline_pipeline::telemetry::{LogBatch, LogRecord};

use super::{Encoding, SOURCE, any_value_text, attribute_pairs, decode, service_name};
use crate::push::{Ingest, PushError};

pub(super) fn take(
    ingest: &Ingest,
    encoding: Encoding,
    raw: &[u8],
) -> Result<ExportLogsServiceResponse, PushError> {
    let req: ExportLogsServiceRequest = decode(encoding, raw)?;
    ingest.publish_logs(SOURCE, log_batch(&req, driftline_pipeline::now_ms()))?;
    Ok(ExportLogsServiceResponse {
        partial_success: None,
    })
}

fn hex(bytes: &[u8]) -> String {
    if bytes.iter().all(|b| *b == 0) {
        return String::new();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The records of a request.
pub fn log_batch(req: &ExportLogsServiceRequest, now_ms: i64) -> LogBatch {
    let mut records = Vec::new();
    for rl in &req.resource_logs {
        let resource_attrs = rl.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
        let service = service_name(resource_attrs);
        let resource = attribute_pairs(resource_attrs);
        for sl in &rl.scope_logs {
            let scope = sl
                .scope
                .as_ref()
                .map(|s| s.name.clone())
                .unwrap_or_default();
            for r in &sl.log_records {
                let observed = match r.observed_time_unix_nano {
                    0 => now_ms,
                    n => (n / 1_000_000) as i64,
                };
                let timestamp = match r.time_unix_nano {
                    0 => observed,
                    n => (n / 1_000_000) as i64,
                };
                records.push(LogRecord {
                    timestamp_ms: timestamp,
                    observed_ms: observed,
                    service_name: service.clone(),
                    severity_text: r.severity_text.clone(),
                    severity_number: r.severity_number,
                    body: crate::secrets::mask_text(any_value_text(r.body.as_ref())),
                    attributes: attribute_pairs(&r.attributes),
                    resource: resource.clone(),
                    trace_id: hex(&r.trace_id),
                    span_id: hex(&r.span_id),
                    scope_name: scope.clone(),
                });
            }
        }
    }
    LogBatch {
        source: SOURCE.into(),
        records,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otlp_json_logs_keep_the_data_model() {
        let json = r#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}}]},
            "scopeLogs":[{"scope":{"name":"app"},"logRecords":[{"timeUnixNano":"1700000000123000000","severityNumber":17,
            "severityText":"ERROR","body":{"stringValue":"payment failed"},
            "attributes":[{"key":"db.password","value":{"stringValue":"hunter2"}},{"key":"order","value":{"intValue":"42"}}],
            "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174"}]}]}]}"#;
        let req: ExportLogsServiceRequest = decode(Encoding::Json, json.as_bytes()).unwrap();
        let b = log_batch(&req, 5);
        let r = &b.records[0];
        assert_eq!(r.service_name, "checkout");
        assert_eq!(r.timestamp_ms, 1_700_000_000_123);
        assert_eq!(r.observed_ms, 5);
        assert_eq!((r.severity_number, r.body.as_str()), (17, "payment failed"));
        assert_eq!(r.trace_id, "5b8efff798038103d269b633813fc60c");
        assert_eq!(r.span_id, "eee19b7ec3c1b174");
        assert_eq!(r.attributes[1], ("order".into(), "42".into()));
        assert!(!r.attributes[0].1.contains("hunter2"));
        assert_eq!(r.scope_name, "app");
    }
}
