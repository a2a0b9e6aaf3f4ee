//! The alert API's client, for the on-call commands (`driftline silence`,
//! `driftline remediate`), as `amtool` is Alertmanager's.

use serde_json::Value;

/// A call that did not succeed, with what the service said.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach driftline at {url} (is `driftline run` up? --url): {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{path}: HTTP {status}: {message}")]
    Refused {
        path: String,
        status: u16,
        message: String,
    },
}

/// A running driftline's alert API.
pub struct Client {
    url: String,
    token: Option<String>,
    http: reqwest::blocking::Client,
}

impl Client {
    /// `url` is the service's listen address; `token` what its
    /// `http.api_token_env` holds, if it has one.
    pub fn new(url: &str, token: Option<String>) -> Self {
        Self {
            url: url.trim_end_matches('/').to_string(),
            token: token.filter(|t| !t.is_empty()),
            http: crate::notify::http_client(),
        }
    }

    /// One request; the answer's JSON (or its text, as a JSON string).
    pub fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, ClientError> {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().map_err(|e| ClientError::Unreachable {
            url: self.url.clone(),
            reason: e.to_string(),
        })?;
        let status = resp.status();
        let text = resp.text().unwrap_or_default();
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
        if !status.is_success() {
            return Err(ClientError::Refused {
                path: path.to_string(),
                status: status.as_u16(),
                message: v["error"].as_str().unwrap_or(&text).to_string(),
            });
        }
        Ok(v)
    }
}
