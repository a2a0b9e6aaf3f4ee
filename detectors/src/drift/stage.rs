//! The drift stage: both snapshot topics in, finding events out, on the
//! pipeline's stage runner. It keeps the tables of the partitions this
//! instance owns (`StreamingDrift`) and re-evaluates what changed.
//!
//! After an assignment the runner replays the compacted topics up to the
//! committed offsets, and the findings topic to its end: the drift findings
//! last published about the owned resources are taken as open. Once the
//! backlog past the commit is read, the rebuilt state is diffed against
//! them, so a restart re-emits nothing it published before, and what the
//! committed data implies but never went out (its events lost with a
//! broker, or a group frozen at the time) goes out then.
//! Live changes are evaluated once the backlog is drained, or once many or
//! old, but then only when every resource they touched has been seen on
//! both sides: a resource whose two sides sit in different batches of a
//! backlog must not flap missing → resolved on the way.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use driftline_pipeline::codec::{
    decode_finding_event, decode_status, decode_table, encode_finding_event,
};
use driftline_pipeline::schema::{DECLARED_SCHEMA, OBSERVED_SCHEMA};
use driftline_pipeline::stage::{Stage, StageError};
use driftline_pipeline::{
    ConsumerSpec, DRIFT_DETECTOR, Finding, FindingClass, FindingEventKind, Message, OutMessage,
    Topic, is_status_key, now_ms,
};

use super::stream::{Side, Skip, StreamingDrift};
use crate::metrics::metrics;

/// Most messages taken before an evaluation is forced.
const MAX_PENDING: usize = 100_000;
/// Oldest an unevaluated change may get.
const MAX_PENDING_AGE: Duration = Duration::from_millis(700);
/// Longest a backlog's resources seen on one side only wait for their other
/// side, when the backlog never drains.
const MAX_ONE_SIDED_WAIT: Duration = Duration::from_secs(600);

pub struct DriftStage {
    drift: StreamingDrift,
    group: String,
    rt: tokio::runtime::Runtime,
    /// Groups touched by the replay: evaluated once the backlog drains.
    baseline: HashSet<String>,
    /// Drift findings read back while rebuilding, by fingerprint: the last
    /// published event's finding (unless it was resolved) and the
    /// partition it was read on.
    published: HashMap<String, (i32, Finding)>,
    /// Since when a rebuilt state waits for the backlog to drain before it
    /// is diffed against what was published.
    settling: Option<Instant>,
    /// Groups touched by live messages and not yet evaluated.
    pending: HashSet<String>,
    pending_messages: usize,
    pending_since: Option<Instant>,
    /// Not before then is `pending` looked through for one-sided groups
    /// again (it can hold the whole estate while a backlog is read).
    recheck_at: Option<Instant>,
}

impl DriftStage {
    pub fn new(drift: StreamingDrift, group: String) -> std::io::Result<Self> {
        Ok(Self {
            drift,
            group,
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
            baseline: HashSet::new(),
            published: HashMap::new(),
            settling: None,
            pending: HashSet::new(),
            pending_messages: 0,
            pending_since: None,
            recheck_at: None,
        })
    }

