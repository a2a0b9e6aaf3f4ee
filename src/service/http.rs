//! `/metrics`, `/healthz`, `/readyz`, `POST /api/sql`, the alert API
//! when the alert role runs, and the push receivers (remote-write, OTLP)
//! when the collect role does.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use driftline_pipeline::auth::has_token;
use driftline_pipeline::store::{QueryLimits, Store, StoreError};
use serde_json::json;

/// What the probes look at.
#[derive(Default)]
pub struct Health {
    /// False once a stage has failed: the process should be restarted.
    pub alive: AtomicBool,
    /// One flag per stage; ready when every stage is.
    pub ready: Vec<Arc<AtomicBool>>,
}

/// What `POST /api/sql` needs.
#[derive(Clone)]
pub struct SqlApi {
    pub store: Arc<dyn Store>,
    /// Required: the store holds cost data, so without a token the
    /// endpoint answers 403.
    pub token: Option<String>,
    pub limits: QueryLimits,
}

/// `POST /api/sql`: the body is one query (as text, or `{"query": …}`);
/// the answer is a JSON array of objects keyed by column name, and
/// `X-Driftline-Truncated: true` when the row limit cut it.
async fn sql(State(api): State<SqlApi>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let error = |status: StatusCode, message: String| {
        (status, Json(json!({ "error": message }))).into_response()
    };
    let Some(token) = api.token.clone() else {
        return error(
            StatusCode::FORBIDDEN,
            "/api/sql needs an API token: set http.api_token_env's variable".into(),
        );
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if !has_token(given, None, &token) {
        return error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token".into(),
        );
    }
    // Read only once the token is checked: a request without it is told
    // so, whatever its body.
    let Ok(body) = String::from_utf8(body.to_vec()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "the query is not UTF-8 text".into(),
        );
    };
    let query = match serde_json::from_str::<serde_json::Value>(&body) {
        Ok(v) => match v["query"].as_str() {
            Some(q) => q.to_string(),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "a JSON body needs \"query\"".into(),
                );
            }
        },
        Err(_) => body,
    };
    let (store, limits) = (api.store.clone(), api.limits);
    let answer = tokio::task::spawn_blocking(move || {
        let result = store.query(&query, &limits)?;
        Ok::<_, StoreError>((result.to_json()?, result.truncated))
    })
    .await;
    match answer {
        Ok(Ok((rows, truncated))) => (
            [(
                "x-driftline-truncated",
                if truncated { "true" } else { "false" },
            )],
            Json(rows),
        )
            .into_response(),
        Ok(Err(e @ StoreError::Timeout(_))) => error(StatusCode::GATEWAY_TIMEOUT, e.to_string()),
        Ok(Err(e @ (StoreError::Refused { .. } | StoreError::Query { .. }))) => {
            error(StatusCode::BAD_REQUEST, e.to_string())
        }
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

pub fn router(
    health: Arc<Health>,
    api: Option<driftline_alerts::api::Api>,
    inbox: Option<driftline_collectors::aws_config::inbox::Inbox>,
    ingest: Option<driftline_collectors::push::Ingest>,
    sql_api: SqlApi,
) -> Router {
    let live = health.clone();
    let mut base = match api {
        Some(api) => driftline_alerts::api::router(api),
        None => Router::new(),
    };
    base = base.merge(
        Router::new()
            .route("/api/sql", post(sql))
            .with_state(sql_api),
    );
    if let Some(inbox) = inbox {
        base = base.merge(driftline_collectors::aws_config::inbox::router(inbox));
    }
    if let Some(ingest) = ingest {
        base = base
            .merge(driftline_collectors::prometheus::remote_write::router(
                ingest.clone(),
            ))
            .merge(driftline_collectors::otlp::router(ingest));
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
