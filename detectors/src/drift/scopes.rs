//! Unknown is not drift: which scopes the sources could read, and the
//! check every resource goes through before it may be called `missing`,
//! `changed` or `unmanaged`.
//!
//! - A declared resource is compared only when its scope (account, region,
//!   resource type) is observed: some observed source that covers it is up
//!   and records its type, and none that covers it is down.
//! - An observed resource is called unmanaged only when every declared
//!   source has been read at least once (a state kept from its last good
//!   read still counts: its resources are still declared).
//! - When no source reports a status at all (records produced by another
//!   tool), the data is taken as complete.

use std::collections::{BTreeMap, HashMap};

use driftline_pipeline::model::UNKNOWN;
use driftline_pipeline::{
    Finding, FindingClass, SourceSide, SourceStatus, fingerprint, status_key,
};
use serde::Serialize;

/// A scope that could not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Unobserved {
    pub side: SourceSide,
    /// The source that could not read it (`-` when no source covers it).
    pub source: String,
    pub account: String,
    pub region: String,
    /// Set when only this type is not observed (not recorded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    pub reason: String,
}

impl Unobserved {
    fn from_status(s: &SourceStatus, resource_type: Option<&str>, reason: String) -> Self {
        Self {
            side: s.side,
            source: s.source.clone(),
            account: s.account.clone(),
            region: s.region.clone(),
            resource_type: resource_type.map(String::from),
            reason,
        }
    }

    /// `region us-east-1: no configuration recorder` and the like.
    fn down(s: &SourceStatus) -> Self {
        let reason = s.reason.clone().unwrap_or_else(|| "unreadable".into());
        Self::from_status(s, None, reason)
    }
}

/// The latest status of every source, with an index for the per-resource
/// check (a scan asks once per declared resource).
#[derive(Debug, Clone, Default)]
pub struct SourceStatuses {
    by_source: BTreeMap<String, SourceStatus>,
    index: Index,
}

#[derive(Debug, Clone, Default)]
struct Index {
    observed_down: Vec<SourceStatus>,
    /// Up observed sources covering any region.
    up_anywhere: Vec<SourceStatus>,
    up_by_region: HashMap<String, Vec<SourceStatus>>,
    any_observed: bool,
    declared_never_read: Vec<SourceStatus>,
    /// Something is down, unread or left out somewhere (the default, no
    /// status at all, has none).
    blind_spots: bool,
}

impl SourceStatuses {
    pub fn from_statuses(statuses: impl IntoIterator<Item = SourceStatus>) -> Self {
        let mut s = Self::default();
        for st in statuses {
            s.by_source.insert(st.source.clone(), st);
        }
        s.reindex();
        s
    }

    /// Takes a source's latest status (`None`: the source is gone).
    /// Returns whether anything changed.
    pub fn set(&mut self, source: &str, status: Option<SourceStatus>) -> bool {
        let changed = match status {
            Some(s) => self.by_source.insert(source.to_string(), s.clone()) != Some(s),
            None => self.by_source.remove(source).is_some(),
        };
        if changed {
            self.reindex();
        }
        changed
    }

