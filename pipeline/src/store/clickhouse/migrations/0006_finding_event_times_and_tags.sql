-- The event's time as DateTime (time filters) and in ms (arithmetic), and
-- the resource's tags as parallel arrays (per-team figures).
ALTER TABLE finding_events ADD COLUMN `at` Nullable(DateTime);
ALTER TABLE finding_events ADD COLUMN `at_ms` Nullable(Int64);
ALTER TABLE finding_events ADD COLUMN `tag_keys` Array(String);
ALTER TABLE finding_events ADD COLUMN `tag_values` Array(String)
