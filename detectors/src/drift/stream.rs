//! Drift as a stream: the latest declared and observed snapshot of every
//! resource this instance owns, kept as compact owned rows (`rows.rs`), and
//! the findings currently open for each. A batch of changes re-evaluates
//! only the resources it touched — with the same SQL as a one-shot scan,
//! over just those rows — and yields finding events: new, changed,
//! resolved.
//!
//! Resources are grouped by `{ResourceType}/{resourceId}` (the join key of
//! the drift SQL, and the shard both snapshot topics are partitioned by), so
//! one group is always owned by one instance.
//!
//! Unknown is not drift: source statuses arrive on every partition, in
//! order with its snapshots. A group whose scope a source cannot read right
//! now (or whose observed item says `ResourceNotRecorded`, or that has no
//! declared side while a state was never read) is frozen: it is not
//! evaluated, so its findings neither open nor resolve, and it is evaluated
//! again when that partition learns the scope is read. The owner of
//! partition 0 raises one `source_unavailable` finding per source that is
//! down.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch};
use datafusion::prelude::{SessionConfig, SessionContext};
use driftline_pipeline::source_status::STATUS_KEY_PREFIX;
use driftline_pipeline::{
    Finding, FindingClass, FindingEvent, FindingEventKind, SourceStatus, type_id_of_key,
};

use super::scopes::SourceStatuses;
use super::{DriftDetector, DriftIgnore, DriftSummary};
use crate::DetectorError;
use crate::mappings::Mappings;

/// Which snapshot table a record belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Declared,
    Observed,
}

mod names;
mod packing;
mod rows;

use rows::{Kept, Row, Rows, Snapshots};

/// Groups evaluated together at most: the batches, the join and the
/// findings of one evaluation stay this size, whether a few resources
/// changed or a replay rebuilt a million.
const EVALUATION_SLICE: usize = 20_000;

#[derive(Default)]
struct Group {
    partition: i32,
    declared: Snapshots,
    observed: Snapshots,
    open: BTreeMap<String, Finding>,
}

impl Group {
    fn side(&mut self, side: Side) -> &mut Snapshots {
        match side {
            Side::Declared => &mut self.declared,
            Side::Observed => &mut self.observed,
        }
    }
}

/// Why a record was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// A resource drift does not compare (data source, unmapped type):
    /// fine, and not an error.
    NotComparable,
    /// A record that contradicts itself: a dead letter.
    Invalid(String),
}

/// The streaming drift detector's state.
pub struct StreamingDrift {
    mappings: Arc<Mappings>,
    detector: DriftDetector,
    rows: Rows,
    /// Boxed: a table of a million groups has room for two million, and
    /// an empty slot then costs a pointer, not a whole group.
    groups: HashMap<Box<str>, Box<Group>>,
    /// Open findings by class, kept as groups change (read every batch for
    /// the gauges; counting all groups each time would be O(estate)).
    open_by_class: BTreeMap<FindingClass, usize>,
    /// The source statuses each owned partition has seen so far.
    statuses: HashMap<i32, SourceStatuses>,
    /// Frozen groups, by partition: evaluated when a status there changes.
    deferred: HashMap<i32, HashSet<String>>,
    /// Open `source_unavailable` findings (partition 0's owner), by source.
    source_open: BTreeMap<String, Finding>,
    /// Partition 0's statuses changed since the last evaluation.
    sources_changed: bool,
}

fn tally(counts: &mut BTreeMap<FindingClass, usize>, open: &BTreeMap<String, Finding>, add: bool) {
    for f in open.values() {
        let n = counts.entry(f.class).or_default();
        *n = if add { *n + 1 } else { n.saturating_sub(1) };
    }
}

fn col<'a>(b: &'a RecordBatch, name: &str) -> Option<&'a arrow::array::StringArray> {
    b.column_by_name(name)
        .and_then(|c| c.as_string_opt::<i32>())
}

