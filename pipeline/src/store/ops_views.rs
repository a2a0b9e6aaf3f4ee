//! The operations views every store defines beside the FinOps ones
//! (`views.rs`), in DataFusion's and in ClickHouse's dialect:
//!
//! - `resources_declared`, `resources_observed`: each resource's latest
//!   version in its history table, unless that version deleted it;
//! - `alerts`: each alert's latest state (pending, firing, resolved);
//! - `finding_episodes`: each time a finding opened (`new`) and when it
//!   next resolved (null while open), with the owning team from its tags;
//! - `time_to_remediate`: per day of resolution, class, team, resource
//!   type and account, how many resolved and in how long (p50, p90);
//! - `drift_rate`: per day, account and resource type, the share of
//!   managed (declared) resources with a drift finding (changed or
//!   missing) open that day;
//! - `alert_outcomes`: each paged alert (a receiver was told it fires) and
//!   what ended it — `remediated` by a hook, `silenced`, `resolved` by a
//!   change, or still `open` — with `actionable` = 1 when a remediation or
//!   a change ended it. `SELECT AVG(actionable) FROM alert_outcomes` is
//!   the actionable share.
//!
//! Percentiles differ by dialect: DataFusion's are t-digest estimates,
//! ClickHouse's `quantileExact`. For a time range of your own, aggregate
//! `finding_episodes` with your store's percentile function.

/// The events in which a drift finding is open (declared resources that
/// were edited, or are gone).
const DRIFT_CLASSES: &str = "('changed', 'missing')";

/// The latest non-deleted version of each key in `history`.
fn latest_datafusion(view: &str, history: &str) -> String {
    format!(
        "CREATE VIEW {view} AS SELECT h.* FROM {history} h \
         JOIN (SELECT key, MAX(version) AS latest FROM {history} GROUP BY key) l \
           ON h.key = l.key AND h.version = l.latest \
         WHERE NOT h.deleted"
    )
}

/// Orders an alert's state events of one millisecond: resolved after
/// firing after pending.
const STATE_ORDER_DF: &str =
    "at_ms * 4 + CASE event WHEN 'pending' THEN 0 WHEN 'firing' THEN 1 ELSE 2 END";
const STATE_ORDER_CH: &str = "at_ms * 4 + multiIf(event = 'pending', 0, event = 'firing', 1, 2)";

