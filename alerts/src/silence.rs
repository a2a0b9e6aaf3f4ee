//! Silences: label matchers with a start, an end, an author and a comment,
//! as in Alertmanager. An alert matching an active silence is not notified.

use serde::{Deserialize, Serialize};

use crate::AlertError;
use crate::labels::Matcher;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<Matcher>,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    pub created_by: String,
    pub comment: String,
    pub updated_at_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SilenceState {
    Pending,
    Active,
    Expired,
}

impl Silence {
    /// A new silence; refuses one that matches everything or has no author.
    pub fn new(
        matchers: Vec<Matcher>,
        starts_at_ms: i64,
        ends_at_ms: i64,
        created_by: &str,
        comment: &str,
        now: i64,
    ) -> Result<Self, AlertError> {
        let bad = |reason: &str| AlertError::Silence(reason.to_string());
        if matchers.is_empty() {
            return Err(bad("a silence needs at least one matcher"));
        }
        if matchers
            .iter()
            .all(|m| m.matches(&crate::labels::Labels::new()))
        {
            return Err(bad(
                "these matchers match every alert; name at least one label value",
            ));
        }
        if ends_at_ms <= starts_at_ms {
            return Err(bad("the silence must end after it starts"));
        }
        if created_by.trim().is_empty() {
            return Err(bad("say who creates the silence (--author)"));
        }
        if comment.trim().is_empty() {
            return Err(bad("say why (--comment)"));
        }
        Ok(Self {
            id: new_id(),
            matchers,
            starts_at_ms,
            ends_at_ms,
            created_by: created_by.to_string(),
            comment: comment.to_string(),
            updated_at_ms: now,
        })
    }

    pub fn state(&self, now: i64) -> SilenceState {
        if now < self.starts_at_ms {
            SilenceState::Pending
        } else if now < self.ends_at_ms {
            SilenceState::Active
        } else {
            SilenceState::Expired
        }
    }

    pub fn is_active(&self, now: i64) -> bool {
        self.state(now) == SilenceState::Active
    }
}

/// 128 random bits, hex.
pub fn new_id() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}
