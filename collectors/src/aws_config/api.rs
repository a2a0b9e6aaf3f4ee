//! Talking to the AWS Config API: clients built from the standard AWS
//! environment, a client-side request budget per account and region, the
//! SDK's retries, per-call metrics, and errors that name the call, the
//! region and the reason.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::metrics::metrics;
use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_config::error::{DisplayErrorContext, ProvideErrorMetadata};
use serde::Deserialize;

/// `[aws_config]` in driftline.toml: where and how to read AWS Config.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AwsConfigSettings {
    /// Regions to read, each with its own client and budget. Empty: the
    /// region of the standard AWS environment (`AWS_REGION`, the profile).
    pub regions: Vec<String>,
    /// Read every account and region through this configuration aggregator
    /// instead (ListAggregateDiscoveredResources / BatchGetAggregateResourceConfig).
    pub aggregator: Option<String>,
    /// Config resource types to inventory. Empty: every type driftline maps.
    pub resource_types: Vec<String>,
    /// Endpoint override (a VPC endpoint, a test peer). `AWS_ENDPOINT_URL`
    /// works too, as in the AWS CLI.
    pub endpoint_url: Option<String>,
    /// A named profile from ~/.aws/config (else `AWS_PROFILE`, else default).
    pub profile: Option<String>,
    /// Client-side budget: API calls per second per account and region. AWS
    /// Config's quotas are shared with everything else in the account, so
    /// the default is deliberately low.
    pub requests_per_second: f64,
    /// Calls that may go at once after an idle spell.
    pub burst: u32,
    /// Attempts per call, first included (throttling and transient errors
    /// are retried with exponential backoff and jitter).
    pub max_attempts: u32,
    /// Seconds between incremental passes in `driftline run`.
    pub poll_interval_secs: u64,
    /// The push endpoint for change notifications (`driftline run`).
    pub notifications: NotificationSettings,
}

impl Default for AwsConfigSettings {
    fn default() -> Self {
        Self {
            regions: Vec::new(),
            aggregator: None,
            resource_types: Vec::new(),
            endpoint_url: None,
            profile: None,
            requests_per_second: 2.0,
            burst: 5,
            max_attempts: 5,
            poll_interval_secs: 300,
            notifications: Default::default(),
        }
    }
}

/// `[aws_config.notifications]` in driftline.toml.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NotificationSettings {
    /// Serve `POST /aws-config/notifications` on the service's listener.
    pub enabled: bool,
    /// Environment variable holding a shared token the sender must present
    /// (`?token=…` in the subscription URL, or `Authorization: Bearer …`).
    pub token_env: Option<String>,
    /// SNS topics accepted (`*` matches any run of characters, e.g.
    /// `arn:aws:sns:*:123456789012:*`); empty accepts any.
    pub topic_arns: Vec<String>,
    /// Hosts a SubscribeURL may point at (`*` matches one DNS label).
    pub subscribe_url_hosts: Vec<String>,
}

impl Default for NotificationSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            token_env: None,
            topic_arns: Vec::new(),
            subscribe_url_hosts: vec![
                "sns.*.amazonaws.com".into(),
                "sns.*.amazonaws.com.cn".into(),
            ],
        }
    }
}

/// A setting that cannot work, named by its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct SettingError {
    pub key: String,
    pub reason: String,
}

impl AwsConfigSettings {
    /// Checks every field; `prefix` is where the section sits (`aws_config`).
    pub fn validate(&self, prefix: &str) -> Result<(), SettingError> {
        let err = |key: &str, reason: String| SettingError {
            key: format!("{prefix}.{key}"),
            reason,
        };
        if !(self.requests_per_second.is_finite() && self.requests_per_second > 0.0) {
            return Err(err(
                "requests_per_second",
                format!(
                    "must be a positive number, not {}",
                    self.requests_per_second
                ),
            ));
        }
        if self.burst == 0 {
            return Err(err("burst", "must be at least 1".into()));
        }
        if self.max_attempts == 0 {
            return Err(err("max_attempts", "must be at least 1".into()));
        }
        if self.poll_interval_secs == 0 {
            return Err(err("poll_interval_secs", "must be at least 1".into()));
        }
        for (i, r) in self.regions.iter().enumerate() {
            if !is_region_name(r) {
                return Err(err(
                    &format!("regions[{i}]"),
                    format!("{r:?} is not an AWS region name (like eu-west-1)"),
                ));
            }
        }
        for (i, t) in self.resource_types.iter().enumerate() {
            if !t.starts_with("AWS::") || t.split("::").count() != 3 {
                return Err(err(
                    &format!("resource_types[{i}]"),
                    format!("{t:?} is not an AWS Config resource type (like AWS::S3::Bucket)"),
                ));
            }
        }
        if let Some(a) = &self.aggregator
            && a.trim().is_empty()
        {
            return Err(err("aggregator", "is empty".into()));
        }
        if let Some(v) = &self.notifications.token_env
            && v.trim().is_empty()
        {
            return Err(err("notifications.token_env", "is empty".into()));
        }
        if let Some(u) = &self.endpoint_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            return Err(err("endpoint_url", format!("{u:?} is not an http(s) URL")));
        }
        Ok(())
    }
}