    /// Decodes each topic's messages in bulk, then applies them in order:
    /// snapshot rows to the tables, source statuses to the scopes. Returns
    /// the messages it could not use, with why.
    fn apply(&mut self, msgs: Vec<Message>, touched: Touched) -> Vec<(Message, String)> {
        let mut rejected_out = Vec::new();
        for (topic, side, schema) in [
            (Topic::Declared, Side::Declared, &*DECLARED_SCHEMA),
            (Topic::Config, Side::Observed, &*OBSERVED_SCHEMA),
        ] {
            let of_topic: Vec<&Message> = msgs.iter().filter(|m| m.topic == topic).collect();
            if of_topic.is_empty() {
                continue;
            }
            let is_status = |m: &Message| m.key.as_deref().is_some_and(is_status_key);
            let with_payload: Vec<usize> = (0..of_topic.len())
                .filter(|i| of_topic[*i].payload.is_some() && !is_status(of_topic[*i]))
                .collect();
            let payloads: Vec<&[u8]> = with_payload
                .iter()
                .map(|i| of_topic[*i].payload.as_deref().unwrap_or_default())
                .collect();
            let decoded = decode_table(schema, &payloads);
            // message index → (row in decoded batch | rejection)
            let mut row_of: HashMap<usize, usize> = HashMap::new();
            for (row, input) in decoded.rows.iter().enumerate() {
                row_of.insert(with_payload[*input], row);
            }
            let mut rejected: HashMap<usize, String> = HashMap::new();
            for (input, reason) in decoded.rejected {
                rejected.insert(with_payload[input], reason);
            }
            for (i, m) in of_topic.iter().enumerate() {
                let key = m.key.as_deref().unwrap_or_default();
                let result = if is_status(m) {
                    // A source status, in order with the snapshots: it may
                    // thaw groups that waited for their scope to be read.
                    m.payload
                        .as_deref()
                        .map(decode_status)
                        .transpose()
                        .map_err(Skip::Invalid)
                        .and_then(|s| self.drift.apply_status(m.partition, key, s))
                } else if let Some(reason) = rejected.remove(&i) {
                    Err(Skip::Invalid(reason))
                } else if m.key.is_none() {
                    Err(Skip::Invalid("message has no key".into()))
                } else if m.payload.is_none() {
                    self.drift
                        .apply(side, m.partition, key, None)
                        .map(|g| vec![g])
                } else {
                    let row = row_of.get(&i).copied().unwrap_or(0);
                    self.drift
                        .apply(side, m.partition, key, Some((&decoded.batch, row)))
                        .map(|g| vec![g])
                };
                match result {
                    Ok(groups) => match touched {
                        Touched::Baseline => self.baseline.extend(groups),
                        Touched::Pending => self.pending.extend(groups),
                    },
                    Err(Skip::NotComparable) => {}
                    Err(Skip::Invalid(reason)) => rejected_out.push(((*m).clone(), reason)),
                }
            }
        }
        rejected_out
    }

    /// Whether a backlog is still being read with resources in it seen on
    /// one side only. Their other side is likely further on in the
    /// backlog: evaluated now, they would open a missing or unmanaged
    /// finding for every resource of a new estate, to resolve it moments
    /// later. So nothing is evaluated (and nothing committed, so nothing is
    /// lost to a restart) until the backlog drains, or for at most
    /// `MAX_ONE_SIDED_WAIT`.
    fn wait_for_other_sides(&mut self, first: Instant) -> bool {
        if first.elapsed() >= MAX_ONE_SIDED_WAIT {
            return false;
        }
        if self.recheck_at.is_some_and(|at| Instant::now() < at) {
            return true;
        }
        let waiting = self.pending.iter().any(|g| self.drift.one_sided(g));
        self.recheck_at = waiting.then(|| Instant::now() + MAX_PENDING_AGE);
        waiting
    }

    /// Folds a replayed finding event into `published`: the latest event
    /// of each drift fingerprint, dropped once resolved. Other detectors'
    /// findings share the topic and are not ours to diff.
    fn read_back(&mut self, m: &Message) {
        let Some(payload) = m.payload.as_deref() else {
            if let Some(key) = &m.key {
                self.published.remove(key);
            }
            return;
        };
        // An event nobody can read was dead-lettered by its readers.
        let Ok(ev) = decode_finding_event(payload) else {
            return;
        };
        if ev.finding.detector != DRIFT_DETECTOR {
            return;
        }
        if ev.event == FindingEventKind::Resolved {
            self.published.remove(&ev.finding.fingerprint);
        } else {
            self.published
                .insert(ev.finding.fingerprint.clone(), (m.partition, ev.finding));
        }
    }

    fn update_gauges(&self) {
        let counts = self.drift.open_counts();
        for class in [
            FindingClass::Changed,
            FindingClass::Missing,
            FindingClass::Unmanaged,
            FindingClass::SourceUnavailable,
        ] {
            let detector = if class == FindingClass::SourceUnavailable {
                "source"
            } else {
                "drift"
            };
            metrics()
                .findings_open
                .with_label_values(&[detector, class.as_str()])
                .set(counts.get(&class).copied().unwrap_or(0) as i64);
        }
    }
}

/// Which set a message's groups join.
#[derive(Clone, Copy)]
enum Touched {
    Baseline,
    Pending,
}

