-- Every finding event (new, changed, resolved), as the findings writer and scan append them.
CREATE TABLE IF NOT EXISTS finding_events (
    `event` String,
    `timestamp` String,
    `fingerprint` String,
    `detector` String,
    `class` String,
    `resource_key` String,
    `resource_type` String,
    `resource_id` String,
    `tf_type` Nullable(String),
    `address` Nullable(String),
    `source` Nullable(String),
    `account` String,
    `region` String,
    `summary` String,
    `diffs` String,
    `remediation` String
) ENGINE = MergeTree() ORDER BY (fingerprint, timestamp)
