//! The probable cause on an SLO page: the drift findings of the SLO's
//! service's resources from the lookback window before the burn began,
//! newest first: what changed, which path, declared vs observed, when.
//! Resources belong to a service by a tag (`service` by default) or by
//! an explicit list of resource keys or ids.

use arrow::array::{Array, RecordBatch};
use driftline_pipeline::{AttributeDiff, ProbableCause};

use super::answer::Answer;

/// How an SLO finds its resources.
#[derive(Debug, Clone, PartialEq)]
pub struct CauseScope {
    /// The tag whose value is the SLO's service.
    pub tag: String,
    pub service: String,
    /// Resource keys or ids that belong to it whatever their tags.
    pub resources: Vec<String>,
}

/// Most changes one page carries.
pub const MAX_CAUSES: usize = 10;

/// SQL both stores answer: drift events in `[from, to]`, newest first.
pub fn causes_sql(from_ms: i64, to_ms: i64) -> String {
    format!(
        "SELECT at_ms, event, class, resource_key, resource_type, resource_id, address, summary, diffs, \
         tag_keys, tag_values FROM finding_events WHERE at_ms >= {from_ms} AND at_ms <= {to_ms} \
         AND class IN ('changed', 'missing', 'unmanaged') AND event IN ('new', 'changed') \
         ORDER BY at_ms DESC"
    )
}

/// The rows of `causes_sql` that belong to `scope`, newest first.
pub fn causes_from(
    batches: &[RecordBatch],
    scope: &CauseScope,
) -> Result<Vec<ProbableCause>, String> {
    let mut out = Vec::new();
    for b in batches {
        let a = Answer {
            batch: b,
            table: "finding_events",
        };
        let at = a.int64("at_ms")?;
        let (event, class, key, rtype, rid, address, summary, diffs) = (
            a.text("event")?,
            a.text("class")?,
            a.text("resource_key")?,
            a.text("resource_type")?,
            a.text("resource_id")?,
            a.text("address")?,
            a.text("summary")?,
            a.text("diffs")?,
        );
        let tags = a.pairs("tag_keys", "tag_values")?;
        for i in 0..b.num_rows() {
            let tagged = tags
                .at(i)
                .iter()
                .any(|(k, v)| k.eq_ignore_ascii_case(&scope.tag) && *v == scope.service);
            let listed = scope
                .resources
                .iter()
                .any(|r| r == key.value(i) || r == rid.value(i));
            if !(tagged || listed) {
                continue;
            }
            let diffs: Vec<AttributeDiff> =
                serde_json::from_str(diffs.value(i)).unwrap_or_default();
            out.push(ProbableCause {
                at: driftline_pipeline::time::format_epoch_ms(at.value(i)),
                event: event.value(i).into(),
                class: class.value(i).into(),
                resource_key: key.value(i).into(),
                resource_type: rtype.value(i).into(),
                resource_id: rid.value(i).into(),
                address: (!address.is_null(i)).then(|| address.value(i).to_string()),
                summary: summary.value(i).into(),
                diffs,
            });
            if out.len() == MAX_CAUSES {
                return Ok(out);
            }
        }
    }
    Ok(out)
}
