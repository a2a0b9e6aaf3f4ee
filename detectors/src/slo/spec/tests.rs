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
    assert!((set.windows.factor(&set.windows.page.quick) - 13.44).abs() < 1e-9);
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
            "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: x}\nspec: {}\n".to_string(),
            "apiVersion",
            "OpenSLO",
        ),
    ];
    for (text, path, reason) in cases {
        let e = one_error(&text);
        assert!(e.file.ends_with("slo.yaml"), "{e}");
        assert!(e.path.starts_with(path), "{path}: {e}");
        assert!(e.reason.contains(reason), "{reason}: {e}");
    }
}
