//! `driftline run`: the long-running service. Wires the graph from the
//! configuration — watching collectors → bus → drift stage → findings sink
//! (store + JSON lines) — runs each stage on its own thread, serves the
//! probes and metrics, and shuts down cleanly on SIGTERM/SIGINT: stages
//! finish the batch in hand, commit, and leave their consumer groups.

mod args;
pub mod config;
mod http;

pub use args::RunArgs;
use args::settle;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use driftline_alerts::Alerting;
use driftline_alerts::outbox::Backoff;
use driftline_alerts::stage::AlertStage;
use driftline_collectors::aws_config::notifications::NotificationReceiver;
use driftline_collectors::{Reading, Sources, SourcesConfig};
use driftline_detectors::rules::RulesWatch;
use driftline_detectors::{DriftStage, StreamingDrift};
use driftline_pipeline::stage;
use driftline_pipeline::store::ResourcesWriter;
use driftline_pipeline::{BusSink, FindingsOut, FindingsWriter, RecordSink, TypeTable};

use self::config::{Role, ServiceConfig};
use self::http::Health;

/// What the service reads: `[watch]` and `[aws_config]`.
fn sources_config(cfg: &ServiceConfig, types: Arc<TypeTable>) -> SourcesConfig {
    let mut sources = SourcesConfig::new(types);
    sources.state = cfg.watch.state.clone();
    sources.observed = cfg.watch.observed.clone();
    sources.aws = cfg.aws_config.clone();
    sources.account = cfg.watch.account.clone();
    sources.region = cfg.watch.region.clone();
    sources.interval = Duration::from_millis(cfg.watch.interval_ms.max(10));
    sources.remote_interval = Duration::from_millis(cfg.watch.remote_interval_ms.max(10));
    sources
}

/// `driftline check`: everything `run` would refuse, without running.
pub fn check(path: &std::path::Path) -> anyhow::Result<ExitCode> {
    let cfg = ServiceConfig::load(path)?;
    crate::inputs::load_mappings(cfg.drift.mappings.as_deref())?;
    crate::inputs::load_driftignore(cfg.drift.driftignore.as_deref())?;
    cfg.alerts
        .validate()
        .map_err(|e| anyhow::anyhow!("{}: alerts.{e}", path.display()))?;
    cfg.slo
        .load()
        .map_err(|e| anyhow::anyhow!("{}: {e:#}", path.display()))?;
    println!(
        "{}: ok (roles {:?}; state {:?}; observed {:?})",
        path.display(),
        cfg.roles,
        cfg.watch.state,
        cfg.watch.observed
    );
    Ok(ExitCode::SUCCESS)
}

/// A housekeeping thread's body: `pass` every `secs` seconds (at least
/// one) until `stop`; `now` runs one pass at once first. A pass logs its
/// own failures: they are not fatal.
fn periodic(
    secs: u64,
    stop: Arc<AtomicBool>,
    now: bool,
    mut pass: impl FnMut() + Send + 'static,
) -> Box<dyn FnOnce() -> anyhow::Result<()> + Send> {
    Box::new(move || {
        if now {
            pass();
        }
        driftline_pipeline::time::every(Duration::from_secs(secs.max(1)), &stop, pass);
        Ok(())
    })
}

