//! The AWS Config inbox, `POST /aws-config/notifications`: change
//! notifications pushed by SNS or EventBridge, read by `notifications.rs`
//! and put straight onto the bus. The service mounts this router on its
//! listener.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use driftline_pipeline::BusSink;
use driftline_pipeline::auth::has_token;

use super::notifications::{Handled, NotificationError, NotificationReceiver};

#[derive(Clone)]
pub struct Inbox {
    pub receiver: Arc<NotificationReceiver>,
    pub sink: Arc<BusSink>,
}

pub fn router(inbox: Inbox) -> Router {
    Router::new()
        .route("/aws-config/notifications", post(receive))
        .with_state(inbox)
}

async fn receive(
    State(inbox): State<Inbox>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    if let Some(token) = inbox.receiver.token() {
        let in_query = query.get("token").map(String::as_str);
        let authorization = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if !has_token(authorization, in_query, &token) {
            return (
                StatusCode::UNAUTHORIZED,
                "a valid token is required\n".to_string(),
            );
        }
    }
    // Confirmation and completion calls block: keep them off the workers.
    let r = tokio::task::spawn_blocking(move || inbox.receiver.handle(&body, &*inbox.sink)).await;
    match r {
        Ok(Ok(Handled::Published(n))) => (StatusCode::OK, format!("published {n}\n")),
        Ok(Ok(Handled::Confirmed { topic })) => (
            StatusCode::OK,
            format!("subscription to {topic} confirmed\n"),
        ),
        Ok(Ok(Handled::Ignored(why))) => (StatusCode::OK, format!("ignored: {why}\n")),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "notification rejected");
            let status = match e {
                // A bad message will not get better: 400 stops SNS retrying.
                NotificationError::Invalid(_) => StatusCode::BAD_REQUEST,
                NotificationError::Refused(_) => StatusCode::FORBIDDEN,
                NotificationError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            };
            (status, format!("{e}\n"))
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    }
}