/// `team_tags`: the tag keys naming a resource's team (`[finops]`);
/// `first_tag` writes the lookup of the first present in a key/value list.
pub fn datafusion(
    team_tags: &[String],
    first_tag: &dyn Fn(&[String], &str, &str) -> String,
) -> Vec<String> {
    let team = first_tag(team_tags, "tag_keys", "tag_values");
    vec![
        latest_datafusion("resources_declared", super::tables::DECLARED_HISTORY),
        latest_datafusion("resources_observed", super::tables::OBSERVED_HISTORY),
        format!(
            "CREATE VIEW alerts AS \
             SELECT e.fingerprint, e.alertname, e.severity, e.class, e.team, e.account, \
                    e.resource_type, e.event AS state, e.at AS since, e.labels \
             FROM (SELECT *, {STATE_ORDER_DF} AS ord FROM alert_events \
                   WHERE event IN ('pending', 'firing', 'resolved')) e \
             JOIN (SELECT fingerprint, MAX({STATE_ORDER_DF}) AS latest FROM alert_events \
                   WHERE event IN ('pending', 'firing', 'resolved') GROUP BY fingerprint) l \
               ON e.fingerprint = l.fingerprint AND e.ord = l.latest"
        ),
        format!(
            "CREATE VIEW finding_episodes AS \
             SELECT fingerprint, detector, class, account, region, resource_type, resource_key, team, \
                    opened_at, opened_at_ms, to_timestamp_millis(resolved_at_ms) AS resolved_at, \
                    resolved_at_ms, (resolved_at_ms - opened_at_ms) / 1000.0 AS seconds_to_resolve \
             FROM (SELECT o.fingerprint, o.detector, o.class, o.account, o.region, o.resource_type, \
                          o.resource_key, o.team, o.opened_at, o.opened_at_ms, \
                          MIN(CASE WHEN r.at_ms >= o.opened_at_ms THEN r.at_ms END) AS resolved_at_ms \
                   FROM (SELECT fingerprint, detector, class, account, region, resource_type, \
                                resource_key, {team} AS team, at AS opened_at, at_ms AS opened_at_ms \
                         FROM finding_events WHERE event = 'new' AND at_ms IS NOT NULL) o \
                   LEFT JOIN (SELECT fingerprint, at_ms FROM finding_events \
                              WHERE event = 'resolved' AND at_ms IS NOT NULL) r \
                     ON o.fingerprint = r.fingerprint \
                   GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)"
        ),
        "CREATE VIEW time_to_remediate AS \
         SELECT date_trunc('day', resolved_at) AS day, class, team, resource_type, account, \
                COUNT(*) AS resolved, \
                approx_percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds_to_resolve) AS p50_seconds, \
                approx_percentile_cont(0.9) WITHIN GROUP (ORDER BY seconds_to_resolve) AS p90_seconds \
         FROM finding_episodes WHERE resolved_at_ms IS NOT NULL \
         GROUP BY 1, 2, 3, 4, 5"
            .to_string(),
        format!(
            "CREATE VIEW drift_rate AS \
             WITH days AS (SELECT unnest(generate_series(date_trunc('day', to_timestamp_millis(MIN(opened_at_ms))), \
                                                         date_trunc('day', now()), INTERVAL '1 day')) AS day \
                           FROM finding_episodes), \
                  managed AS (SELECT account, resource_type, COUNT(*) AS managed \
                              FROM resources_declared WHERE resource_type <> '' GROUP BY 1, 2), \
                  drifted AS (SELECT d.day, e.account, e.resource_type, \
                                     COUNT(DISTINCT e.resource_key) AS drifted \
                              FROM days d JOIN finding_episodes e \
                                ON e.opened_at_ms < (to_unixtime(d.day) + 86400) * 1000 \
                               AND (e.resolved_at_ms IS NULL OR e.resolved_at_ms >= to_unixtime(d.day) * 1000) \
                              WHERE e.class IN {DRIFT_CLASSES} GROUP BY 1, 2, 3) \
             SELECT d.day, m.account, m.resource_type, m.managed, COALESCE(x.drifted, 0) AS drifted, \
                    CAST(COALESCE(x.drifted, 0) AS DOUBLE) / m.managed AS drift_rate \
             FROM days d CROSS JOIN managed m \
             LEFT JOIN drifted x \
               ON x.day = d.day AND x.account = m.account AND x.resource_type = m.resource_type"
        ),
        "CREATE VIEW alert_outcomes AS \
         SELECT *, CASE WHEN outcome IN ('resolved', 'remediated') THEN 1 ELSE 0 END AS actionable \
         FROM (SELECT fingerprint, MAX(alertname) AS alertname, MAX(severity) AS severity, \
                      MAX(class) AS class, MAX(team) AS team, MAX(account) AS account, \
                      MAX(resource_type) AS resource_type, \
                      to_timestamp_millis(MIN(CASE WHEN event = 'notified' THEN at_ms END)) AS paged_at, \
                      MIN(CASE WHEN event = 'notified' THEN at_ms END) AS paged_at_ms, \
                      CASE WHEN SUM(CASE WHEN event = 'remediated' THEN 1 ELSE 0 END) > 0 THEN 'remediated' \
                           WHEN SUM(CASE WHEN event = 'silenced' THEN 1 ELSE 0 END) > 0 THEN 'silenced' \
                           WHEN COALESCE(MAX(CASE WHEN event = 'resolved' THEN at_ms END), 0) \
                                >= COALESCE(MAX(CASE WHEN event IN ('pending', 'firing') THEN at_ms END), 0) \
                                AND MAX(CASE WHEN event = 'resolved' THEN at_ms END) IS NOT NULL THEN 'resolved' \
                           ELSE 'open' END AS outcome \
               FROM alert_events GROUP BY fingerprint \
               HAVING SUM(CASE WHEN event = 'notified' THEN 1 ELSE 0 END) > 0)"
            .to_string(),
    ]
}