impl StreamingDrift {
    pub fn new(mappings: Arc<Mappings>, ignore: DriftIgnore) -> Self {
        Self {
            detector: DriftDetector::new(mappings.clone(), ignore),
            rows: Rows::new(&mappings),
            mappings,
            groups: HashMap::new(),
            open_by_class: BTreeMap::new(),
            statuses: HashMap::new(),
            deferred: HashMap::new(),
            source_open: BTreeMap::new(),
            sources_changed: false,
        }
    }

    /// Takes a source status read on `partition` (`None`: the source is
    /// gone). Returns the groups there to evaluate again.
    pub fn apply_status(
        &mut self,
        partition: i32,
        key: &str,
        status: Option<SourceStatus>,
    ) -> Result<Vec<String>, Skip> {
        let Some(source) = key.strip_prefix(STATUS_KEY_PREFIX) else {
            return Err(Skip::Invalid(format!("{key} is not a status key")));
        };
        if let Some(s) = &status
            && s.source != source
        {
            return Err(Skip::Invalid(format!(
                "message key {key} does not match the status's source {}",
                s.source
            )));
        }
        let changed = self
            .statuses
            .entry(partition)
            .or_default()
            .set(source, status);
        if !changed {
            return Ok(Vec::new());
        }
        if partition == 0 {
            self.sources_changed = true;
        }
        Ok(self
            .deferred
            .remove(&partition)
            .map(|d| d.into_iter().collect())
            .unwrap_or_default())
    }

    /// Why a group cannot be evaluated now, if it cannot.
    fn frozen(&self, g: &Group) -> bool {
        // AWS Config says it does not record this resource: unknown.
        if g.observed.values().any(|r| r.not_recorded) {
            return true;
        }
        let Some(st) = self.statuses.get(&g.partition) else {
            return false;
        };
        // The common case, decided once per partition, not per row.
        if st.sees_everything() {
            return false;
        }
        let name = |n| self.rows.name(n);
        let unobserved = |r: &Row| {
            st.unobserved(name(r.account), name(r.region), name(r.resource_type))
                .is_some()
        };
        g.declared.values().any(unobserved)
            || g.observed.values().any(unobserved)
            || (g.declared.is_empty() && st.declared_unread().is_some())
    }

    /// One finding per source that partition 0 says is down.
    fn source_findings(&self) -> BTreeMap<String, Finding> {
        self.statuses
            .get(&0)
            .map(SourceStatuses::unavailable_findings)
            .unwrap_or_default()
    }

    /// Takes the latest snapshot of `key` (row `index` of a batch decoded
    /// against the side's table schema), or its deletion (`None`). Returns
    /// the group to re-evaluate.
    pub fn apply(
        &mut self,
        side: Side,
        partition: i32,
        key: &str,
        row: Option<(&RecordBatch, usize)>,
    ) -> Result<String, Skip> {
        let Some((scope, tid)) = self.rows.key_scope(key) else {
            return Err(Skip::NotComparable);
        };
        let Some((batch, index)) = row else {
            match self.groups.get_mut(tid) {
                Some(g) => {
                    g.side(side).remove(scope);
                }
                None => {
                    // A tombstone whose snapshot compaction dropped: the
                    // group is held empty on its partition until evaluated,
                    // so a rebuild can resolve what was published about it.
                    let mut g = Box::<Group>::default();
                    g.partition = partition;
                    self.groups.insert(tid.into(), g);
                }
            }
            return Ok(tid.to_string());
        };
        let text = |name: &str| col(batch, name).map(|c| c.value(index));
        if text("resource_key") != Some(key) {
            return Err(Skip::Invalid(format!(
                "message key {key} does not match the record's resource_key {}",
                text("resource_key").unwrap_or("(none)")
            )));
        }
        if text("type_id") != Some(tid) {
            return Err(Skip::Invalid(format!(
                "type_id {} does not match the key's {tid}",
                text("type_id").unwrap_or("(none)")
            )));
        }
        let comparable = match side {
            Side::Declared => {
                text("mode") == Some("managed")
                    && text("tf_type").is_some_and(|t| self.mappings.by_tf_type(t).is_some())
            }
            Side::Observed => {
                text("resource_type").is_some_and(|t| self.mappings.by_config_type(t).is_some())
            }
        };
        if !comparable {
            // It may have been comparable before (a mapping was removed).
            if let Some(g) = self.groups.get_mut(tid) {
                g.side(side).remove(scope);
            }
            return Err(Skip::NotComparable);
        }
        if !self.groups.contains_key(tid) {
            self.groups.insert(tid.into(), Box::default());
        }
        let g = self.groups.get_mut(tid).expect("inserted above");
        g.partition = partition;
        g.side(side)
            .insert(scope, self.rows.keep(side, batch, index));
        Ok(tid.to_string())
    }