    pub fn is_empty(&self) -> bool {
        self.by_source.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &SourceStatus> {
        self.by_source.values()
    }

    fn reindex(&mut self) {
        let mut ix = Index::default();
        for s in self.by_source.values() {
            match s.side {
                SourceSide::Observed => {
                    ix.any_observed = true;
                    if !s.up {
                        ix.observed_down.push(s.clone());
                    } else if s.region == UNKNOWN {
                        ix.up_anywhere.push(s.clone());
                    } else {
                        ix.up_by_region
                            .entry(s.region.clone())
                            .or_default()
                            .push(s.clone());
                    }
                }
                SourceSide::Declared => {
                    if !s.up && s.last_ok_ms.is_none() {
                        ix.declared_never_read.push(s.clone());
                    }
                }
            }
        }
        let unrestricted = |s: &SourceStatus| s.account == UNKNOWN && s.types.is_all();
        ix.blind_spots = !(ix.declared_never_read.is_empty()
            && (!ix.any_observed
                || (ix.observed_down.is_empty()
                    && ix.up_by_region.is_empty()
                    && ix.up_anywhere.iter().all(unrestricted))));
        self.index = ix;
    }

    /// Whether every scope is observed, whatever its account, region or
    /// type: no source is down, each observed source covers any region and
    /// records every type, and every state has been read once.
    pub fn sees_everything(&self) -> bool {
        !self.index.blind_spots
    }

    /// Why `(account, region, resource_type)` is not observed, if it is not.
    pub fn unobserved(
        &self,
        account: &str,
        region: &str,
        resource_type: &str,
    ) -> Option<Unobserved> {
        let ix = &self.index;
        if !ix.any_observed {
            return None;
        }
        if let Some(down) = ix.observed_down.iter().find(|s| s.covers(account, region)) {
            return Some(Unobserved::down(down));
        }
        let by_region: &[SourceStatus] = if region == UNKNOWN || region.is_empty() {
            &[]
        } else {
            ix.up_by_region.get(region).map_or(&[], Vec::as_slice)
        };
        let mut candidates = ix
            .up_anywhere
            .iter()
            .chain(by_region)
            .chain(
                // A resource whose region nobody knows is covered by any region.
                (region == UNKNOWN || region.is_empty())
                    .then(|| ix.up_by_region.values().flatten())
                    .into_iter()
                    .flatten(),
            )
            .filter(|s| s.covers(account, region))
            .peekable();
        let Some(first) = candidates.peek().copied() else {
            return Some(Unobserved {
                side: SourceSide::Observed,
                source: UNKNOWN.into(),
                account: if account.is_empty() { UNKNOWN } else { account }.into(),
                region: if region.is_empty() { UNKNOWN } else { region }.into(),
                resource_type: None,
                reason: format!("region {region}: no source observes it"),
            });
        };
        if candidates.any(|s| s.types.records_type(resource_type)) {
            return None;
        }
        Some(Unobserved::from_status(
            first,
            Some(resource_type),
            format!("type {resource_type} not recorded"),
        ))
    }

    /// The first declared source never read, if one was not: until every
    /// state was read once, nothing observed is known to be unmanaged.
    pub fn declared_unread(&self) -> Option<Unobserved> {
        self.index.declared_never_read.first().map(Unobserved::down)
    }

    /// Every source that is down, by source.
    pub fn down(&self) -> impl Iterator<Item = &SourceStatus> {
        self.by_source.values().filter(|s| !s.up)
    }

    /// Every source that is down, and every other scope something was
    /// withheld in, with how many resources (`withheld`).
    pub fn report(&self, withheld: &BTreeMap<Unobserved, usize>) -> Vec<UnobservedScope> {
        let now = driftline_pipeline::now_ms();
        let mut out: Vec<UnobservedScope> = Vec::new();
        let mut listed = std::collections::HashSet::new();
        for s in self.down() {
            let scope = Unobserved::down(s);
            listed.insert(scope.clone());
            out.push(UnobservedScope {
                affected: withheld.get(&scope).copied().unwrap_or(0),
                source_up: false,
                status: s.describe(now),
                scope,
            });
        }
        for (scope, n) in withheld {
            if !listed.contains(scope) {
                out.push(UnobservedScope {
                    scope: scope.clone(),
                    affected: *n,
                    source_up: true,
                    status: "up".into(),
                });
            }
        }
        out
    }

    /// One `source_unavailable` finding per source that is down, by source.
    pub fn unavailable_findings(&self) -> BTreeMap<String, Finding> {
        self.down()
            .map(|s| (s.source.clone(), source_unavailable(s)))
            .collect()
    }
}

/// The one finding that stands for a source that cannot be read: on-call
/// gets one page for the outage, not one per resource it hides.
pub fn source_unavailable(s: &SourceStatus) -> Finding {
    let reason = s.reason.clone().unwrap_or_else(|| "unreadable".into());
    let effect = match s.side {
        SourceSide::Observed => {
            "nothing it covers is reported missing, and findings there neither open nor resolve, until it is read again"
        }
        SourceSide::Declared => {
            "observed resources are not reported unmanaged on its account until it is read again"
        }
    };
    let kept = if s.is_stale() {
        "; its last good reading is kept"
    } else {
        ""
    };
    let key = status_key(&s.source);
    Finding {
        fingerprint: fingerprint("source", &key, FindingClass::SourceUnavailable, ""),
        detector: "source".into(),
        class: FindingClass::SourceUnavailable,
        resource_key: key,
        resource_type: format!("{}-source", s.side.as_str()),
        resource_id: s.source.clone(),
        tf_type: None,
        address: None,
        source: Some(s.source.clone()),
        account: s.account.clone(),
        region: s.region.clone(),
        diffs: Vec::new(),
        summary: format!(
            "{} source {} cannot be read: {reason}{kept}; {effect}",
            s.side.as_str(),
            s.source
        ),
        remediation: Vec::new(),
        tags: BTreeMap::new(),
        reason: Some(reason),
        slo: None,
    }
}

/// A scope that could not be read, with what it withheld.
#[derive(Debug, Clone, Serialize)]
pub struct UnobservedScope {
    #[serde(flatten)]
    pub scope: Unobserved,
    /// Declared resources not called missing (observed side), or observed
    /// resources not called unmanaged (declared side).
    pub affected: usize,
    /// Whether the source itself is up (a type it does not record, say).
    pub source_up: bool,
    /// `up`, or why not and how stale.
    pub status: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(name: &str, up: bool) -> SourceStatus {
        let source = format!("aws-config://{name}");
        let s = if up {
            SourceStatus::up(SourceSide::Observed, source, 0)
        } else {
            SourceStatus::down(
                SourceSide::Observed,
                source,
                format!("region {name}: no configuration recorder"),
                None,
                0,
            )
        };
        s.in_scope("", name)
    }

