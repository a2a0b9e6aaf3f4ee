use super::*;

fn load_str(name: &str, text: &str) -> Result<SloSet, Vec<SpecError>> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    load(&[path])
}

fn one_error(text: &str) -> SpecError {
    let e = load_str("slo.yaml", text).unwrap_err();
    assert_eq!(e.len(), 1, "{e:?}");
    e.into_iter().next().unwrap()
}

const SLOTH: &str = r#"
version: "prometheus/v1"
service: "myservice"
labels:
  owner: "myteam"
slos:
  - name: "requests-availability"
    objective: 99.9
    description: "Common SLO based on availability for HTTP request responses."
    labels:
      category: availability
    sli:
      events:
        error_query: sum(rate(http_request_duration_seconds_count{job="myservice",code=~"(5..|429)"}[{{.window}}]))
        total_query: sum(rate(http_request_duration_seconds_count{job="myservice"}[{{.window}}]))
    alerting:
      name: MyServiceHighErrorRate
      labels:
        category: "availability"
      annotations:
        summary: "High error rate on 'myservice' requests responses"
      page_alert:
        labels:
          severity: "pageteam"
      ticket_alert:
        labels:
          severity: "slack"
  - name: "latency"
    objective: 99
    sli:
      raw:
        error_ratio_query: |
          1 - (sum(rate(http_request_duration_seconds_bucket{le="0.25"}[{{.window}}]))
          / sum(rate(http_request_duration_seconds_count[{{.window}}])))
    alerting:
      name: MyServiceSlow
      ticket_alert:
        disable: true
"#;

#[test]
fn sloth_specs_load_as_sloth_reads_them() {
    let set = load_str("svc.yaml", SLOTH).unwrap();
    assert_eq!(set.slos.len(), 2);
    let a = &set.slos[0];
    assert_eq!(a.id, "myservice-requests-availability");
    assert_eq!(a.labels["owner"], "myteam");
    assert_eq!(a.labels["category"], "availability");
    assert_eq!(a.error_budget(), (100.0 - 99.9) / 100.0);
    assert!(a.sli.ratio_query("5m").contains("[5m]"));
    assert_eq!(
        a.alerting.page.as_ref().unwrap().labels["severity"],
        "pageteam"
    );
    let b = &set.slos[1];
    assert!(matches!(b.sli, Sli::Raw { .. }));
    assert!(b.alerting.ticket.is_none(), "disabled");
    assert_eq!(set.windows, AlertWindows::default());
}

#[test]
fn the_kubernetes_form_and_custom_windows_load() {
    let text = format!(
        "apiVersion: sloth.slok.dev/v1\nkind: PrometheusServiceLevel\nmetadata:\n  name: svc\nspec:\n{}\n---\n{}",
        SLOTH
            .replace("version: \"prometheus/v1\"\n", "")
            .lines()
            .map(|l| format!("  {l}"))
            .collect::<Vec<_>>()
            .join("\n"),
        "apiVersion: sloth.slok.dev/v1\nkind: AlertWindows\nspec:\n  sloPeriod: 7d\n  page:\n    quick: {errorBudgetPercent: 8, shortWindow: 5m, longWindow: 1h}\n    slow: {errorBudgetPercent: 12.5, shortWindow: 30m, longWindow: 6h}\n  ticket:\n    quick: {errorBudgetPercent: 20, shortWindow: 2h, longWindow: 1d}\n    slow: {errorBudgetPercent: 42, shortWindow: 6h, longWindow: 3d}\n"
    );
    let set = load_str("k8s.yaml", &text).unwrap();
    assert_eq!(set.slos.len(), 2);
    assert_eq!(set.windows.period_ms, 7 * 86_400_000);
    // 8 % of 168 h within 1 h.
    assert!((set.windows.pairs(None)[0].factor - 13.44).abs() < 1e-9);
}