    /// Takes the drift findings last published about the groups this
    /// instance holds (each with the partition it was read on) as their
    /// open findings: what a rebuild diffs against, rather than what the
    /// replayed data would have implied. A group frozen now keeps them (its
    /// findings neither open nor resolve until it thaws), and one whose
    /// change was committed but whose event never made it out still gets
    /// that event. A resource gone from both sides is held by its
    /// tombstone (`apply`) while the topic keeps it. Returns the groups
    /// touched.
    pub fn restore_open(&mut self, published: Vec<(i32, Finding)>) -> HashSet<String> {
        let mut by_group: HashMap<String, (i32, BTreeMap<String, Finding>)> = HashMap::new();
        for (partition, f) in published {
            let Some(tid) = type_id_of_key(&f.resource_key) else {
                continue;
            };
            let (_, open) = by_group
                .entry(tid.to_string())
                .or_insert_with(|| (partition, BTreeMap::new()));
            open.insert(f.fingerprint.clone(), f);
        }
        let mut touched = HashSet::with_capacity(by_group.len());
        for (tid, (partition, open)) in by_group {
            // Only a group whose snapshots this instance holds, on the
            // partition the findings came from: an event sharded otherwise
            // (written before drift findings went where their resource's
            // snapshots go) may be another instance's to judge.
            let Some(g) = self
                .groups
                .get_mut(tid.as_str())
                .filter(|g| g.partition == partition)
            else {
                continue;
            };
            tally(&mut self.open_by_class, &g.open, false);
            tally(&mut self.open_by_class, &open, true);
            g.open = open;
            touched.insert(tid);
        }
        touched
    }

    /// Forgets the groups on these partitions (handed to another instance).
    pub fn revoke(&mut self, partitions: &HashSet<i32>) {
        self.statuses.retain(|p, _| !partitions.contains(p));
        self.deferred.retain(|p, _| !partitions.contains(p));
        if partitions.contains(&0) {
            tally(&mut self.open_by_class, &self.source_open, false);
            self.source_open.clear();
            self.sources_changed = false;
        }
        let counts = &mut self.open_by_class;
        self.groups.retain(|_, g| {
            let keep = !partitions.contains(&g.partition);
            if !keep {
                tally(counts, &g.open, false);
            }
            keep
        });
    }

    /// Whether `group` holds snapshots of one side only.
    pub fn one_sided(&self, group: &str) -> bool {
        self.groups
            .get(group)
            .is_some_and(|g| g.declared.is_empty() != g.observed.is_empty())
    }

    /// Open findings by class.
    pub fn open_counts(&self) -> &BTreeMap<FindingClass, usize> {
        &self.open_by_class
    }

    /// Every open finding, sorted like a scan's.
    pub fn open_findings(&self) -> Vec<Finding> {
        let mut all: Vec<Finding> = self
            .groups
            .values()
            .flat_map(|g| g.open.values().cloned())
            .chain(self.source_open.values().cloned())
            .collect();
        all.sort_by(super::report_order);
        all
    }

