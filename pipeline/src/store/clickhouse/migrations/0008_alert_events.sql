-- Each step of an alert's life: pending, firing, resolved, notified, silenced, remediated.
CREATE TABLE IF NOT EXISTS alert_events (
    `at` DateTime,
    `at_ms` Int64,
    `event` String,
    `fingerprint` String,
    `alertname` String,
    `severity` String,
    `class` String,
    `team` String,
    `account` String,
    `resource_type` String,
    `receiver` String,
    `labels` String,
    `driftline_batch` String DEFAULT ''
) ENGINE = MergeTree() ORDER BY (fingerprint, at_ms)