#[test]
fn invalid_specs_name_the_file_the_path_and_the_reason() {
    let cases: Vec<(String, &str, &str)> = vec![
        (
            SLOTH.replace("objective: 99.9", "objective: 120"),
            "slos[0].objective",
            "not a percentage",
        ),
        (
            SLOTH.replace("    description: \"Common", "    colour: red\n    description: \"Common"),
            "slos[0]",
            "unknown field `colour`",
        ),
        (
            SLOTH.replace("prometheus/v1", "prometheus/v2"),
            "version",
            "not a Sloth spec version",
        ),
        (
            SLOTH.replace("[{{.window}}]))\n        total_query", "[5m]))\n        total_query"),
            "slos[0].sli.events.error_query",
            "must use {{.window}}",
        ),
        (
            SLOTH.replace("sum(rate(http_request_duration_seconds_count{job=\"myservice\"}", "sum(rate(("),
            "slos[0].sli.events.total_query",
            "not a query driftline can evaluate",
        ),
        (
            SLOTH.replace("sum(rate(http_request_duration_seconds_count{job=\"myservice\"}", "topk(1, rate(x"),
            "slos[0].sli.events.total_query",
            "aggregation topk is not supported",
        ),
        (
            SLOTH.replace(
                "      events:\n        error_query",
                "      plugin:\n        id: sloth-common/kubernetes/apiserver/availability\n      events:\n        error_query",
            ),
            "slos[0].sli.plugin.id",
            "SLI plugin \"sloth-common/kubernetes/apiserver/availability\" is not supported",
        ),
        (
            OPENSLO.replace("budgetingMethod: Occurrences", "budgetingMethod: Timeslices"),
            "document 3 spec.budgetingMethod",
            "not supported: driftline budgets Occurrences",
        ),
        (
            OPENSLO.replace("isRolling: true", "isRolling: false"),
            "document 3 spec.timeWindow[0]",
            "calendar windows are not supported",
        ),
        (
            OPENSLO.replace("indicatorRef: web-successful-requests", "indicatorRef: nope"),
            "document 3 spec.indicatorRef",
            "no SLI named \"nope\"",
        ),
        (
            OPENSLO.replace("apiVersion: openslo/v1\nkind: SLI", "apiVersion: openslo/v1alpha\nkind: SLI"),
            "document 2 apiVersion",
            "driftline reads openslo/v1",
        ),
    ];
    for (text, path, reason) in cases {
        let e = one_error(&text);
        assert!(e.file.ends_with("slo.yaml"), "{e}");
        assert!(e.path.starts_with(path), "{path}: {e}");
        assert!(e.reason.contains(reason), "{reason}: {e}");
    }
}

pub(super) const OPENSLO: &str = r#"apiVersion: openslo/v1
kind: Service
metadata:
  name: web
spec:
  description: The storefront.
---
apiVersion: openslo/v1
kind: SLI
metadata:
  name: web-successful-requests
spec:
  ratioMetric:
    counter: true
    good:
      metricSource:
        type: Prometheus
        spec:
          query: http_requests_total{job="web",code!~"5.."}
    total:
      metricSource:
        type: Prometheus
        spec:
          query: http_requests_total{job="web"}
---
apiVersion: openslo/v1
kind: SLO
metadata:
  name: web-availability
  displayName: Web availability
spec:
  service: web
  indicatorRef: web-successful-requests
  timeWindow:
    - duration: 28d
      isRolling: true
  budgetingMethod: Occurrences
  objectives:
    - displayName: Good
      target: 0.995
  alertPolicies:
    - alertPolicyRef: web-burn
---
apiVersion: openslo/v1
kind: AlertPolicy
metadata:
  name: web-burn
spec:
  alertWhenBreaching: true
  conditions:
    - conditionRef: web-fast-burn
    - kind: AlertCondition
      metadata:
        name: web-slow-burn
      spec:
        severity: ticket
        condition:
          kind: burnrate
          op: gt
          threshold: 2
          lookbackWindow: 1d
          alertAfter: 1h
---
apiVersion: openslo/v1
kind: AlertCondition
metadata:
  name: web-fast-burn
spec:
  severity: page
  condition:
    kind: burnrate
    op: gte
    threshold: 14.4
    lookbackWindow: 1h
    alertAfter: 5m
"#;

#[test]
fn openslo_objects_resolve_across_documents() {
    let set = load_str("web.yaml", OPENSLO).unwrap();
    assert_eq!(set.slos.len(), 1);
    let s = &set.slos[0];
    assert_eq!(s.id, "web-web-availability");
    assert!((s.objective - 99.5).abs() < 1e-9);
    assert_eq!(s.period_ms, Some(28 * 86_400_000));
    // good/total: errors are what is not good; plain counters are rated.
    let q = s.sli.ratio_query("5m");
    assert!(q.starts_with("1 - ("), "{q}");
    assert!(
        q.contains("sum(rate(http_requests_total{job=\"web\"}[5m]))"),
        "{q}"
    );
    assert_eq!(s.conditions.len(), 2);
    assert_eq!(s.conditions[0].severity, Severity::Page);
    assert_eq!(
        (s.conditions[0].short_ms, s.conditions[0].long_ms),
        (300_000, 3_600_000)
    );
    assert_eq!(s.conditions[0].factor, 14.4);
    assert_eq!(s.conditions[1].severity, Severity::Ticket);
    assert_eq!(s.burn_pairs(&set.windows).len(), 2);
}

#[test]
fn a_document_that_cannot_be_parsed_is_one_error() {
    // An unterminated quote: the YAML reader's document iterator repeats
    // its error for ever after it.
    let text = "version: \"prometheus/v1\"\nservice: \"checkout\"\nslos:\n  - name: \"a\n    objective: 99\n";
    let errors = super::load_str("broken.yaml", text).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].file, "broken.yaml");
    // Documents before the broken one are still read and judged (this
    // one has no SLO), and the broken one is one error.
    let two = format!("version: \"prometheus/v1\"\nservice: x\nslos: []\n---\n{text}");
    let errors = super::load_str("two.yaml", &two).unwrap_err();
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["document 1 slos", "document 2 "], "{errors:?}");
}
