//! The SLO burn-rate benchmark, in one run: N SLOs over D days of
//! one-minute counters, their multi-window burn-rate alerts decided at
//! every evaluation step
//!
//! 1. by driftline's SLO detector, streaming: samples pushed minute by
//!    minute into the series it keeps, each step decided, windows older
//!    than the longest (3 d) trimmed, as `driftline run` does;
//! 2. by `promtool test rules` evaluating the equivalent Sloth-style rules
//!    (seven recording rules and a page and a ticket alert per SLO, no
//!    `for`) over the same samples, checking at every step that what
//!    fires is what driftline decided.
//!
//! Each runs as a child process; its CPU time (user + system) and peak
//! RSS come from `wait4`. Both include loading the samples: driftline
//! generates them in-process, promtool reads them in its compact
//! expanding notation and appends them to its test TSDB.
//!
//! Workload per SLO `svc-i` (objective 99.5 %): 600 requests a minute,
//! 0–2 errors a minute; every tenth burns fast (40 % errors for 30
//! minutes), every tenth (offset 5) slowly (3 % for 10 hours); others
//! restart their counters or miss 20 scrapes.
//!
//!   slo_e2e [--promtool promtool] [--slos 1000] [--days 7]
//!       [--eval-interval-minutes 60] [--keep DIR] [--no-promtool]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use driftline_detectors::slo::burn::BurnRates;
use driftline_detectors::slo::promql::{LOOKBACK_MS, Labels, SeriesSet};
use driftline_detectors::slo::spec;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const MIN_MS: i64 = 60_000;
const PER_MIN: f64 = 600.0;
const OBJECTIVE: f64 = 99.5;
const SERVICE: &str = "bench";
const ALERT: &str = "SloBurn";
const WINDOWS: [&str; 7] = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"];

struct Args {
    promtool: String,
    slos: usize,
    days: usize,
    every_min: usize,
    keep: Option<PathBuf>,
    /// driftline only: for scales promtool cannot finish in hours.
    no_promtool: bool,
    /// Child mode: evaluate the workload in `dir` and write decisions.
    evaluate: Option<PathBuf>,
}

