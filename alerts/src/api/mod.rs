//! The alert API: `/api/alerts`, `/api/silences`, `/api/remediations`, and
//! Alertmanager's `POST /api/v2/alerts`, so Prometheus (or anything that
//! speaks to Alertmanager) can send alerts to driftline too. Changing
//! endpoints require the API token when one is configured.

pub mod client;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::labels::{Labels, parse_matchers};
use crate::{AlertError, AlertInput, Alerting, Silence};
use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use driftline_pipeline::auth::has_token;
use driftline_pipeline::{format_epoch_ms, now_ms, parse_iso8601_ms};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Clone)]
pub struct Api {
    pub alerting: Arc<Alerting>,
    /// Required bearer token for changes, when set.
    pub token: Option<String>,
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({"error": msg.into()}))).into_response()
}

fn from_alert_error(e: AlertError) -> Response {
    let status = match e {
        AlertError::NotFound(_) => StatusCode::NOT_FOUND,
        AlertError::Conflict(_) => StatusCode::CONFLICT,
        AlertError::State { .. } | AlertError::Audit(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    error(status, e.to_string())
}

/// Every request that may change something (any method but the safe
/// ones: GET, HEAD, OPTIONS, TRACE) needs the token when one is set. Checked before the body is read, so a request
/// without it is told so, whatever its body.
async fn require_token(
    State(api): State<Api>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(want) = &api.token
        && !request.method().is_safe()
    {
        let authorization = request
            .headers()
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if !has_token(authorization, None, want) {
            return error(
                StatusCode::UNAUTHORIZED,
                "this endpoint needs the API token (Authorization: Bearer …)",
            );
        }
    }
    next.run(request).await
}

pub fn router(api: Api) -> Router {
    Router::new()
        .route("/api/alerts", get(list_alerts))
        .route("/api/alerts/{fingerprint}", get(one_alert))
        .route("/api/silences", get(list_silences).post(add_silence))
        .route("/api/silences/{id}", axum::routing::delete(expire_silence))
        .route("/api/remediations", get(list_remediations))
        .route("/api/remediations/{id}/approve", post(approve))
        .route("/api/v2/alerts", post(post_alerts))
        .route_layer(axum::middleware::from_fn_with_state(
            api.clone(),
            require_token,
        ))
        .with_state(api)
}

fn alert_json(a: &crate::Alert, muted: bool) -> Value {
    json!({
        "fingerprint": a.fingerprint(),
        "state": a.state,
        "labels": a.labels(),
        "annotations": a.content.annotations,
        "details": a.content.details,
        "startsAt": format_epoch_ms(a.starts_at_ms),
        "endsAt": a.ends_at_ms.map(format_epoch_ms),
        "flapping": a.flapping,
        "muted": muted,
    })
}

async fn list_alerts(State(api): State<Api>) -> Response {
    let e = api.alerting.engine();
    let now = now_ms();
    let mut v: Vec<Value> = e
        .active_alerts()
        .map(|a| alert_json(a, e.muted(a.fingerprint(), a.labels(), now)))
        .collect();
    v.sort_by(|a, b| a["fingerprint"].as_str().cmp(&b["fingerprint"].as_str()));
    Json(v).into_response()
}

async fn one_alert(State(api): State<Api>, Path(fp): Path<String>) -> Response {
    let e = api.alerting.engine();
    match e.alert(&fp) {
        Some(a) => Json(alert_json(
            a,
            e.muted(a.fingerprint(), a.labels(), now_ms()),
        ))
        .into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no alert {fp}")),
    }
}

fn silence_json(s: &Silence, now: i64) -> Value {
    json!({
        "id": s.id,
        "matchers": s.matchers.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "startsAt": format_epoch_ms(s.starts_at_ms),
        "endsAt": format_epoch_ms(s.ends_at_ms),
        "createdBy": s.created_by,
        "comment": s.comment,
        "status": {"state": s.state(now)},
    })
}

async fn list_silences(State(api): State<Api>) -> Response {
    let now = now_ms();
    let e = api.alerting.engine();
    Json(
        e.silences()
            .iter()
            .map(|s| silence_json(s, now))
            .collect::<Vec<_>>(),
    )
    .into_response()
}

/// `{"matchers": "team=\"payments\"" | ["…"], "startsAt"?, "endsAt"? | "duration"?, "createdBy", "comment"}`
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewSilence {
    matchers: MatcherText,
    starts_at: Option<String>,
    ends_at: Option<String>,
    duration: Option<String>,
    created_by: String,
    comment: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum MatcherText {
    One(String),
    Many(Vec<String>),
}

async fn add_silence(State(api): State<Api>, body: Json<NewSilence>) -> Response {
    let now = now_ms();
    let text = match &body.matchers {
        MatcherText::One(s) => s.clone(),
        MatcherText::Many(v) => v.join(","),
    };
    let matchers = match parse_matchers(&text) {
        Ok(m) => m,
        Err(e) => return from_alert_error(e),
    };
    let time = |field: &str, v: &Option<String>| -> Result<Option<i64>, String> {
        v.as_deref()
            .map(|t| {
                parse_iso8601_ms(t).ok_or_else(|| format!("{field}: {t:?} is not an RFC 3339 time"))
            })
            .transpose()
    };
    let starts = match time("startsAt", &body.starts_at) {
        Ok(t) => t.unwrap_or(now),
        Err(r) => return error(StatusCode::BAD_REQUEST, r),
    };
    let ends = match (time("endsAt", &body.ends_at), &body.duration) {
        (Err(r), _) => return error(StatusCode::BAD_REQUEST, r),
        (Ok(Some(t)), _) => t,
        (Ok(None), Some(d)) => match crate::labels::duration::parse(d) {
            Ok(d) => match i64::try_from(d.as_millis())
                .ok()
                .and_then(|d| starts.checked_add(d))
            {
                Some(ends) => ends,
                None => return error(StatusCode::BAD_REQUEST, "duration: too long"),
            },
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("duration: {e}")),
        },
        (Ok(None), None) => return error(StatusCode::BAD_REQUEST, "give endsAt or duration"),
    };
    let s = match Silence::new(matchers, starts, ends, &body.created_by, &body.comment, now) {
        Ok(s) => s,
        Err(e) => return from_alert_error(e),
    };
    let id = s.id.clone();
    match api.alerting.add_silence(s) {
        Ok(()) => (StatusCode::OK, Json(json!({"silenceID": id}))).into_response(),
        Err(e) => from_alert_error(e),
    }
}

async fn expire_silence(State(api): State<Api>, Path(id): Path<String>) -> Response {
    match api.alerting.expire_silence(&id, now_ms()) {
        Ok(true) => Json(json!({"expired": id})).into_response(),
        Ok(false) => error(StatusCode::NOT_FOUND, format!("no silence {id}")),
        Err(e) => from_alert_error(e),
    }
}

async fn list_remediations(State(api): State<Api>) -> Response {
    Json(api.alerting.proposals()).into_response()
}

#[derive(Deserialize)]
struct Approval {
    approver: String,
}

async fn approve(State(api): State<Api>, Path(id): Path<String>, body: Json<Approval>) -> Response {
    if body.approver.trim().is_empty() {
        return error(StatusCode::BAD_REQUEST, "approver: say who approves");
    }
    let alerting = api.alerting.clone();
    let approver = body.approver.clone();
    // Hooks run programs (terraform apply): off the async workers.
    match tokio::task::spawn_blocking(move || alerting.approve(&id, &approver)).await {
        Ok(Ok(p)) => Json(p).into_response(),
        Ok(Err(e)) => from_alert_error(e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// One alert in Alertmanager's `postableAlert` shape.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostableAlert {
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    starts_at: Option<String>,
    ends_at: Option<String>,
}

async fn post_alerts(State(api): State<Api>, body: Json<Vec<PostableAlert>>) -> Response {
    let now = now_ms();
    let mut inputs = Vec::new();
    for (i, a) in body.0.into_iter().enumerate() {
        if a.labels.is_empty() {
            return error(
                StatusCode::BAD_REQUEST,
                format!("[{i}].labels: an alert needs labels"),
            );
        }
        // Alertmanager refuses a time it cannot read; so does driftline,
        // rather than take it for now or for never.
        let time = |field: &str, t: Option<&str>| match t {
            None => Ok(None),
            Some(t) => parse_iso8601_ms(t)
                .map(Some)
                .ok_or_else(|| format!("[{i}].{field}: {t:?} is not an RFC 3339 time")),
        };
        let (starts, ends) = match (
            time("startsAt", a.starts_at.as_deref()),
            time("endsAt", a.ends_at.as_deref()),
        ) {
            (Ok(s), Ok(e)) => (s.unwrap_or(now), e),
            (Err(r), _) | (_, Err(r)) => return error(StatusCode::BAD_REQUEST, r),
        };
        let labels: Labels = a.labels;
        inputs.push(AlertInput {
            fingerprint: crate::labels::fingerprint(&labels),
            labels,
            annotations: a.annotations,
            details: Value::Null,
            firing: ends.is_none_or(|e| e > now),
            // Posts carry no event time; arrival order is the order.
            at_ms: now.max(starts),
        });
    }
    match tokio::task::spawn_blocking(move || api.alerting.apply(inputs, now)).await {
        Ok(Ok(())) => StatusCode::OK.into_response(),
        Ok(Err(e)) => from_alert_error(e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