pub fn run(args: RunArgs, logging: &crate::Logging) -> anyhow::Result<ExitCode> {
    let cfg = settle(args)?;
    // Spans export from here on; dropping the guard at the end flushes them.
    let _telemetry = logging.install(Some(&cfg.telemetry));
    // Read once: the alert API, the pushes and /api/sql check the same one.
    let api_token = std::env::var(&cfg.http.api_token_env)
        .ok()
        .filter(|t| !t.is_empty());
    let bus = cfg.bus.open()?;
    bus.ensure_topics()
        .context("cannot prepare the bus topics")?;
    let mappings = Arc::new(crate::inputs::load_mappings(cfg.drift.mappings.as_deref())?);
    let types = Arc::new(mappings.type_table());
    let ignore = crate::inputs::load_driftignore(cfg.drift.driftignore.as_deref())?;
    let findings_out = cfg
        .findings
        .out
        .as_deref()
        .map(FindingsOut::open)
        .transpose()?;
    let store = driftline_pipeline::store::open(&cfg.store, &cfg.data_dir, &cfg.finops)?;
    let alerting = if cfg.roles.contains(&Role::Alert) {
        let (alerting, delivery) = Alerting::open(
            &cfg.alerts,
            &cfg.data_dir.join("alerts"),
            &|var| std::env::var(var).ok(),
            Backoff {
                initial: cfg.alerts_delivery.initial_backoff,
                max: cfg.alerts_delivery.max_backoff,
            },
            Some(store.clone()),
            driftline_pipeline::now_ms(),
        )?;
        Some((Arc::new(alerting), delivery))
    } else {
        None
    };

    let stop = Arc::new(AtomicBool::new(false));
    let (done_tx, mut done_rx) =
        tokio::sync::mpsc::unbounded_channel::<(String, anyhow::Result<()>)>();
    let mut health = Health {
        alive: AtomicBool::new(true),
        ready: Vec::new(),
    };
    let mut threads = Vec::new();
    let mut spawn = |name: String, f: Box<dyn FnOnce() -> anyhow::Result<()> + Send>| {
        let tx = done_tx.clone();
        let thread_name = name.clone();
        threads.push(
            std::thread::Builder::new()
                .name(thread_name)
                .spawn(move || {
                    let r = f();
                    let _ = tx.send((name, r));
                })
                .map_err(anyhow::Error::from),
        );
    };

    // The first live AWS Config collector also completes oversized
    // notifications.
    let mut completer = None;
    if cfg.roles.contains(&Role::Collect) {
        let mut sources = Sources::new(&sources_config(&cfg, types.clone()), Reading::Watching)?;
        completer = sources.api_collector();
        // A first pass over every source before any detection starts, so
        // the detector does not see one side of the estate without the
        // other (which would flap `missing` → resolved at start-up).
        let first = sources.poll_once(&BusSink::new(bus.producer()?), &|_, _| {});
        for e in &first.errors {
            tracing::warn!(error = %e, "cannot read");
        }
        tracing::info!(published = first.published, "first pass published");
        for mut c in sources.into_collectors() {
            let sink = BusSink::new(bus.producer()?);
            let stop = stop.clone();
            spawn(
                format!("collect-{}", c.name()),
                Box::new(move || {
                    driftline_collectors::run(&mut *c, &sink, &stop);
                    Ok(())
                }),
            );
        }
    }
    if cfg.roles.contains(&Role::Collect) {
        // Telemetry collectors: scrape targets and log files, each on its
        // own thread, the first pass at once rather than one interval in.
        let mut telemetry: Vec<(String, Box<dyn driftline_collectors::Collector>)> = Vec::new();
        for s in cfg.metrics.collectors().map_err(|e| anyhow::anyhow!(e))? {
            telemetry.push((format!("scrape-{}", s.instance()), Box::new(s)));
        }
        let logs = cfg.logs.collectors(&cfg.data_dir.join("logs"));
        for (i, t) in logs
            .map_err(|e| anyhow::anyhow!(e))?
            .into_iter()
            .enumerate()
        {
            telemetry.push((format!("logs-{i}"), Box::new(t)));
        }
        for (name, mut c) in telemetry {
            let sink = BusSink::new(bus.producer()?);
            let stop = stop.clone();
            spawn(
                name,
                Box::new(move || {
                    for e in c.poll_once(&sink, &|_, _| {}).errors {
                        tracing::warn!(collector = c.name(), error = %e, "cannot read");
                    }
                    driftline_collectors::run(&mut *c, &sink, &stop);
                    Ok(())
                }),
            );
        }
    }
    if cfg.roles.contains(&Role::Collect) && !cfg.watch.cost.is_empty() {
        // Cost exports are tables, not snapshots: new ones go straight to the store.
        let mut import = driftline_collectors::cost::CostImport::new(cfg.watch.cost.clone());
        let store = store.clone();
        // What is there at start loads now, not one interval in.
        spawn(
            "cost".into(),
            periodic(
                cfg.watch.cost_interval_secs,
                stop.clone(),
                true,
                move || {
                    let report = import.run(&*store, &|_, _| {});
                    for e in &report.errors {
                        tracing::warn!(error = %e, "cost export");
                    }
                    if report.published > 0 {
                        tracing::info!(rows = report.published, "cost exports loaded");
                    }
                },
            ),
        );
    }
    if cfg.roles.contains(&Role::Detect) {
        let ready = Arc::new(AtomicBool::new(false));
        health.ready.push(ready.clone());
        let mut stage = DriftStage::new(
            StreamingDrift::new(mappings.clone(), ignore),
            format!("{}-drift", cfg.bus.group),
        )?;
        let (bus, stop, batch_max) = (bus.clone(), stop.clone(), cfg.bus.batch_max);
        spawn(
            "detect".into(),
            Box::new(move || Ok(stage::run(&mut stage, &*bus, batch_max, &stop, &ready)?)),
        );
    }
    if let (true, Some((slos, interval_ms))) = (cfg.roles.contains(&Role::Detect), cfg.slo.load()?)
    {
        let ready = Arc::new(AtomicBool::new(false));
        health.ready.push(ready.clone());
        let mut stage = driftline_detectors::slo::stage::SloStage::new(
            &slos,
            format!("{}-slo", cfg.bus.group),
            interval_ms,
        )?
        .with_history(driftline_detectors::slo::stage::History {
            store: store.clone(),
            tag: cfg.slo.cause_tag.clone(),
            lookback_ms: cfg.slo.cause_lookback_ms()?,
        });
        tracing::info!(
            slos = slos.slos.len(),
            interval_ms,
            "SLO detector on the metrics stream"
        );
        let (bus, stop, batch_max) = (bus.clone(), stop.clone(), cfg.bus.batch_max);
        spawn(
            "slo".into(),
            Box::new(move || Ok(stage::run(&mut stage, &*bus, batch_max, &stop, &ready)?)),
        );
    }
    if let (true, Some(source)) = (cfg.roles.contains(&Role::Detect), cfg.drift.rules.clone()) {
        let mut watch = RulesWatch::new(
            source,
            store.clone(),
            bus.producer()?,
            cfg.finops.required_tags.clone(),
        );
        spawn(
            "rules".into(),
            periodic(
                cfg.drift.rules_interval_secs,
                stop.clone(),
                false,
                move || {
                    if let Err(e) = watch.poll_once() {
                        tracing::warn!(error = %e, "policy rules not evaluated");
                    }
                },
            ),
        );
    }
    if cfg.roles.contains(&Role::Sink) {
        let mut stage = FindingsWriter::new(
            store.clone(),
            findings_out,
            format!("{}-sink", cfg.bus.group),
        );
        let (b, st, batch_max) = (bus.clone(), stop.clone(), cfg.bus.batch_max);
        let ready = AtomicBool::new(false);
        spawn(
            "sink".into(),
            Box::new(move || Ok(stage::run(&mut stage, &*b, batch_max, &st, &ready)?)),
        );
        // Every resource version the collectors publish, into the history
        // tables (`resources_declared` and `resources_observed` are their latest).
        let mut resources =
            ResourcesWriter::new(store.clone(), format!("{}-resources", cfg.bus.group));
        let (b, st, batch_max) = (bus.clone(), stop.clone(), cfg.bus.batch_max);
        let ready = AtomicBool::new(false);
        spawn(
            "resources".into(),
            Box::new(move || Ok(stage::run(&mut resources, &*b, batch_max, &st, &ready)?)),
        );
    }
    let inbox = if cfg.aws_config.notifications.enabled {
        Some(driftline_collectors::aws_config::inbox::Inbox {
            receiver: Arc::new(NotificationReceiver::new(
                cfg.aws_config.notifications.clone(),
                types.clone(),
                completer.clone(),
            )),
            sink: Arc::new(BusSink::new(bus.producer()?)),
        })
    } else {
        None
    };
    let mut api = None;
    if let Some((alerting, delivery)) = alerting {
        let ready = Arc::new(AtomicBool::new(false));
        health.ready.push(ready.clone());
        let mut stage = AlertStage::new(
            alerting.clone(),
            cfg.bus
                .alert_group
                .clone()
                .unwrap_or_else(|| format!("{}-alerts", cfg.bus.group)),
        );
        let (b, st, batch_max) = (bus.clone(), stop.clone(), cfg.bus.batch_max);
        spawn(
            "alert".into(),
            Box::new(move || Ok(stage::run(&mut stage, &*b, batch_max, &st, &ready)?)),
        );
        let dlq = BusSink::new(bus.producer()?);
        let st = stop.clone();
        spawn(
            "notify".into(),
            Box::new(move || {
                let dead = |d: driftline_pipeline::DeadLetter| {
                    if let Err(e) = dlq.publish(
                        driftline_pipeline::Topic::DeadLetters,
                        vec![driftline_pipeline::Record::DeadLetter(d)],
                    ) {
                        tracing::error!(error = %e, "cannot publish a notification dead letter");
                    }
                };
                delivery.run(&dead, &st).map_err(anyhow::Error::from)
            }),
        );
        api = Some(driftline_alerts::api::Api {
            alerting,
            token: api_token.clone(),
        });
    }
    {
        // Housekeeping beside the stages.
        let store = store.clone();
        spawn(
            "store-maintain".into(),
            periodic(
                cfg.store.maintain_interval_secs,
                stop.clone(),
                false,
                move || {
                    if let Err(e) = store.maintain() {
                        tracing::warn!(error = %e, "store housekeeping failed");
                    }
                },
            ),
        );
    }
    let ingest = if cfg.roles.contains(&Role::Collect) {
        Some(driftline_collectors::push::Ingest {
            sink: Arc::new(BusSink::new(bus.producer()?)),
            token: api_token.clone(),
        })
    } else {
        None
    };
    // The telemetry writer drains the bus after everything that publishes
    // has stopped: it has a stop of its own, set last.
    let drain_stop = Arc::new(AtomicBool::new(false));
    let mut late_threads = Vec::new();
    if cfg.roles.contains(&Role::Sink) {
        use driftline_pipeline::store::{DeadLettersWriter, TelemetryWriter};
        let group = |g: &str| format!("{}-{g}", cfg.bus.group);
        let stages: [(&str, Box<dyn stage::Stage + Send>); 2] = [
            (
                "telemetry",
                Box::new(TelemetryWriter::new(store.clone(), group("telemetry"))),
            ),
            (
                "dead-letters",
                Box::new(DeadLettersWriter::new(store.clone(), group("dead-letters"))),
            ),
        ];
        for (name, mut stage) in stages {
            let (b, st, batch_max) = (bus.clone(), drain_stop.clone(), cfg.bus.batch_max);
            let tx = done_tx.clone();
            late_threads.push(
                std::thread::Builder::new()
                    .name(name.into())
                    .spawn(move || {
                        let ready = AtomicBool::new(false);
                        let r = stage::run(&mut *stage, &*b, batch_max, &st, &ready)
                            .map_err(anyhow::Error::from);
                        let _ = tx.send((name.into(), r));
                    })?,
            );
        }
    }
    let sql_api = http::SqlApi {
        store: store.clone(),
        token: api_token.clone(),
        limits: Default::default(),
    };
    drop(done_tx);
    let threads: Vec<_> = threads.into_iter().collect::<Result<_, _>>()?;
    let health = Arc::new(health);

    tracing::info!(
        bus = bus.kind(),
        data_dir = %cfg.data_dir.display(),
        state = ?cfg.watch.state,
        observed = ?cfg.watch.observed,
        "driftline running"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let mut failed = false;
    // Told when the service stops: the server then finishes the requests
    // in hand (a push answered yes is on the bus) and takes no more.
    let closing = Arc::new(tokio::sync::Notify::new());
    rt.block_on(async {
        let server = if cfg.http.listen.is_empty() {
            None
        } else {
            let listener = tokio::net::TcpListener::bind(&cfg.http.listen)
                .await
                .with_context(|| format!("cannot listen on {}", cfg.http.listen))?;
            let local = listener.local_addr()?;
            tracing::info!(listen = %local, "serving /metrics /healthz /readyz");
            if api_token.is_none() && !local.ip().is_loopback() {
                tracing::warn!(
                    listen = %local,
                    token_env = %cfg.http.api_token_env,
                    "listening beyond loopback without an API token: whoever reaches this \
                     address can push telemetry and notifications and change alerts; set \
                     the token's variable (/api/sql stays refused without one)"
                );
            }
            let app = http::router(
                health.clone(),
                api.clone(),
                inbox.clone(),
                ingest.clone(),
                sql_api.clone(),
            );
            let closing = closing.clone();
            Some(tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move { closing.notified().await })
                    .await
            }))
        };
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("interrupted; shutting down"),
            _ = term.recv() => tracing::info!("SIGTERM; shutting down"),
            Some((name, result)) = done_rx.recv() => {
                health.alive.store(false, Ordering::Relaxed);
                match result {
                    Ok(()) => tracing::error!(stage = %name, "stage stopped"),
                    Err(e) => tracing::error!(stage = %name, error = %format!("{e:#}"), "stage failed"),
                }
                failed = true;
            }
        }
        if let Some(s) = server {
            closing.notify_one();
            if tokio::time::timeout(Duration::from_secs(10), s).await.is_err() {
                tracing::warn!("requests still open after 10 s; closing them");
            }
        }
        anyhow::Ok(())
    })?;
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    drain_stop.store(true, Ordering::Relaxed);
    for t in late_threads {
        let _ = t.join();
    }
    // Last, what the store still holds back (ClickHouse's spool) goes now
    // if it can; what cannot stays on disk for the next start.
    if let Err(e) = store.flush() {
        tracing::warn!(error = %e, "store not flushed at shutdown");
    }
    // Report any other stage that failed while stopping.
    while let Ok((name, result)) = done_rx.try_recv() {
        if let Err(e) = result {
            tracing::error!(stage = %name, error = %format!("{e:#}"), "stage failed");
            failed = true;
        }
    }
    Ok(if failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
