use super::*;
use driftline_pipeline::telemetry::stale_nan;

const MIN: i64 = 60_000;

fn labels(name: &str, pairs: &[(&str, &str)]) -> Labels {
    let mut v: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    v.push(("__name__".into(), name.into()));
    Labels::new(v)
}

/// One point a minute from 0, with these values.
fn series(set: &mut SeriesSet, name: &str, pairs: &[(&str, &str)], values: &[f64]) {
    for (i, v) in values.iter().enumerate() {
        assert!(set.push(labels(name, pairs), i as i64 * MIN, *v));
    }
}

fn eval(set: &SeriesSet, q: &str, at: i64) -> Vec<(String, f64)> {
    let ev = Evaluator::new(set, MIN);
    let mut out: Vec<(String, f64)> = match Query::parse(q).unwrap().eval(&ev, at).unwrap() {
        Value::Vector(v) => v
            .into_iter()
            .map(|s| (s.labels.to_string(), s.value))
            .collect(),
        Value::Scalar(v) => vec![("scalar".into(), v)],
        other => panic!("{other:?}"),
    };
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn one(set: &SeriesSet, q: &str, at: i64) -> f64 {
    let v = eval(set, q, at);
    assert_eq!(v.len(), 1, "{q}: {v:?}");
    v[0].1
}

#[test]
fn rate_extrapolates_and_counts_resets_as_prometheus_does() {
    let mut s = SeriesSet::default();
    // One per second, scraped each minute.
    let steady: Vec<f64> = (0..=20).map(|i| i as f64 * 60.0).collect();
    series(&mut s, "req_total", &[("job", "a")], &steady);
    // [5m] at 10m holds six points, 5m..10m, both ends included.
    assert_eq!(one(&s, "rate(req_total[5m])", 10 * MIN), 1.0);
    assert_eq!(one(&s, "increase(req_total[5m])", 10 * MIN), 300.0);
    // Half a minute after the last point: the end is extrapolated by 30 s
    // (under 1.1 × the average interval), the start as well.
    assert_eq!(one(&s, "increase(req_total[5m])", 10 * MIN + 30_000), 300.0);
    // A reset: 100, 200, 50, 150 is +100, +50 (from zero), +100.
    let mut r = SeriesSet::default();
    series(&mut r, "c", &[], &[100.0, 200.0, 50.0, 150.0]);
    // Extrapolation: 250 over 180 s sampled, the start 60 s back
    // (to zero would be 72 s), the end on the point: 250 × 240 / 180.
    let inc = one(&r, "increase(c[4m])", 3 * MIN);
    assert!((inc - 250.0 * 240.0 / 180.0).abs() < 1e-9, "{inc}");
    assert_eq!(one(&r, "irate(c[4m])", 3 * MIN), 100.0 / 60.0);
    // One point is not enough for a rate.
    assert!(eval(&r, "rate(c[1m])", 0).is_empty());
}

#[test]
fn instant_selectors_look_back_five_minutes_and_stop_at_stale_markers() {
    let mut s = SeriesSet::default();
    series(&mut s, "up", &[("job", "a")], &[1.0]);
    assert_eq!(
        one(&s, "up", 5 * MIN),
        1.0,
        "the lookback includes its start"
    );
    assert!(eval(&s, "up", 5 * MIN + 1).is_empty());
    s.push(labels("up", &[("job", "a")]), MIN, stale_nan());
    assert!(
        eval(&s, "up", 2 * MIN).is_empty(),
        "a stale marker ends the series"
    );
    assert_eq!(one(&s, "up offset 2m", 2 * MIN), 1.0);
}

#[test]
fn matchers_aggregations_and_vector_matching() {
    let mut s = SeriesSet::default();
    series(&mut s, "errors", &[("job", "a"), ("code", "500")], &[2.0]);
    series(&mut s, "errors", &[("job", "a"), ("code", "503")], &[3.0]);
    series(&mut s, "errors", &[("job", "b"), ("code", "500")], &[7.0]);
    series(&mut s, "total", &[("job", "a")], &[10.0]);
    series(&mut s, "total", &[("job", "b")], &[70.0]);
    assert_eq!(one(&s, r#"sum(errors{code=~"5..", job!="b"})"#, 0), 5.0);
    assert_eq!(one(&s, r#"count(errors{code!~"50[0-2]"})"#, 0), 1.0);
    assert_eq!(
        eval(&s, "sum by (job) (errors) / on (job) total", 0),
        vec![("{job=\"a\"}".into(), 0.5), ("{job=\"b\"}".into(), 0.1)]
    );
    assert_eq!(
        eval(&s, "sum without (code) (errors) / ignoring (code) total", 0),
        vec![("{job=\"a\"}".into(), 0.5), ("{job=\"b\"}".into(), 0.1)]
    );
    // Many-to-one needs group_left, and keeps the many side's labels.
    let e = Query::parse("errors / on (job) total").unwrap();
    let ev = Evaluator::new(&s, MIN);
    assert!(
        e.eval(&ev, 0)
            .unwrap_err()
            .to_string()
            .contains("group_left")
    );
    assert_eq!(eval(&s, "errors / on (job) group_left total", 0).len(), 3);
    // Comparisons filter and keep the name; `bool` answers 0/1.
    assert_eq!(
        eval(&s, "total > 20", 0),
        vec![("total{job=\"b\"}".into(), 70.0)]
    );
    assert_eq!(
        eval(&s, "20 < total", 0),
        vec![("total{job=\"b\"}".into(), 70.0)]
    );
    assert_eq!(eval(&s, "total > bool 20", 0)[0].1, 0.0);
    // Set operators match on every label but the name.
    assert_eq!(eval(&s, "total and on (job) errors{job=\"b\"}", 0).len(), 1);
    assert_eq!(
        eval(&s, "total unless on (job) errors{job=\"b\"}", 0).len(),
        1
    );
    assert_eq!(eval(&s, "total{job=\"a\"} or vector(1)", 0).len(), 2);
    assert_eq!(one(&s, "max(total) - min(total) + avg(total)", 0), 100.0);
    assert_eq!(one(&s, "scalar(sum(total)) * 2", 0), 160.0);
}

#[test]
fn subqueries_step_at_multiples_of_the_evaluation_interval() {
    let mut s = SeriesSet::default();
    let v: Vec<f64> = (0..=30).map(|i| i as f64).collect();
    series(&mut s, "g", &[], &v);
    // [10m:] at 20m: steps 10m, 11m, … 20m, eleven of them.
    assert_eq!(one(&s, "count_over_time(g[10m:])", 20 * MIN), 11.0);
    assert_eq!(one(&s, "sum_over_time(g[10m:])", 20 * MIN), 165.0);
    // At 20m30s the first aligned step after 10m30s is 11m.
    assert_eq!(one(&s, "min_over_time(g[10m:])", 20 * MIN + 30_000), 11.0);
    assert_eq!(one(&s, "avg_over_time(g[4m:2m])", 20 * MIN), 18.0);
    assert_eq!(
        one(&s, "max_over_time(rate(g[2m])[5m:])", 20 * MIN),
        1.0 / 60.0
    );
}

#[test]
fn histogram_quantile_reads_classic_buckets() {
    let mut s = SeriesSet::default();
    for (le, v) in [("0.1", 10.0), ("0.5", 30.0), ("+Inf", 40.0)] {
        series(&mut s, "lat_bucket", &[("le", le)], &[v]);
    }
    assert!((one(&s, "histogram_quantile(0.5, lat_bucket)", 0) - 0.3).abs() < 1e-12);
}

#[test]
fn what_the_evaluator_lacks_is_refused_when_parsed() {
    for (q, what) in [
        ("topk(3, x)", "aggregation topk"),
        ("predict_linear(x[5m], 60)", "function predict_linear()"),
    ] {
        let e = Query::parse(q).unwrap_err();
        assert_eq!(e, PromqlError::Unsupported(what.into()), "{q}");
    }
    assert!(matches!(
        Query::parse("sum(rate(x[5m])"),
        Err(PromqlError::Parse(_))
    ));
}

#[test]
fn group_by_splits_the_top_aggregations_only() {
    let mut s = SeriesSet::default();
    series(
        &mut s,
        "errors",
        &[("route", "/a"), ("code", "500")],
        &[2.0],
    );
    series(
        &mut s,
        "errors",
        &[("route", "/b"), ("code", "500")],
        &[3.0],
    );
    series(&mut s, "total", &[("route", "/a")], &[10.0]);
    series(&mut s, "total", &[("route", "/b")], &[30.0]);
    let ev = Evaluator::new(&s, MIN);
    let q = Query::parse("sum(errors) / sum(total)")
        .unwrap()
        .group_by(&["route".to_string()]);
    let Value::Vector(mut v) = q.eval(&ev, 0).unwrap() else {
        panic!()
    };
    v.sort_by(|a, b| a.labels.cmp(&b.labels));
    let got: Vec<(String, f64)> = v
        .into_iter()
        .map(|s| (s.labels.to_string(), s.value))
        .collect();
    assert_eq!(
        got,
        vec![
            ("{route=\"/a\"}".into(), 0.2),
            ("{route=\"/b\"}".into(), 0.1)
        ]
    );
    // Nested aggregations keep their own grouping.
    let q = Query::parse("sum(max by (code) (errors))")
        .unwrap()
        .group_by(&["route".into()]);
    assert_eq!(q.text, "sum by (route) (max by (code) (errors))");
}
