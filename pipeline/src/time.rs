//! Times. Inside driftline a time is milliseconds since the epoch (UTC);
//! outside it is RFC 3339 with milliseconds (`2019-02-12T07:29:16.288Z`).
//! Every ISO 8601 text a source hands over — `T` or a space, with or
//! without fractions, `Z`, `+00:00` or `+0000`, or a bare date — is read
//! here and nowhere else.

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// `2019-02-12T07:29:16.288Z`.
pub fn format_epoch_ms(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// An ISO 8601 time → milliseconds since the epoch, or `None` when the
/// text is not one. A time without an offset is UTC.
pub fn parse_iso8601_ms(text: &str) -> Option<i64> {
    let t = text.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Some(d.timestamp_millis());
    }
    for with_offset in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(d) = DateTime::parse_from_str(t, with_offset) {
            return Some(d.timestamp_millis());
        }
    }
    for local in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(d) = NaiveDateTime::parse_from_str(t, local) {
            return Some(d.and_utc().timestamp_millis());
        }
    }
    let day = NaiveDate::parse_from_str(t, "%Y-%m-%d").ok()?;
    Some(day.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

/// Calls `pass` every `interval` until `stop` is set, sleeping in short
/// steps so a stop is seen within 50 ms. The first call comes one interval
/// in. Every polling loop (the collectors, the store's housekeeping) runs
/// on this one.
pub fn every(
    interval: std::time::Duration,
    stop: &std::sync::atomic::AtomicBool,
    mut pass: impl FnMut(),
) {
    use std::sync::atomic::Ordering;
    let step = std::time::Duration::from_millis(50);
    loop {
        let mut slept = std::time::Duration::ZERO;
        while slept < interval {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let nap = step.min(interval - slept);
            std::thread::sleep(nap);
            slept += nap;
        }
        if stop.load(Ordering::Relaxed) {
            return;
        }
        pass();
    }
}

/// A Prometheus-style duration: `0`, `500ms`, `30s`, `5m`, `4h`, `1h30m`,
/// `1d`, `1w`.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    if t == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    let mut total = 0u64;
    let mut rest = t;
    if rest.is_empty() {
        return Err("empty duration".into());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("{text:?}: expected a number, e.g. 30s, 5m, 4h"));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("{text:?}: number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let ms = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            u => return Err(format!("{text:?}: unknown unit {u:?} (ms, s, m, h, d, w)")),
        };
        total = n
            .checked_mul(ms)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("{text:?}: too long"))?;
        rest = &rest[unit_len..];
    }
    Ok(std::time::Duration::from_millis(total))
}

/// A calendar date and time of day in UTC → milliseconds since the epoch.
pub fn civil_ms(date: (i32, u32, u32), time: (u32, u32, u32), micros: u32) -> Option<i64> {
    let d = NaiveDate::from_ymd_opt(date.0, date.1, date.2)?;
    let t = d.and_hms_micro_opt(time.0, time.1, time.2, micros)?;
    Some(t.and_utc().timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_iso_shape_sources_write() {
        let t = 1_549_956_556_288;
        for text in [
            "2019-02-12T07:29:16.288Z",
            "2019-02-12t07:29:16.288z",
            "2019-02-12 07:29:16.288+00:00",
            "2019-02-12T08:29:16.288+0100",
            "2019-02-12T08:29:16.288+01:00",
            "2019-02-12T07:29:16.2880000Z",
            "2019-02-12T07:29:16.288",
            " 2019-02-12T07:29:16.288Z ",
        ] {
            assert_eq!(parse_iso8601_ms(text), Some(t), "{text}");
        }
        assert_eq!(
            parse_iso8601_ms("2014-02-27T21:43:53.0885+0000"),
            Some(1_393_537_433_088)
        );
        assert_eq!(
            parse_iso8601_ms("2019-02-12T08:29:16+01:00"),
            Some(1_549_956_556_000)
        );
        assert_eq!(parse_iso8601_ms("1970-01-01"), Some(0));
        for bad in ["yesterday", "2019-13-01", "2019-02-12T25:00:00Z", ""] {
            assert_eq!(parse_iso8601_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn formats_what_it_reads() {
        for ms in [0, 1_549_956_556_288, 1_700_000_000_123, -1] {
            assert_eq!(parse_iso8601_ms(&format_epoch_ms(ms)), Some(ms));
        }
        assert_eq!(
            format_epoch_ms(1_549_956_556_288),
            "2019-02-12T07:29:16.288Z"
        );
        assert_eq!(format_epoch_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            civil_ms((2019, 2, 12), (7, 29, 16), 288_000),
            Some(1_549_956_556_288)
        );
    }
}