fn args() -> Args {
    let mut a = Args {
        promtool: "promtool".into(),
        slos: 1000,
        days: 7,
        every_min: 60,
        keep: None,
        no_promtool: false,
        evaluate: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--promtool" => a.promtool = value(),
            "--slos" => a.slos = value().parse().expect("--slos N"),
            "--days" => a.days = value().parse().expect("--days N"),
            "--eval-interval-minutes" => {
                a.every_min = value().parse().expect("--eval-interval-minutes N")
            }
            "--keep" => a.keep = Some(value().into()),
            "--no-promtool" => a.no_promtool = true,
            "--evaluate" => a.evaluate = Some(value().into()),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

/// Minutes of data: `days` of them, both ends included.
fn minutes(days: usize) -> usize {
    days * 24 * 60
}

/// SLO `i`'s errors at minute `m` (`None`: the scrape was missed), and
/// whether its counters restart at `m`.
fn errors(i: usize, m: usize, total_min: usize) -> (Option<f64>, bool) {
    // Where in the run the SLO's event falls, spread over the days.
    let at = (i * 7919 + 600) % total_min.saturating_sub(800).max(1);
    let base = (i % 3) as f64;
    match i % 10 {
        0 if (at..at + 30).contains(&m) => (Some(240.0), false),
        5 if (at..at + 600).contains(&m) => (Some(18.0), false),
        7 => (Some(base), m == at),
        3 if (at..at + 20).contains(&m) => (None, false),
        _ => (Some(base), false),
    }
}

/// The two counters of one SLO (code 200, code 500), a minute at a time.
struct Counters {
    slo: usize,
    total_min: usize,
    ok: f64,
    bad: f64,
}

impl Counters {
    fn new(slo: usize, total_min: usize) -> Self {
        Self {
            slo,
            total_min,
            ok: 0.0,
            bad: 0.0,
        }
    }

    /// Minute `m`'s values (called for m = 0, 1, …): `None` when missed.
    fn next(&mut self, m: usize) -> Option<[f64; 2]> {
        let (e, reset) = errors(self.slo, m, self.total_min);
        if reset {
            (self.ok, self.bad) = (0.0, 0.0);
        }
        let e_now = e.unwrap_or((self.slo % 3) as f64);
        self.ok += PER_MIN - e_now;
        self.bad += e_now;
        e.map(|_| [self.ok, self.bad])
    }
}

/// Every value of SLO `i`'s two counters.
fn counters(i: usize, total_min: usize) -> [Vec<Option<f64>>; 2] {
    let mut c = Counters::new(i, total_min);
    let mut out = [Vec::new(), Vec::new()];
    for m in 0..=total_min {
        let v = c.next(m);
        out[0].push(v.map(|v| v[0]));
        out[1].push(v.map(|v| v[1]));
    }
    out
}

fn series_labels(i: usize, code: &str) -> Labels {
    Labels::new(vec![
        ("__name__".into(), "http_requests_total".into()),
        ("service".into(), format!("svc-{i}")),
        ("code".into(), code.into()),
    ])
}

/// The Sloth spec driftline reads.
fn sloth_spec(n: usize) -> String {
    let mut t = format!("version: \"prometheus/v1\"\nservice: \"{SERVICE}\"\nslos:\n");
    for i in 0..n {
        write!(
            t,
            "  - name: \"svc-{i}\"\n    objective: {OBJECTIVE}\n    sli:\n      events:\n        error_query: sum(rate(http_requests_total{{service=\"svc-{i}\",code=~\"5..\"}}[{{{{.window}}}}]))\n        total_query: sum(rate(http_requests_total{{service=\"svc-{i}\"}}[{{{{.window}}}}]))\n    alerting:\n      name: {ALERT}\n      page_alert:\n        labels:\n          severity: page\n      ticket_alert:\n        labels:\n          severity: ticket\n"
        )
        .unwrap();
    }
    t
}

/// The rules Sloth generates for that spec: one ratio per window, and a
/// page and a ticket alert over Google's 30-day window pairs.
fn sloth_rules(n: usize) -> String {
    let budget = (100.0 - OBJECTIVE) / 100.0;
    let f = |percent: f64, long_hours: f64| percent * 720.0 / 100.0 / long_hours;
    let alerts = [
        (
            "page",
            [("5m", "1h", f(2.0, 1.0)), ("30m", "6h", f(5.0, 6.0))],
        ),
        (
            "ticket",
            [("2h", "1d", f(10.0, 24.0)), ("6h", "3d", f(10.0, 72.0))],
        ),
    ];
    let mut t = String::from("groups:\n- name: sloth-bench\n  rules:\n");
    for i in 0..n {
        let id = format!("{SERVICE}-svc-{i}");
        let labels = format!(
            "      sloth_id: \"{id}\"\n      sloth_service: \"{SERVICE}\"\n      sloth_slo: \"svc-{i}\"\n"
        );
        for w in WINDOWS {
            write!(
                t,
                "  - record: slo:sli_error:ratio_rate{w}\n    expr: (sum(rate(http_requests_total{{service=\"svc-{i}\",code=~\"5..\"}}[{w}]))) / (sum(rate(http_requests_total{{service=\"svc-{i}\"}}[{w}])))\n    labels:\n{labels}      sloth_window: \"{w}\"\n"
            )
            .unwrap();
        }
        let sel =
            format!("{{sloth_id=\"{id}\", sloth_service=\"{SERVICE}\", sloth_slo=\"svc-{i}\"}}");
        for (severity, pairs) in alerts {
            let cond = |w: &str, f: f64| {
                format!(
                    "max(slo:sli_error:ratio_rate{w}{sel} > ({f} * {budget})) without (sloth_window)"
                )
            };
            let expr: Vec<String> = pairs
                .iter()
                .map(|(s, l, f)| format!("({} and {})", cond(s, *f), cond(l, *f)))
                .collect();
            write!(
                t,
                "  - alert: {ALERT}\n    expr: {}\n    labels:\n      severity: {severity}\n      sloth_severity: {severity}\n",
                expr.join(" or ")
            )
            .unwrap();
        }
    }
    t
}

/// One series' values in promtool's expanding notation: runs of a
/// constant increase as `a+bxn`, missed scrapes as `_xn`.
fn expanding(values: &[Option<f64>]) -> String {
    let mut out = Vec::new();
    let mut i = 0;
    while i < values.len() {
        match values[i] {
            None => {
                let n = values[i..].iter().take_while(|v| v.is_none()).count();
                out.push(format!("_x{n}"));
                i += n;
            }
            Some(a) => {
                let step = match values.get(i + 1) {
                    Some(Some(b)) if *b >= a => b - a,
                    _ => {
                        out.push(format!("{a}"));
                        i += 1;
                        continue;
                    }
                };
                let mut n = 0;
                while let Some(Some(v)) = values.get(i + n + 1) {
                    if *v != a + step * (n + 1) as f64 {
                        break;
                    }
                    n += 1;
                }
                out.push(format!("{a}+{step}x{n}"));
                i += n + 1;
            }
        }
    }
    out.join(" ")
}

/// What fires at each step: `(step minute, [(slo name, severity)])`.
type Decisions = Vec<(usize, Vec<(String, String)>)>;

/// promtool's test: the samples and, at every step, driftline's decisions.
fn promtool_test(a: &Args, decisions: &Decisions) -> String {
    let total = minutes(a.days);
    let mut t = format!(
        "rule_files: [rules.yaml]\nevaluation_interval: {}m\ntests:\n- interval: 1m\n  input_series:\n",
        a.every_min
    );
    for i in 0..a.slos {
        for (code, values) in ["200", "500"].iter().zip(counters(i, total)) {
            write!(
                t,
                "  - series: 'http_requests_total{{service=\"svc-{i}\",code=\"{code}\"}}'\n    values: '{}'\n",
                expanding(&values)
            )
            .unwrap();
        }
    }
    t.push_str("  alert_rule_test:\n");
    for (m, firing) in decisions {
        write!(t, "  - eval_time: {m}m\n    alertname: {ALERT}\n").unwrap();
        if firing.is_empty() {
            t.push_str("    exp_alerts: []\n");
            continue;
        }
        t.push_str("    exp_alerts:\n");
        for (slo, severity) in firing {
            write!(
                t,
                "    - exp_labels:\n        severity: {severity}\n        sloth_id: \"{SERVICE}-{slo}\"\n        sloth_service: \"{SERVICE}\"\n        sloth_severity: {severity}\n        sloth_slo: \"{slo}\"\n"
            )
            .unwrap();
        }
    }
    t
}

/// Child mode: driftline's detector over the workload, streamed.
fn evaluate(a: &Args, dir: &Path) {
    let set = spec::load(&[dir.join("spec.yaml")]).unwrap_or_else(|e| panic!("spec: {e:?}"));
    let rates = BurnRates::new(&set).expect("burn rates");
    let keep_ms = 3 * 24 * 60 * MIN_MS + LOOKBACK_MS;
    let total = minutes(a.days);
    let mut all: Vec<Counters> = (0..a.slos).map(|i| Counters::new(i, total)).collect();
    let labels: Vec<[Labels; 2]> = (0..a.slos)
        .map(|i| [series_labels(i, "200"), series_labels(i, "500")])
        .collect();
    let mut series = SeriesSet::default();
    let mut decisions: Decisions = Vec::new();
    for m in 0..=total {
        let t = m as i64 * MIN_MS;
        for (c, labels) in all.iter_mut().zip(&labels) {
            if let Some(values) = c.next(m) {
                for (v, l) in values.into_iter().zip(labels) {
                    series.push(l.clone(), t, v);
                }
            }
        }
        if m % a.every_min == 0 {
            series.trim(t - keep_ms);
            let firing = rates
                .step(&series, t, a.every_min as i64 * MIN_MS)
                .expect("step");
            let mut now: Vec<(String, String)> = firing
                .iter()
                .map(|f| {
                    (
                        rates.slos()[f.slo].name.clone(),
                        f.severity.as_str().to_string(),
                    )
                })
                .collect();
            now.sort();
            decisions.push((m, now));
        }
    }
    std::fs::write(
        dir.join("decisions.json"),
        serde_json::to_vec(&decisions).unwrap(),
    )
    .unwrap();
}

/// Runs a child to its end: wall seconds, CPU seconds, peak RSS bytes.
// `wait4` reaps the child (it also gives its rusage, which `wait` hides).
#[allow(clippy::zombie_processes)]
fn measured(cmd: &mut Command) -> (f64, f64, u64, bool) {
    let start = Instant::now();
    let child = cmd.spawn().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let mut status = 0;
    // SAFETY: wait4 writes only into the status and rusage we pass.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::wait4(child.id() as i32, &mut status, 0, &mut u);
        u
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (
        start.elapsed().as_secs_f64(),
        secs(usage.ru_utime) + secs(usage.ru_stime),
        usage.ru_maxrss as u64 * 1024,
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
    )
}

fn main() {
    let a = args();
    if let Some(dir) = &a.evaluate {
        evaluate(&a, dir);
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = a.keep.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("spec.yaml"), sloth_spec(a.slos)).unwrap();
    std::fs::write(dir.join("rules.yaml"), sloth_rules(a.slos)).unwrap();
    let total = minutes(a.days);
    let steps = total / a.every_min + 1;
    println!(
        "workload: {} SLOs × {} days of 1-minute samples ({} samples), decided every {} min ({} steps)",
        a.slos,
        a.days,
        a.slos * 2 * (total + 1),
        a.every_min,
        steps
    );
    println!("\n| evaluator | wall | CPU (user+sys) | peak RSS |\n|---|---|---|---|");
    let me = std::env::current_exe().unwrap();
    let (wall, d_cpu, d_rss, ok) = measured(
        Command::new(&me)
            .arg("--evaluate")
            .arg(&dir)
            .args(["--slos", &a.slos.to_string(), "--days", &a.days.to_string()])
            .args(["--eval-interval-minutes", &a.every_min.to_string()]),
    );
    assert!(ok, "driftline's evaluation failed");
    println!(
        "| driftline SLO detector | {wall:.1} s | {d_cpu:.1} s | {} MB |",
        d_rss >> 20
    );
    let decisions: Decisions =
        serde_json::from_slice(&std::fs::read(dir.join("decisions.json")).unwrap()).unwrap();
    let mut fired: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, now) in &decisions {
        for (_, severity) in now {
            *fired.entry(severity).or_default() += 1;
        }
    }
    println!(
        "\nsteps firing: {} page, {} ticket (SLO × step)",
        fired.get("page").unwrap_or(&0),
        fired.get("ticket").unwrap_or(&0),
    );
    if a.no_promtool {
        return;
    }
    std::fs::write(dir.join("test.yaml"), promtool_test(&a, &decisions)).unwrap();
    let out = dir.join("promtool.out");
    let (wall, p_cpu, p_rss, same) = measured(
        Command::new(&a.promtool)
            .args(["test", "rules", "test.yaml"])
            .current_dir(&dir)
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::process::Stdio::null()),
    );
    println!(
        "| promtool test rules (Prometheus 2.42) | {wall:.1} s | {p_cpu:.1} s | {} MB |",
        p_rss >> 20
    );
    println!(
        "promtool {} driftline's decisions at every step",
        if same {
            "agrees with"
        } else {
            "DISAGREES with"
        }
    );
    println!(
        "CPU: driftline {:.1}× less than promtool; peak RSS {:.2}× promtool's",
        p_cpu / d_cpu,
        d_rss as f64 / p_rss as f64
    );
    if !same {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        let head: String = text.lines().take(40).collect::<Vec<_>>().join("\n");
        eprintln!("{head}");
        std::process::exit(1);
    }
}