    #[test]
    fn a_down_region_is_unobserved_and_the_others_are_not() {
        let s =
            SourceStatuses::from_statuses([region("us-east-1", false), region("eu-west-1", true)]);
        let e = s.unobserved("1", "us-east-1", "AWS::S3::Bucket").unwrap();
        assert_eq!(e.reason, "region us-east-1: no configuration recorder");
        assert_eq!(e.source, "aws-config://us-east-1");
        assert_eq!(s.unobserved("1", "eu-west-1", "AWS::S3::Bucket"), None);
        let e = s.unobserved("1", "ap-south-1", "AWS::S3::Bucket").unwrap();
        assert_eq!(e.source, "-", "{e:?}");
        // Region unknown: covered by any up region, but a down one may hold it.
        assert!(s.unobserved("1", "-", "AWS::S3::Bucket").is_some());
    }

    #[test]
    fn excluded_types_are_not_recorded() {
        let mut up = region("eu-west-1", true);
        up.types.excluded_types = vec!["AWS::SQS::Queue".into()];
        let s = SourceStatuses::from_statuses([up]);
        let e = s.unobserved("1", "eu-west-1", "AWS::SQS::Queue").unwrap();
        assert_eq!(e.reason, "type AWS::SQS::Queue not recorded");
        assert_eq!(e.resource_type.as_deref(), Some("AWS::SQS::Queue"));
        assert!(s.unobserved("1", "eu-west-1", "AWS::S3::Bucket").is_none());
    }

    #[test]
    fn no_statuses_means_complete_and_declared_needs_one_read() {
        let s = SourceStatuses::default();
        assert!(s.unobserved("1", "x", "T").is_none() && s.declared_unread().is_none());
        assert!(s.sees_everything());
        let mut s = SourceStatuses::default();
        let never = SourceStatus::down(SourceSide::Declared, "a.tfstate", "bad", None, 5);
        assert!(s.set("a.tfstate", Some(never)));
        assert_eq!(s.declared_unread().unwrap().source, "a.tfstate");
        assert!(!s.sees_everything());
        let stale = SourceStatus::down(SourceSide::Declared, "a.tfstate", "bad", Some(1), 5);
        s.set("a.tfstate", Some(stale));
        assert!(s.declared_unread().is_none(), "its last good state stands");
        assert!(
            s.unobserved("1", "x", "T").is_none(),
            "no observed source reports"
        );
    }
}