impl Stage for DriftStage {
    fn name(&self) -> &'static str {
        "detect"
    }

    fn consumes(&self) -> ConsumerSpec {
        ConsumerSpec {
            group: self.group.clone(),
            topics: vec![Topic::Declared, Topic::Config, Topic::Findings],
            rewind: vec![Topic::Declared, Topic::Config],
            restore: vec![Topic::Findings],
        }
    }

    fn replay(&mut self, messages: Vec<Message>) {
        let (findings, snapshots): (Vec<Message>, Vec<Message>) = messages
            .into_iter()
            .partition(|m| m.topic == Topic::Findings);
        for m in &findings {
            self.read_back(m);
        }
        // A replayed snapshot that cannot be used was dead-lettered when it
        // was first read.
        self.apply(snapshots, Touched::Baseline);
    }

    fn caught_up(&mut self) -> Result<(), StageError> {
        let resources = self.baseline.len();
        let published: Vec<(i32, Finding)> =
            std::mem::take(&mut self.published).into_values().collect();
        let open = published.len();
        let restored = self.drift.restore_open(published);
        // Source findings follow from the statuses alone (no group is
        // frozen for them): computed, as they were published.
        self.rt
            .block_on(self.drift.evaluate(&HashSet::new(), false, now_ms()))
            .map_err(|e| StageError::of("detect", e))?;
        self.pending.extend(self.baseline.drain());
        self.pending.extend(restored);
        if !self.pending.is_empty() {
            self.pending_since.get_or_insert_with(Instant::now);
            self.settling = Some(Instant::now());
        }
        self.update_gauges();
        tracing::info!(resources, open, "tables rebuilt");
        Ok(())
    }

    fn revoked(&mut self, partitions: &HashSet<i32>) {
        self.drift.revoke(partitions);
        self.published.retain(|_, (p, _)| !partitions.contains(p));
    }

    fn take(&mut self, messages: Vec<Message>) -> Vec<(Message, String)> {
        let _span = tracing::info_span!("decode", messages = messages.len()).entered();
        self.pending_messages += messages.len();
        self.pending_since.get_or_insert_with(Instant::now);
        self.apply(messages, Touched::Pending)
    }

    fn flush(&mut self, drained: bool) -> Result<Option<Vec<OutMessage>>, StageError> {
        let Some(first) = self.pending_since else {
            return Ok(None);
        };
        let settled = self.settling.is_some();
        if let Some(since) = self.settling {
            // Rebuilt: the messages past the commit (re-read now) were
            // evaluated and published before; diffed before they are in,
            // the rebuilt state would flap what they changed.
            if !drained && since.elapsed() < MAX_ONE_SIDED_WAIT {
                return Ok(None);
            }
            self.settling = None;
        }
        let due =
            drained || self.pending_messages >= MAX_PENDING || first.elapsed() >= MAX_PENDING_AGE;
        if !due || (!drained && self.wait_for_other_sides(first)) {
            return Ok(None);
        }
        let span = tracing::info_span!(
            "detect",
            groups = self.pending.len(),
            findings = tracing::field::Empty
        );
        let _in_span = span.enter();
        let found = self
            .rt
            .block_on(self.drift.evaluate(&self.pending, true, now_ms()))
            .map_err(|e| StageError::of("detect", e))?;
        span.record("findings", found.len());
        self.pending.clear();
        self.pending_messages = 0;
        self.pending_since = None;
        self.recheck_at = None;
        let mut out = Vec::with_capacity(found.len());
        for ev in &found {
            out.push(encode_finding_event(ev)?);
            metrics()
                .finding_events
                .with_label_values(&[ev.finding.class.as_str(), ev.event.as_str()])
                .inc();
        }
        self.update_gauges();
        if settled {
            tracing::info!(
                events = found.len(),
                "rebuilt state diffed against the published findings"
            );
        }
        if !found.is_empty() {
            tracing::info!(
                events = found.len(),
                elapsed_ms = first.elapsed().as_millis() as u64,
                "findings published"
            );
        }
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use driftline_pipeline::codec::{decode_finding_event, encode_records};
    use driftline_pipeline::{FindingEventKind, Record};

    use super::*;
    use crate::drift::stream::tests::{declared, observed, region_status, sd};

    fn message(record: Record, offset: i64) -> Message {
        messages(record, offset).remove(0)
    }

    /// The messages a record becomes, read back at `offset` on.
    fn messages(record: Record, offset: i64) -> Vec<Message> {
        let topic = match record {
            Record::Declared(_) => Topic::Declared,
            _ => Topic::Config,
        };
        let out = encode_records(topic, &[record]).unwrap();
        out.into_iter()
            .enumerate()
            .map(|(i, m)| read(m, offset + i as i64))
            .collect()
    }

    fn read(m: OutMessage, offset: i64) -> Message {
        Message {
            topic: m.topic,
            partition: 0,
            offset,
            key: Some(m.key),
            payload: m.payload.map(Arc::from),
            replay: false,
        }
    }

    fn replayed(mut messages: Vec<Message>) -> Vec<Message> {
        messages.iter_mut().for_each(|m| m.replay = true);
        messages
    }

    fn kinds(out: &[OutMessage]) -> Vec<(FindingEventKind, FindingClass)> {
        out.iter()
            .map(|m| decode_finding_event(m.payload.as_deref().unwrap()).unwrap())
            .map(|e| (e.event, e.finding.class))
            .collect()
    }

    #[test]
    fn a_backlog_read_one_side_first_opens_nothing_until_its_other_side_is_read() {
        let mut stage = DriftStage::new(sd(), "g".into()).unwrap();
        stage.caught_up().unwrap();
        stage.take(vec![message(Record::Declared(Box::new(declared(30))), 0)]);
        std::thread::sleep(MAX_PENDING_AGE);
        // Old enough, but the backlog has not drained and the queue's
        // observed side may be further on in it.
        assert!(stage.flush(false).unwrap().is_none());

        // Read: the pair is complete and the same, so nothing opens.
        stage.take(vec![message(Record::Observed(Box::new(observed(30))), 0)]);
        std::thread::sleep(MAX_PENDING_AGE);
        assert_eq!(kinds(&stage.flush(false).unwrap().unwrap()), vec![]);

        // A backlog that drains is evaluated whatever it holds.
        let mut stage = DriftStage::new(sd(), "g".into()).unwrap();
        stage.caught_up().unwrap();
        stage.take(vec![message(Record::Declared(Box::new(declared(30))), 0)]);
        assert_eq!(
            kinds(&stage.flush(true).unwrap().unwrap()),
            vec![(FindingEventKind::New, FindingClass::Missing)]
        );
    }

    /// A stage that ran on `input` (each batch taken and flushed as one),
    /// and what it published.
    fn ran(input: &[Vec<Message>]) -> (DriftStage, Vec<Vec<OutMessage>>) {
        let mut stage = DriftStage::new(sd(), "g".into()).unwrap();
        stage.caught_up().unwrap();
        let mut out = Vec::new();
        for batch in input {
            assert!(stage.take(batch.clone()).is_empty());
            out.push(stage.flush(true).unwrap().unwrap());
        }
        (stage, out)
    }

    /// A new stage rebuilt from `input` and the findings `published`, then
    /// flushed once the backlog is read: what it says then.
    fn rebuilt(input: &[Vec<Message>], published: &[OutMessage]) -> (DriftStage, Vec<OutMessage>) {
        rebuilt_on(0, input, published)
    }

    /// `rebuilt`, with the findings read on `partition` (the snapshots are
    /// on 0).
    fn rebuilt_on(
        partition: i32,
        input: &[Vec<Message>],
        published: &[OutMessage],
    ) -> (DriftStage, Vec<OutMessage>) {
        let mut stage = DriftStage::new(sd(), "g".into()).unwrap();
        stage.replay(replayed(input.concat()));
        let findings = published.iter().enumerate().map(|(i, m)| Message {
            partition,
            ..read(m.clone(), i as i64)
        });
        stage.replay(replayed(findings.collect()));
        stage.caught_up().unwrap();
        // Not before the backlog past the commit is read.
        assert!(stage.flush(false).unwrap().is_none());
        let out = stage.flush(true).unwrap().unwrap_or_default();
        (stage, out)
    }

    #[test]
    fn a_rebuild_diffs_against_what_was_published() {
        let input = vec![
            messages(Record::Declared(Box::new(declared(30))), 0),
            messages(Record::Observed(Box::new(observed(60))), 0),
            messages(Record::Observed(Box::new(observed(30))), 1),
        ];
        let (_, out) = ran(&input);
        assert_eq!(
            kinds(&out.concat()),
            vec![
                (FindingEventKind::New, FindingClass::Missing),
                (FindingEventKind::Resolved, FindingClass::Missing),
                (FindingEventKind::New, FindingClass::Changed),
                (FindingEventKind::Resolved, FindingClass::Changed),
            ]
        );
        // Everything went out: a rebuild says nothing.
        let (_, again) = rebuilt(&input, &out.concat());
        assert_eq!(kinds(&again), vec![]);
        // The last batch's events were lost after its commit (a broker
        // gone mid-commit): the rebuild sends them.
        let (_, again) = rebuilt(&input, &out[..2].concat());
        assert_eq!(
            kinds(&again),
            vec![(FindingEventKind::Resolved, FindingClass::Changed)]
        );
        // Read on a partition the resource is not on (sharded another way,
        // by an older driftline): not this instance's to judge.
        let (_, again) = rebuilt_on(3, &input, &out[..2].concat());
        assert_eq!(kinds(&again), vec![]);
    }

    /// A resource deleted from the only side it was on, whose resolution
    /// was lost after the deletion was committed, and whose snapshot the
    /// topic's compaction then dropped: only its tombstone is replayed, and
    /// the rebuild still resolves what was published about it.
    #[test]
    fn a_rebuild_resolves_a_deleted_resource_kept_only_as_a_tombstone() {
        let item = messages(Record::Observed(Box::new(observed(30))), 0);
        let tombstone = Message {
            payload: None,
            offset: 1,
            ..item[0].clone()
        };
        let (_, out) = ran(&[item, vec![tombstone.clone()]]);
        assert_eq!(
            kinds(&out.concat()),
            vec![
                (FindingEventKind::New, FindingClass::Unmanaged),
                (FindingEventKind::Resolved, FindingClass::Unmanaged),
            ]
        );
        let (_, again) = rebuilt(&[vec![tombstone.clone()]], &out[0]);
        assert_eq!(
            kinds(&again),
            vec![(FindingEventKind::Resolved, FindingClass::Unmanaged)]
        );
        // Everything went out: nothing to say.
        let (_, again) = rebuilt(&[vec![tombstone.clone()]], &out.concat());
        assert_eq!(kinds(&again), vec![]);
        // Read on a partition its tombstone is not on: not ours to judge.
        let (_, again) = rebuilt_on(3, &[vec![tombstone]], &out[0]);
        assert_eq!(kinds(&again), vec![]);
    }

    #[test]
    fn a_group_frozen_across_a_rebuild_resolves_what_was_published_once_thawed() {
        let key = "source-status/aws-config://eu-west-1";
        let status = |up| messages(Record::Status(Box::new(region_status(up))), 0);
        let input = vec![
            [
                status(true),
                messages(Record::Declared(Box::new(declared(30))), 0),
                messages(Record::Observed(Box::new(observed(60))), 1),
            ]
            .concat(),
            // The region goes dark, then the console edit is undone: the
            // group is frozen, so nothing resolves yet.
            [
                status(false),
                messages(Record::Observed(Box::new(observed(30))), 3),
            ]
            .concat(),
        ];
        assert!(input[0][0].key.as_deref() == Some(key));
        let (_, out) = ran(&input);
        assert_eq!(
            kinds(&out[0]),
            vec![(FindingEventKind::New, FindingClass::Changed)]
        );
        assert_eq!(
            kinds(&out[1]),
            vec![(FindingEventKind::New, FindingClass::SourceUnavailable)]
        );
        let (mut stage, again) = rebuilt(&input, &out.concat());
        assert_eq!(kinds(&again), vec![]);
        // Read again: the changed finding published before the freeze resolves.
        stage.take(status(true));
        let thawed = stage.flush(true).unwrap().unwrap();
        assert_eq!(
            kinds(&thawed),
            vec![
                (FindingEventKind::Resolved, FindingClass::SourceUnavailable),
                (FindingEventKind::Resolved, FindingClass::Changed),
            ]
        );
    }
}