fn is_region_name(r: &str) -> bool {
    let parts: Vec<&str> = r.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| !p.is_empty())
        && r.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && parts
            .last()
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
}

/// Loads the shared AWS configuration the way the AWS CLI does (environment,
/// profile, credentials chain), with this section's overrides.
pub async fn load_sdk_config(
    profile: Option<&str>,
    region: Option<&str>,
    endpoint_url: Option<&str>,
    max_attempts: u32,
) -> SdkConfig {
    let retry = RetryConfig::standard()
        .with_max_attempts(max_attempts.max(1))
        .with_initial_backoff(Duration::from_millis(200))
        .with_max_backoff(Duration::from_secs(20));
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).retry_config(retry);
    if let Some(p) = profile {
        loader = loader.profile_name(p);
    }
    if let Some(r) = region {
        loader = loader.region(Region::new(r.to_string()));
    }
    if let Some(e) = endpoint_url {
        loader = loader.endpoint_url(e);
    }
    loader.load().await
}

/// A client-side token bucket: `rate` calls per second, up to `burst` at
/// once. One per account and region, shared by every call made there.
#[derive(Debug)]
pub struct Budget {
    rate: f64,
    burst: f64,
    state: tokio::sync::Mutex<(f64, Instant)>,
    label: (String, String),
}

impl Budget {
    pub fn new(rate: f64, burst: u32, api: &str, region: &str) -> Self {
        Self {
            rate,
            burst: f64::from(burst.max(1)),
            state: tokio::sync::Mutex::new((f64::from(burst.max(1)), Instant::now())),
            label: (api.to_string(), region.to_string()),
        }
    }

    /// Waits for one call's worth of budget.
    pub async fn acquire(&self) {
        // The lock is held across the sleep on purpose: callers queue in order.
        let mut s = self.state.lock().await;
        let now = Instant::now();
        s.0 = (s.0 + now.duration_since(s.1).as_secs_f64() * self.rate).min(self.burst);
        s.1 = now;
        if s.0 < 1.0 {
            let wait = Duration::from_secs_f64((1.0 - s.0) / self.rate);
            tokio::time::sleep(wait).await;
            metrics()
                .cloud_api_budget_wait
                .with_label_values(&[&self.label.0, &self.label.1])
                .inc_by(wait.as_millis() as u64);
            s.0 = 1.0;
            s.1 = Instant::now();
        }
        s.0 -= 1.0;
    }
}

/// Why an AWS call failed, with the call and region named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error(
        "{call} in {region}: access denied ({code}): {message}. The credentials need config:{call} (the AWS managed policy AWS_ConfigRole or ReadOnlyAccess covers it)"
    )]
    AccessDenied {
        call: &'static str,
        region: String,
        code: String,
        message: String,
    },
    #[error(
        "{call} in {region}: still throttled after the retries ({code}): {message}. Lower aws_config.requests_per_second or raise the account's Config quota"
    )]
    Throttled {
        call: &'static str,
        region: String,
        code: String,
        message: String,
    },
    #[error(
        "{region}: AWS Config has no configuration recorder here, so there is nothing to read. Set one up (aws configservice put-configuration-recorder) or remove {region} from aws_config.regions"
    )]
    NoRecorder { region: String },
    #[error(
        "{region}: the configuration recorder {name} is not recording, so what AWS Config holds here is out of date. Start it (aws configservice start-configuration-recorder --configuration-recorder-name {name})"
    )]
    NotRecording { region: String, name: String },
    #[error("{call} in {region}: {reason}")]
    Call {
        call: &'static str,
        region: String,
        reason: String,
    },
}