/// The same views for ClickHouse, as (name, SELECT), within what 18.16
/// accepts: equality joins only (a range condition is a WHERE after an
/// `ALL INNER JOIN` on a constant), `-If` aggregates instead of CASE.
pub fn clickhouse(
    team_tags: &[String],
    first_tag: &dyn Fn(&[String], &str, &str) -> String,
) -> Vec<(&'static str, String)> {
    let team = first_tag(team_tags, "tag_keys", "tag_values");
    let latest = |history: &str| {
        format!(
            "SELECT * FROM {history} \
             WHERE (key, version) IN (SELECT key, max(version) FROM {history} GROUP BY key) \
               AND deleted = 0"
        )
    };
    let days = "SELECT arrayJoin(arrayMap(i -> toStartOfDay(toDateTime(intDiv(min_ms, 1000))) + i * 86400, \
                    range(toUInt32(intDiv(toUInt32(now()) - intDiv(min_ms, 1000), 86400) + 1)))) AS day, \
                    1 AS k \
                FROM (SELECT min(opened_at_ms) AS min_ms FROM finding_episodes HAVING count() > 0)";
    vec![
        ("resources_declared", latest(super::tables::DECLARED_HISTORY)),
        ("resources_observed", latest(super::tables::OBSERVED_HISTORY)),
        (
            "alerts",
            format!(
                "SELECT fingerprint, alertname, severity, class, team, account, resource_type, \
                        event AS state, at AS since, labels \
                 FROM alert_events \
                 WHERE event IN ('pending', 'firing', 'resolved') \
                   AND (fingerprint, {STATE_ORDER_CH}) IN \
                       (SELECT fingerprint, max({STATE_ORDER_CH}) FROM alert_events \
                        WHERE event IN ('pending', 'firing', 'resolved') GROUP BY fingerprint)"
            ),
        ),
        (
            "finding_episodes",
            format!(
                "SELECT fingerprint, detector, class, account, region, resource_type, resource_key, team, \
                        opened_at, opened_at_ms, \
                        if(isNull(resolved_at_ms), NULL, toDateTime(intDiv(assumeNotNull(resolved_at_ms), 1000))) AS resolved_at, \
                        resolved_at_ms, (resolved_at_ms - opened_at_ms) / 1000 AS seconds_to_resolve \
                 FROM (SELECT fingerprint, detector, class, account, region, resource_type, resource_key, team, \
                              opened_at, opened_at_ms, \
                              nullIf(minIf(r_ms, r_ms >= opened_at_ms), 0) AS resolved_at_ms \
                       FROM (SELECT fingerprint, detector, class, account, region, resource_type, \
                                    resource_key, {team} AS team, assumeNotNull(at) AS opened_at, \
                                    assumeNotNull(at_ms) AS opened_at_ms \
                             FROM finding_events WHERE event = 'new' AND at_ms IS NOT NULL) AS o \
                       ALL LEFT JOIN (SELECT fingerprint, assumeNotNull(at_ms) AS r_ms FROM finding_events \
                                      WHERE event = 'resolved' AND at_ms IS NOT NULL) AS r \
                       USING fingerprint \
                       GROUP BY fingerprint, detector, class, account, region, resource_type, \
                                resource_key, team, opened_at, opened_at_ms)"
            ),
        ),
        (
            "time_to_remediate",
            "SELECT toStartOfDay(assumeNotNull(resolved_at)) AS day, class, team, resource_type, account, \
                    count() AS resolved, \
                    quantileExact(0.5)(assumeNotNull(seconds_to_resolve)) AS p50_seconds, \
                    quantileExact(0.9)(assumeNotNull(seconds_to_resolve)) AS p90_seconds \
             FROM finding_episodes WHERE resolved_at_ms IS NOT NULL \
             GROUP BY day, class, team, resource_type, account"
                .to_string(),
        ),
        (
            "drift_rate",
            format!(
                "SELECT day, account, resource_type, managed, drifted, drifted / managed AS drift_rate \
                 FROM (SELECT day, account, resource_type, managed \
                       FROM ({days}) AS d \
                       ALL INNER JOIN (SELECT account, resource_type, count() AS managed, 1 AS k \
                                       FROM resources_declared WHERE resource_type != '' \
                                       GROUP BY account, resource_type) AS m USING k) AS dm \
                 ALL LEFT JOIN \
                      (SELECT day, account, resource_type, uniqExact(resource_key) AS drifted \
                       FROM ({days}) AS d \
                       ALL INNER JOIN (SELECT account, resource_type, resource_key, opened_at_ms, \
                                              resolved_at_ms, class, 1 AS k FROM finding_episodes) AS e USING k \
                       WHERE opened_at_ms < (toUInt32(day) + 86400) * 1000 \
                         AND (isNull(resolved_at_ms) OR resolved_at_ms >= toUInt32(day) * 1000) \
                         AND class IN {DRIFT_CLASSES} \
                       GROUP BY day, account, resource_type) AS x \
                 USING day, account, resource_type"
            ),
        ),
        (
            "alert_outcomes",
            "SELECT *, if(outcome IN ('resolved', 'remediated'), 1, 0) AS actionable \
             FROM (SELECT fingerprint, any(alertname) AS alertname, any(severity) AS severity, \
                          any(class) AS class, any(team) AS team, any(account) AS account, \
                          any(resource_type) AS resource_type, \
                          toDateTime(intDiv(minIf(at_ms, event = 'notified'), 1000)) AS paged_at, \
                          minIf(at_ms, event = 'notified') AS paged_at_ms, \
                          multiIf(countIf(event = 'remediated') > 0, 'remediated', \
                                  countIf(event = 'silenced') > 0, 'silenced', \
                                  maxIf(at_ms, event = 'resolved') > 0 \
                                    AND maxIf(at_ms, event = 'resolved') >= maxIf(at_ms, event IN ('pending', 'firing')), \
                                  'resolved', 'open') AS outcome \
                   FROM alert_events GROUP BY fingerprint HAVING countIf(event = 'notified') > 0)"
                .to_string(),
        ),
    ]
}