    /// Re-evaluates `groups`. With `emit`, returns the events that turn the
    /// previous open findings into the new ones; without, just records the
    /// new ones (rebuilding state that was already published).
    pub async fn evaluate(
        &mut self,
        groups: &HashSet<String>,
        emit: bool,
        now_ms: i64,
    ) -> Result<Vec<FindingEvent>, DetectorError> {
        let mut evaluated: Vec<&str> = Vec::new();
        let mut frozen: Vec<(i32, &str)> = Vec::new();
        for tid in groups {
            if let Some(g) = self.groups.get(tid.as_str()) {
                if self.frozen(g) {
                    frozen.push((g.partition, tid));
                } else {
                    evaluated.push(tid);
                }
            }
        }
        let frozen: HashSet<String> = frozen
            .into_iter()
            .map(|(p, tid)| {
                self.deferred.entry(p).or_default().insert(tid.to_string());
                tid.to_string()
            })
            .collect();
        let mut found = Vec::new();
        for slice in evaluated.chunks(EVALUATION_SLICE) {
            found.extend(self.evaluate_slice(slice).await?);
        }
        let mut by_group: HashMap<&str, BTreeMap<String, Finding>> = HashMap::new();
        for f in found {
            let tid = type_id_of_key(&f.resource_key).unwrap_or_default();
            if let Some(tid) = groups.get(tid) {
                by_group
                    .entry(tid.as_str())
                    .or_default()
                    .insert(f.fingerprint.clone(), f);
            }
        }
        let mut events = Vec::new();
        if self.sources_changed {
            self.sources_changed = false;
            let now_open = self.source_findings();
            if emit {
                diff_open(&self.source_open, &now_open, now_ms, &mut events);
            }
            tally(&mut self.open_by_class, &self.source_open, false);
            tally(&mut self.open_by_class, &now_open, true);
            self.source_open = now_open;
        }
        for tid in groups {
            if frozen.contains(tid) {
                continue;
            }
            let now_open = by_group.remove(tid.as_str()).unwrap_or_default();
            let Some(g) = self.groups.get_mut(tid.as_str()) else {
                continue;
            };
            if emit {
                diff_open(&g.open, &now_open, now_ms, &mut events);
            }
            tally(&mut self.open_by_class, &g.open, false);
            tally(&mut self.open_by_class, &now_open, true);
            g.open = now_open;
            if g.declared.is_empty() && g.observed.is_empty() && g.open.is_empty() {
                self.groups.remove(tid.as_str());
            }
        }
        Ok(events)
    }

    /// The findings of `slice`'s groups, none of them frozen.
    async fn evaluate_slice(&mut self, slice: &[&str]) -> Result<Vec<Finding>, DetectorError> {
        let mut declared: Vec<Kept> = Vec::new();
        let mut observed: Vec<Kept> = Vec::new();
        for (type_id, g) in slice
            .iter()
            .filter_map(|tid| self.groups.get_key_value(*tid))
        {
            let kept = |(_, row)| Kept { type_id, row };
            declared.extend(g.declared.iter().map(kept));
            observed.extend(g.observed.iter().map(kept));
        }
        if declared.is_empty() && observed.is_empty() {
            return Ok(Vec::new());
        }
        let d = self.rows.batch(Side::Declared, &declared)?;
        let o = self.rows.batch(Side::Observed, &observed)?;
        let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(1));
        super::inputs::register_compared(&ctx, self.mappings.clone(), vec![d], vec![o], 1)?;
        Ok(self
            .detector
            .run(&ctx, DriftSummary::default())
            .await?
            .findings)
    }
}

/// The events that turn the findings open `before` into those open `now`.
fn diff_open(
    before: &BTreeMap<String, Finding>,
    now: &BTreeMap<String, Finding>,
    now_ms: i64,
    events: &mut Vec<FindingEvent>,
) {
    for (fp, was) in before {
        if !now.contains_key(fp) {
            events.push(FindingEvent::new(
                FindingEventKind::Resolved,
                now_ms,
                was.clone(),
            ));
        }
    }
    for (fp, f) in now {
        match before.get(fp) {
            None => events.push(FindingEvent::new(FindingEventKind::New, now_ms, f.clone())),
            Some(was) if was != f => events.push(FindingEvent::new(
                FindingEventKind::Changed,
                now_ms,
                f.clone(),
            )),
            Some(_) => {}
        }
    }
}

#[cfg(test)]
pub(super) mod tests;
