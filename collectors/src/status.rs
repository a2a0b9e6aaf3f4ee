//! What a collector last said about its sources (see
//! `driftline_pipeline::source_status`): statuses are published when they
//! change, not every pass, and a source that is no longer watched has its
//! status removed.

use std::collections::BTreeMap;

use driftline_pipeline::{Record, SourceSide, SourceStatus, status_key};

use crate::metrics::metrics;

/// The statuses one collector has published, by source.
pub struct StatusBoard {
    side: SourceSide,
    published: BTreeMap<String, SourceStatus>,
}

impl StatusBoard {
    pub fn new(side: SourceSide) -> Self {
        Self {
            side,
            published: BTreeMap::new(),
        }
    }

    pub fn side(&self) -> SourceSide {
        self.side
    }

    /// When `source` was last read successfully, as far as this board knows.
    pub fn last_ok(&self, source: &str) -> Option<i64> {
        self.published.get(source).and_then(|s| s.last_ok_ms)
    }

    /// A down status for `source` that keeps the time of its last good read.
    pub fn down(&self, source: &str, reason: impl Into<String>, now_ms: i64) -> SourceStatus {
        SourceStatus::down(self.side, source, reason, self.last_ok(source), now_ms)
    }

    /// Takes this pass's statuses, one for every source the collector has
    /// (a source not named is gone), and returns the records to publish:
    /// changed statuses, and removals.
    pub fn update(&mut self, statuses: Vec<SourceStatus>) -> Vec<Record> {
        let mut out = Vec::new();
        let mut named = std::collections::HashSet::new();
        for s in statuses {
            named.insert(s.source.clone());
            let old = self.published.get(&s.source);
            if let Some(old) = old
                && (old.account != s.account || old.region != s.region)
            {
                // Its scope is better known now: one series per source.
                clear_gauges(old);
            }
            set_gauges(&s);
            let changed = old.is_none_or(|old| !old.same_as(&s));
            if changed {
                if s.up {
                    tracing::info!(source = %s.source, side = s.side.as_str(), "source read");
                } else {
                    tracing::warn!(source = %s.source, side = s.side.as_str(), reason = s.reason.as_deref().unwrap_or(""), stale = s.is_stale(), "source cannot be read; not taken as drift");
                }
                out.push(Record::Status(Box::new(s.clone())));
            }
            self.published.insert(s.source.clone(), s);
        }
        let gone: Vec<String> = self
            .published
            .keys()
            .filter(|k| !named.contains(*k))
            .cloned()
            .collect();
        for source in gone {
            if let Some(s) = self.published.remove(&source) {
                clear_gauges(&s);
            }
            out.push(Record::Deleted {
                key: status_key(&source),
            });
        }
        out
    }

    /// Forgets what was published (the publish failed): the next update
    /// publishes every status again.
    pub fn forget(&mut self) {
        self.published.clear();
    }
}

fn clear_gauges(s: &SourceStatus) {
    let labels = [s.source.as_str(), s.account.as_str(), s.region.as_str()];
    let _ = metrics().source_up.remove_label_values(&labels);
    let _ = metrics().source_stale_seconds.remove_label_values(&labels);
}

fn set_gauges(s: &SourceStatus) {
    let labels = [s.source.as_str(), s.account.as_str(), s.region.as_str()];
    metrics()
        .source_up
        .with_label_values(&labels)
        .set(i64::from(s.up));
    match (s.up, s.last_ok_ms) {
        (false, Some(at)) => metrics()
            .source_stale_seconds
            .with_label_values(&labels)
            .set((s.checked_ms - at).max(0) / 1000),
        _ => {
            let _ = metrics().source_stale_seconds.remove_label_values(&labels);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishes_changes_and_removals_only() {
        let mut b = StatusBoard::new(SourceSide::Observed);
        let up = |t| SourceStatus::up(SourceSide::Observed, "aws-config://eu-west-1", t);
        assert_eq!(b.update(vec![up(1)]).len(), 1);
        assert!(b.update(vec![up(2)]).is_empty(), "same status, later");
        let down = b.down("aws-config://eu-west-1", "AccessDenied", 5);
        assert_eq!(down.last_ok_ms, Some(2), "keeps the last good read");
        assert_eq!(b.update(vec![down]).len(), 1);
        let gone = b.update(Vec::new());
        assert!(
            matches!(&gone[..], [Record::Deleted { key }] if key == "source-status/aws-config://eu-west-1")
        );
    }
}
