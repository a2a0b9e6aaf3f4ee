-- Which append a row came in (the ClickHouse store's own bookkeeping): a
-- batch replayed from the spool after an outage is skipped when its rows
-- already landed, so nothing is written twice.
ALTER TABLE focus_data_table ADD COLUMN driftline_batch String DEFAULT '';
ALTER TABLE finding_events ADD COLUMN driftline_batch String DEFAULT '';
ALTER TABLE dead_letters ADD COLUMN driftline_batch String DEFAULT ''
