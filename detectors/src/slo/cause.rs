//! The probable cause on an SLO page: the drift findings of the SLO's
//! service's resources from the lookback window before the burn began,
//! newest first: what changed, which path, declared vs observed, when.
//! Resources belong to a service by a tag (`service` by default) or by
//! an explicit list of resource keys or ids.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use driftline_pipeline::{AttributeDiff, ProbableCause};

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
        let col = |name: &str| {
            b.column_by_name(name)
                .ok_or_else(|| format!("finding_events answer has no column {name}"))
        };
        let text = |name: &str| -> Result<_, String> {
            col(name)?
                .as_string_opt::<i32>()
                .ok_or_else(|| format!("{name} is not text"))
        };
        let at = col("at_ms")?
            .as_primitive_opt::<Int64Type>()
            .ok_or("at_ms is not Int64")?;
        let (event, class, key, rtype, rid, address, summary, diffs) = (
            text("event")?,
            text("class")?,
            text("resource_key")?,
            text("resource_type")?,
            text("resource_id")?,
            text("address")?,
            text("summary")?,
            text("diffs")?,
        );
        let keys = col("tag_keys")?
            .as_list_opt::<i32>()
            .ok_or("tag_keys is not a list")?;
        let values = col("tag_values")?
            .as_list_opt::<i32>()
            .ok_or("tag_values is not a list")?;
        for i in 0..b.num_rows() {
            let tagged = !keys.is_null(i) && {
                let (k, v) = (keys.value(i), values.value(i));
                let (k, v) = (k.as_string::<i32>(), v.as_string::<i32>());
                (0..k.len().min(v.len())).any(|j| {
                    k.value(j).eq_ignore_ascii_case(&scope.tag) && v.value(j) == scope.service
                })
            };
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
