-- One row per metric sample (scrape, remote-write, OTLP); labels without __name__.
CREATE TABLE IF NOT EXISTS metric_samples (
    `metric_name` String,
    `label_keys` Array(String),
    `label_values` Array(String),
    `series_id` UInt64,
    `timestamp` DateTime,
    `timestamp_ms` Int64,
    `value` Float64,
    `stale` UInt8,
    `service_name` String,
    `source` String,
    `driftline_batch` String DEFAULT ''
) ENGINE = MergeTree() PARTITION BY toDate(timestamp) ORDER BY (metric_name, series_id, timestamp_ms);
-- One row per log record (files, OTLP), after the OpenTelemetry log data model.
CREATE TABLE IF NOT EXISTS log_records (
    `timestamp` DateTime,
    `timestamp_ms` Int64,
    `observed_timestamp_ms` Int64,
    `service_name` String,
    `severity_text` String,
    `severity_number` Int32,
    `body` String,
    `attribute_keys` Array(String),
    `attribute_values` Array(String),
    `resource_keys` Array(String),
    `resource_values` Array(String),
    `trace_id` String,
    `span_id` String,
    `scope_name` String,
    `source` String,
    `driftline_batch` String DEFAULT ''
) ENGINE = MergeTree() PARTITION BY toDate(timestamp) ORDER BY (service_name, timestamp_ms)