impl ApiError {
    /// Classifies an SDK error; never includes credentials (the SDK's
    /// error text carries codes, messages and request ids only).
    pub fn from_sdk<E, R>(
        call: &'static str,
        region: &str,
        e: &aws_sdk_config::error::SdkError<E, R>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let code = e.code().unwrap_or_default().to_string();
        let message = e.message().unwrap_or_default().to_string();
        let region = region.to_string();
        match code.as_str() {
            "AccessDeniedException"
            | "AccessDenied"
            | "UnrecognizedClientException"
            | "InvalidClientTokenId"
            | "ExpiredTokenException"
            | "InvalidSignatureException" => ApiError::AccessDenied {
                call,
                region,
                code,
                message,
            },
            "ThrottlingException"
            | "Throttling"
            | "ThrottledException"
            | "TooManyRequestsException"
            | "RequestLimitExceeded" => ApiError::Throttled {
                call,
                region,
                code,
                message,
            },
            "" => ApiError::Call {
                call,
                region,
                reason: DisplayErrorContext(e).to_string(),
            },
            _ => ApiError::Call {
                call,
                region,
                reason: format!("{code}: {message}"),
            },
        }
    }

    /// The reason in a source status, short enough for an alert label:
    /// `AccessDeniedException on ListDiscoveredResources`.
    pub fn status_reason(&self) -> String {
        match self {
            ApiError::AccessDenied { call, code, .. } => format!("{code} on {call}"),
            ApiError::Throttled { call, code, .. } => {
                format!("{code} on {call} (still throttled after the retries)")
            }
            ApiError::NoRecorder { .. } => "no configuration recorder".into(),
            ApiError::NotRecording { name, .. } => {
                format!("configuration recorder {name} is not recording")
            }
            ApiError::Call { call, reason, .. } => format!("{call} failed: {reason}"),
        }
    }

    /// The metric's outcome label.
    pub fn outcome(&self) -> &'static str {
        match self {
            ApiError::Throttled { .. } => "throttled",
            ApiError::AccessDenied { .. } => "denied",
            _ => "error",
        }
    }
}

/// One place API calls go through: budget first, then the call, then the
/// metric (one count per logical call; the SDK's own retries are inside).
pub async fn call<T, E, R, F>(
    budget: &Arc<Budget>,
    api: &str,
    operation: &'static str,
    region: &str,
    f: F,
) -> Result<T, ApiError>
where
    F: std::future::Future<Output = Result<T, aws_sdk_config::error::SdkError<E, R>>>,
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    budget.acquire().await;
    let r = f
        .await
        .map_err(|e| ApiError::from_sdk(operation, region, &e));
    let outcome = match &r {
        Ok(_) => "ok",
        Err(e) => e.outcome(),
    };
    metrics()
        .cloud_api_calls
        .with_label_values(&[api, operation, region, outcome])
        .inc();
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_errors_name_the_key() {
        let ok = AwsConfigSettings::default();
        assert_eq!(ok.validate("aws_config"), Ok(()));
        let s = AwsConfigSettings {
            regions: vec!["us-east-1".into(), "Frankfurt".into()],
            ..Default::default()
        };
        let e = s.validate("aws_config").unwrap_err();
        assert_eq!(e.key, "aws_config.regions[1]");
        let s = AwsConfigSettings {
            requests_per_second: 0.0,
            ..Default::default()
        };
        assert_eq!(
            s.validate("aws_config").unwrap_err().key,
            "aws_config.requests_per_second"
        );
        let s = AwsConfigSettings {
            resource_types: vec!["S3 bucket".into()],
            ..Default::default()
        };
        assert_eq!(s.validate("x").unwrap_err().key, "x.resource_types[0]");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn budget_spaces_calls_after_the_burst() {
        let b = Budget::new(20.0, 3, "config", "test-region-1");
        let t0 = Instant::now();
        for _ in 0..7 {
            b.acquire().await;
        }
        // 3 at once, then 4 more at 20/s: at least 0.2 s (a lower bound:
        // a busy machine only makes it longer).
        let took = t0.elapsed().as_secs_f64();
        assert!(took >= 0.19, "{took}");
    }
}
