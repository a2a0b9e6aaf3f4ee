//! Whether a source has a current, complete reading of what it covers.
//!
//! A declared resource that nobody could look for is not `missing`, and an
//! observed resource whose state file could not be read is not `unmanaged`:
//! unknown is not drift. So every collector says, next to its snapshots,
//! which scope it read and whether that worked — a status per source
//! (a region of AWS Config, a file, a state location). Statuses travel on
//! the snapshot topic of their side, keyed `source-status/{source}`, and are
//! written to **every** partition: each detector instance then learns of an
//! outage or a recovery in order with the snapshots of its own partitions
//! (a recovered region's items arrive before the status that says it is
//! read again), like a watermark.

use serde::{Deserialize, Serialize};

use crate::bus::topic::Topic;
use crate::model::UNKNOWN;

/// Key prefix of status messages on the snapshot topics.
pub const STATUS_KEY_PREFIX: &str = "source-status/";

/// The key of a source's status message.
pub fn status_key(source: &str) -> String {
    format!("{STATUS_KEY_PREFIX}{source}")
}

/// Whether a message key is a status key (not a resource key).
pub fn is_status_key(key: &str) -> bool {
    key.starts_with(STATUS_KEY_PREFIX)
}

/// Which side of the drift comparison a source feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceSide {
    Declared,
    Observed,
}

impl SourceSide {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceSide::Declared => "declared",
            SourceSide::Observed => "observed",
        }
    }

    /// The snapshot topic this side's records (and statuses) travel on.
    pub fn topic(self) -> Topic {
        match self {
            SourceSide::Declared => Topic::Declared,
            SourceSide::Observed => Topic::Config,
        }
    }
}

/// Which resource types a source observes: every type (`only_types`
/// unset) less `excluded_types`, or only `only_types` — an AWS Config
/// recorder's recording group, for one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeSet {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_types: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_types: Vec<String>,
}

impl TypeSet {
    pub fn records_type(&self, resource_type: &str) -> bool {
        self.only_types
            .as_ref()
            .is_none_or(|only| only.iter().any(|t| t == resource_type))
            && !self.excluded_types.iter().any(|t| t == resource_type)
    }

    /// Every type.
    pub fn is_all(&self) -> bool {
        self.only_types.is_none() && self.excluded_types.is_empty()
    }

    /// What several sets observe together: every type one of them does.
    pub fn union(sets: Vec<TypeSet>) -> TypeSet {
        let included: Vec<String> = sets
            .iter()
            .filter_map(|g| g.only_types.clone())
            .flatten()
            .collect();
        let mut broad = sets.iter().filter(|g| g.only_types.is_none());
        let Some(first) = broad.next() else {
            return TypeSet {
                only_types: Some(included),
                excluded_types: Vec::new(),
            };
        };
        let mut excluded = first.excluded_types.clone();
        for g in broad {
            excluded.retain(|t| g.excluded_types.contains(t));
        }
        excluded.retain(|t| !included.contains(t));
        TypeSet {
            only_types: None,
            excluded_types: excluded,
        }
    }
}

/// What one source could read of its scope, as of `checked_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceStatus {
    pub side: SourceSide,
    /// `aws-config://us-east-1`, a file path, `s3://…`.
    pub source: String,
    /// The account and region the source covers; `-` covers any.
    pub account: String,
    pub region: String,
    /// The last read succeeded and is complete.
    pub up: bool,
    /// Why it is not up: `region us-east-1: no configuration recorder`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The resource types observed while up.
    #[serde(flatten)]
    pub types: TypeSet,
    /// The last successful read (ms). A source that is down but was read
    /// before is stale: its last reading is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ok_ms: Option<i64>,
    pub checked_ms: i64,
}

