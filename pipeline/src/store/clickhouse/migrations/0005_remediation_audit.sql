-- Every remediation proposal, approval and run (alerts/src/remediation).
CREATE TABLE IF NOT EXISTS remediation_audit (
    `at_ms` Int64,
    `at` String,
    `proposal_id` String,
    `alert_fingerprint` String,
    `hook` String,
    `kind` String,
    `action` String,
    `actor` String,
    `command` String,
    `output` String,
    `exit_code` Nullable(Int32),
    `driftline_batch` String DEFAULT ''
) ENGINE = MergeTree() ORDER BY (at_ms)
