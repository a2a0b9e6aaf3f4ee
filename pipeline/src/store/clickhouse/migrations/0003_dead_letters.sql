-- Rejected input: where it came from and why.
CREATE TABLE IF NOT EXISTS dead_letters (
    `at_ms` Int64,
    `source` String,
    `reason` String,
    `partition` Nullable(Int32),
    `offset` Nullable(Int64),
    `key` Nullable(String),
    `payload` Nullable(String)
) ENGINE = MergeTree() ORDER BY (at_ms)