impl SourceStatus {
    /// A source read completely just now.
    pub fn up(side: SourceSide, source: impl Into<String>, now_ms: i64) -> Self {
        Self {
            side,
            source: source.into(),
            account: UNKNOWN.into(),
            region: UNKNOWN.into(),
            up: true,
            reason: None,
            types: TypeSet::default(),
            last_ok_ms: Some(now_ms),
            checked_ms: now_ms,
        }
    }

    /// A source that could not be read.
    pub fn down(
        side: SourceSide,
        source: impl Into<String>,
        reason: impl Into<String>,
        last_ok_ms: Option<i64>,
        now_ms: i64,
    ) -> Self {
        Self {
            up: false,
            reason: Some(reason.into()),
            last_ok_ms,
            ..Self::up(side, source, now_ms)
        }
    }

    pub fn in_scope(mut self, account: &str, region: &str) -> Self {
        self.account = if account.is_empty() { UNKNOWN } else { account }.into();
        self.region = if region.is_empty() { UNKNOWN } else { region }.into();
        self
    }

    pub fn key(&self) -> String {
        status_key(&self.source)
    }

    /// Whether this source covers `(account, region)`; `-` on either side
    /// matches anything.
    pub fn covers(&self, account: &str, region: &str) -> bool {
        let m = |a: &str, b: &str| a == UNKNOWN || b == UNKNOWN || a.is_empty() || a == b;
        m(&self.account, account) && m(&self.region, region)
    }

    /// Down, with an earlier reading kept.
    pub fn is_stale(&self) -> bool {
        !self.up && self.last_ok_ms.is_some()
    }

    /// What a person reads: `down (reason), stale for 5m` or `up`.
    pub fn describe(&self, now_ms: i64) -> String {
        if self.up {
            return "up".into();
        }
        let reason = self.reason.as_deref().unwrap_or("unreadable");
        match self.last_ok_ms {
            Some(at) => format!(
                "{reason}; last read {} ago (kept, stale)",
                human_age(now_ms - at)
            ),
            None => format!("{reason}; never read"),
        }
    }

    /// Equal but for when it was checked: a status worth publishing again.
    pub fn same_as(&self, other: &SourceStatus) -> bool {
        let strip = |s: &SourceStatus| SourceStatus {
            checked_ms: 0,
            last_ok_ms: if s.up { None } else { s.last_ok_ms },
            ..s.clone()
        };
        strip(self) == strip(other)
    }
}

/// `90061000` → `1d1h`; `42000` → `42s`.
pub fn human_age(ms: i64) -> String {
    let s = (ms / 1000).max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{}h", s / 86_400, s % 86_400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_and_types() {
        let s = SourceStatus::up(SourceSide::Observed, "aws-config://us-east-1", 0)
            .in_scope("", "us-east-1");
        assert!(s.covers("123", "us-east-1") && s.covers("-", "-"));
        assert!(!s.covers("123", "eu-west-1"));
        let mut s = s;
        s.types.excluded_types = vec!["AWS::SQS::Queue".into()];
        let t = &s.types;
        assert!(!t.records_type("AWS::SQS::Queue") && t.records_type("AWS::S3::Bucket"));
        s.types.only_types = Some(vec!["AWS::IAM::Role".into()]);
        assert!(!s.types.records_type("AWS::S3::Bucket"));
        assert!(is_status_key(&s.key()) && !is_status_key("aws/1/r/T/x"));
    }

    #[test]
    fn staleness_and_sameness() {
        let up = SourceStatus::up(SourceSide::Declared, "a.tfstate", 1_000);
        let later = SourceStatus::up(SourceSide::Declared, "a.tfstate", 9_000);
        assert!(up.same_as(&later));
        let down = SourceStatus::down(
            SourceSide::Declared,
            "a.tfstate",
            "bad JSON",
            Some(1_000),
            61_000,
        );
        assert!(down.is_stale() && !down.same_as(&up));
        assert_eq!(
            down.describe(61_000),
            "bad JSON; last read 1m0s ago (kept, stale)"
        );
        assert_eq!(human_age(90_061_000), "1d1h");
    }
}
