//! `/metrics`, `/healthz`, `/readyz`, and the alert API when the alert role runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

/// What the probes look at.
#[derive(Default)]
pub struct Health {
    /// False once a stage has failed: the process should be restarted.
    pub alive: AtomicBool,
    /// One flag per stage; ready when every stage is.
    pub ready: Vec<Arc<AtomicBool>>,
}

pub fn router(
    health: Arc<Health>,
    api: Option<driftline_alerts::api::Api>,
    inbox: Option<driftline_collectors::aws_config::inbox::Inbox>,
) -> Router {
    let live = health.clone();
    let mut base = match api {
        Some(api) => driftline_alerts::api::router(api),
        None => Router::new(),
    };
    if let Some(inbox) = inbox {
        base = base.merge(driftline_collectors::aws_config::inbox::router(inbox));
    }
    base.route(
        "/metrics",
        get(|| async {
            (
                [(
                    header::CONTENT_TYPE,
                    "text/plain; version=0.0.4; charset=utf-8",
                )],
                driftline_pipeline::metrics::render(),
            )
        }),
    )
    .route(
        "/healthz",
        get(move || async move {
            if live.alive.load(Ordering::Relaxed) {
                (StatusCode::OK, "ok\n").into_response()
            } else {
                (StatusCode::SERVICE_UNAVAILABLE, "a stage failed\n").into_response()
            }
        }),
    )
    .route(
        "/readyz",
        get(move || async move {
            let ready = health.alive.load(Ordering::Relaxed)
                && health.ready.iter().all(|r| r.load(Ordering::Relaxed));
            if ready {
                (StatusCode::OK, "ready\n").into_response()
            } else {
                (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
            }
        }),
    )
}
