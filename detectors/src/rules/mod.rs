//! Policy and tagging rules written as SQL files: each is one SELECT over
//! the rule tables that returns the finding columns, and every row it
//! returns is a `policy` finding.
//!
//! The rule tables are the ones the store has under the same names, so a
//! rule tried with `driftline sql` runs unchanged here:
//! - `resources_declared`, `resources_observed`: the latest resources, with
//!   `tag_keys` / `tag_values` and the nested documents as JSON text
//!   (`configuration`, `supplementary_configuration`, `attributes`);
//! - `focus_data_table`: cost rows (empty when no store holds any);
//! - `required_tags(tag_key)`: `[finops] required_tags`, or `team` and
//!   `env` when none are configured.
//!
//! The JSON functions of `datafusion-functions-json` (`json_get_str`,
//! `json_get_array`, …) read the documents.
//!
//! A rule returns `resource_key`, `resource_type`, `resource_id`,
//! `account`, `region` and `summary`; `path` (what in the resource it is
//! about, part of the finding's identity) and `address` are optional.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};
use driftline_pipeline::model::fingerprint;
use driftline_pipeline::{Finding, FindingClass};

mod watch;
pub use watch::RulesWatch;

/// The rules driftline ships (`detectors/rules/`).
const SHIPPED: &[(&str, &str)] = &[
    (
        "required_tags",
        include_str!("../../rules/required_tags.sql"),
    ),
    (
        "security_group_open_admin_ports",
        include_str!("../../rules/security_group_open_admin_ports.sql"),
    ),
    (
        "ebs_volume_unencrypted",
        include_str!("../../rules/ebs_volume_unencrypted.sql"),
    ),
    (
        "s3_bucket_public",
        include_str!("../../rules/s3_bucket_public.sql"),
    ),
    (
        "untagged_spend_share",
        include_str!("../../rules/untagged_spend_share.sql"),
    ),
];

/// The columns every rule returns.
const REQUIRED: [&str; 6] = [
    "resource_key",
    "resource_type",
    "resource_id",
    "account",
    "region",
    "summary",
];

/// The tag keys required when `[finops] required_tags` names none.
pub const DEFAULT_REQUIRED_TAGS: [&str; 2] = ["team", "env"];

#[derive(Debug, thiserror::Error)]
#[error("{origin}: {reason}")]
pub struct RuleError {
    /// The rule's file (or `shipped:NAME`).
    pub origin: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The file's stem: the finding's `rule` and part of its fingerprint.
    pub name: String,
    pub origin: String,
    pub sql: String,
}

/// A set of rules: the shipped ones, or every `*.sql` in a folder.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rules {
    pub rules: Vec<Rule>,
}

impl Rules {
    pub fn shipped() -> Self {
        Rules {
            rules: SHIPPED
                .iter()
                .map(|(name, sql)| Rule {
                    name: name.to_string(),
                    origin: format!("shipped:{name}"),
                    sql: sql.to_string(),
                })
                .collect(),
        }
    }

    /// Every `*.sql` file in `dir`, by name. Each must hold exactly one
    /// query (DDL, DML and several statements are refused).
    pub fn from_dir(dir: &Path) -> Result<Self, RuleError> {
        let failed = |reason: String| RuleError {
            origin: dir.display().to_string(),
            reason,
        };
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| failed(format!("cannot read the rules folder: {e}")))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "sql"))
            .collect();
        paths.sort();
        let mut rules = Vec::new();
        for path in paths {
            let origin = path.display().to_string();
            let sql = std::fs::read_to_string(&path).map_err(|e| RuleError {
                origin: origin.clone(),
                reason: format!("cannot read: {e}"),
            })?;
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            rules.push(Rule { name, origin, sql });
        }
        Ok(Rules { rules })
    }

    /// Every rule's problems, found by planning it over empty rule tables:
    /// not one query, a table or column that does not exist, a finding
    /// column missing.
    pub async fn check(&self) -> Vec<RuleError> {
        let ctx = match RuleTables::default().session() {
            Ok(ctx) => ctx,
            Err(e) => return vec![e],
        };
        let mut errors = Vec::new();
        for rule in &self.rules {
            if let Err(e) = plan(&ctx, rule).await {
                errors.push(e);
            }
        }
        errors
    }

    /// Runs every rule; the findings of those that ran, and the errors of
    /// those that did not.
    pub async fn evaluate(&self, tables: &RuleTables) -> (Vec<Finding>, Vec<RuleError>) {
        let ctx = match tables.session() {
            Ok(ctx) => ctx,
            Err(e) => return (Vec::new(), vec![e]),
        };
        let (mut findings, mut errors) = (Vec::new(), Vec::new());
        for rule in &self.rules {
            match run(&ctx, rule).await {
                Ok(mut f) => findings.append(&mut f),
                Err(e) => errors.push(e),
            }
        }
        // A resource seen twice (history files) is one finding.
        let mut seen = std::collections::HashSet::new();
        findings.retain(|f| seen.insert(f.fingerprint.clone()));
        (findings, errors)
    }
}

/// What the rules read: the store's column shapes, filled from a scan's
/// snapshots or from the store.
#[derive(Default)]
pub struct RuleTables {
    /// `resources_declared` rows (`store::tables::DECLARED_HISTORY_SCHEMA`).
    pub declared: Vec<RecordBatch>,
    /// `resources_observed` rows (`store::tables::OBSERVED_HISTORY_SCHEMA`).
    pub observed: Vec<RecordBatch>,
    /// `focus_data_table` rows.
    pub cost: Vec<RecordBatch>,
    /// `[finops] required_tags`; empty means `DEFAULT_REQUIRED_TAGS`.
    pub required_tags: Vec<String>,
}

impl RuleTables {
    fn session(&self) -> Result<SessionContext, RuleError> {
        use driftline_pipeline::store::tables::{DECLARED_HISTORY_SCHEMA, OBSERVED_HISTORY_SCHEMA};
        let failed = |e: datafusion::error::DataFusionError| RuleError {
            origin: "rule tables".into(),
            reason: e.to_string(),
        };
        // FOCUS's column names are mixed case and written unquoted.
        let config = SessionConfig::new()
            .set_bool("datafusion.sql_parser.enable_ident_normalization", false);
        let mut ctx = SessionContext::new_with_config(config);
        datafusion_functions_json::register_all(&mut ctx).map_err(failed)?;
        let required: Vec<String> = if self.required_tags.is_empty() {
            DEFAULT_REQUIRED_TAGS
                .iter()
                .map(|s| s.to_string())
                .collect()
        } else {
            self.required_tags.clone()
        };
        let required_schema = Arc::new(Schema::new(vec![Field::new(
            "tag_key",
            DataType::Utf8,
            false,
        )]));
        let required = RecordBatch::try_new(
            required_schema.clone(),
            vec![Arc::new(StringArray::from(required))],
        )
        .map_err(|e| failed(e.into()))?;
        let tables = [
            (
                "resources_declared",
                DECLARED_HISTORY_SCHEMA.clone(),
                &self.declared,
            ),
            (
                "resources_observed",
                OBSERVED_HISTORY_SCHEMA.clone(),
                &self.observed,
            ),
            (
                "focus_data_table",
                driftline_pipeline::focus::schema(),
                &self.cost,
            ),
        ];
        for (name, schema, batches) in tables {
            let schema = batches.first().map(|b| b.schema()).unwrap_or(schema);
            let table = MemTable::try_new(schema, vec![batches.clone()]).map_err(failed)?;
            ctx.register_table(name, Arc::new(table)).map_err(failed)?;
        }
        let table = MemTable::try_new(required_schema, vec![vec![required]]).map_err(failed)?;
        ctx.register_table("required_tags", Arc::new(table))
            .map_err(failed)?;
        Ok(ctx)
    }
}

impl RuleTables {
    /// A scan's snapshots as the store's `resources_*` rows, and the
    /// store's cost rows (none without a store).
    pub fn from_snapshots(
        declared: &[driftline_pipeline::DeclaredResource],
        observed: &[driftline_pipeline::ObservedResource],
        store: Option<&dyn driftline_pipeline::Store>,
        required_tags: &[String],
    ) -> Result<Self, RuleError> {
        use driftline_pipeline::schema::{declared_batch, observed_batch};
        use driftline_pipeline::store::tables::{Side, history_batch, row_facts};
        let failed = |reason: String| RuleError {
            origin: "rule tables".into(),
            reason,
        };
        let now = driftline_pipeline::now_ms();
        let history = |side: Side, batch: Result<RecordBatch, arrow::error::ArrowError>| {
            let batch = batch.map_err(|e| failed(e.to_string()))?;
            let facts = row_facts(side, &batch).map_err(|e| failed(e.to_string()))?;
            history_batch(side, &batch, &facts, None, &[], now).map_err(|e| failed(e.to_string()))
        };
        let declared = history(
            Side::Declared,
            declared_batch(&declared.iter().collect::<Vec<_>>()),
        )?;
        let observed = history(
            Side::Observed,
            observed_batch(&observed.iter().collect::<Vec<_>>()),
        )?;
        let cost = match store {
            Some(store) => conform(
                store
                    .read(driftline_pipeline::focus::TABLE)
                    .map_err(|e| failed(e.to_string()))?,
                &driftline_pipeline::focus::schema(),
            )
            .map_err(|e| failed(e.to_string()))?,
            None => Vec::new(),
        };
        Ok(RuleTables {
            declared: vec![declared],
            observed: vec![observed],
            cost,
            required_tags: required_tags.to_vec(),
        })
    }

    /// The store's latest resources and cost rows.
    pub fn from_store(
        store: &dyn driftline_pipeline::Store,
        required_tags: &[String],
    ) -> Result<Self, RuleError> {
        use driftline_pipeline::store::QueryLimits;
        use driftline_pipeline::store::tables::{DECLARED_HISTORY_SCHEMA, OBSERVED_HISTORY_SCHEMA};
        let failed = |reason: String| RuleError {
            origin: "rule tables".into(),
            reason,
        };
        let everything = QueryLimits {
            max_rows: usize::MAX - 1,
            timeout: std::time::Duration::from_secs(300),
        };
        let read = |table: &str, schema: &arrow::datatypes::SchemaRef| {
            let answer = store
                .query(&format!("SELECT * FROM {table}"), &everything)
                .map_err(|e| failed(e.to_string()))?;
            conform(answer.batches, schema).map_err(|e| failed(format!("{table}: {e}")))
        };
        Ok(RuleTables {
            declared: read("resources_declared", &DECLARED_HISTORY_SCHEMA)?,
            observed: read("resources_observed", &OBSERVED_HISTORY_SCHEMA)?,
            cost: read(
                driftline_pipeline::focus::TABLE,
                &driftline_pipeline::focus::schema(),
            )?,
            required_tags: required_tags.to_vec(),
        })
    }
}

/// Batches as `schema` types them (ClickHouse answers times as text).
fn conform(
    batches: Vec<RecordBatch>,
    schema: &arrow::datatypes::SchemaRef,
) -> Result<Vec<RecordBatch>, arrow::error::ArrowError> {
    // Nullability as the data has it: a cast column may hold nulls.
    let relaxed = Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>(),
    ));
    batches
        .into_iter()
        .map(|b| {
            let columns = schema
                .fields()
                .iter()
                .map(|f| match b.schema().index_of(f.name()) {
                    Ok(i) => arrow::compute::cast(b.column(i), f.data_type()),
                    Err(_) => Ok(arrow::array::new_null_array(f.data_type(), b.num_rows())),
                })
                .collect::<Result<Vec<_>, _>>()?;
            RecordBatch::try_new(relaxed.clone(), columns)
        })
        .collect()
}

async fn plan(
    ctx: &SessionContext,
    rule: &Rule,
) -> Result<datafusion::dataframe::DataFrame, RuleError> {
    let failed = |reason: String| RuleError {
        origin: rule.origin.clone(),
        reason,
    };
    driftline_pipeline::store::sql::check_read_only(&rule.sql)
        .map_err(|e| failed(e.to_string()))?;
    let df = ctx
        .sql(&rule.sql)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let schema = df.schema();
    for column in REQUIRED {
        if schema.field_with_unqualified_name(column).is_err() {
            return Err(failed(format!(
                "returns no `{column}` column (a rule returns {})",
                REQUIRED.join(", ")
            )));
        }
    }
    Ok(df)
}

async fn run(ctx: &SessionContext, rule: &Rule) -> Result<Vec<Finding>, RuleError> {
    let failed = |reason: String| RuleError {
        origin: rule.origin.clone(),
        reason,
    };
    let batches = plan(ctx, rule)
        .await?
        .collect()
        .await
        .map_err(|e| failed(e.to_string()))?;
    let mut out = Vec::new();
    for batch in batches {
        let text = |name: &str| -> Result<Option<StringArray>, RuleError> {
            let Ok(i) = batch.schema().index_of(name) else {
                return Ok(None);
            };
            let column = arrow::compute::cast(batch.column(i), &DataType::Utf8)
                .map_err(|e| failed(format!("column {name}: {e}")))?;
            Ok(Some(column.as_string::<i32>().clone()))
        };
        let cell = |a: &Option<StringArray>, row: usize| -> Option<String> {
            a.as_ref()
                .filter(|a| !a.is_null(row))
                .map(|a| a.value(row).to_string())
        };
        let columns: Vec<Option<StringArray>> =
            REQUIRED.iter().map(|c| text(c)).collect::<Result<_, _>>()?;
        let (path, address) = (text("path")?, text("address")?);
        for row in 0..batch.num_rows() {
            let v = |i: usize| cell(&columns[i], row).unwrap_or_default();
            let resource_key = v(0);
            let path = cell(&path, row).unwrap_or_default();
            out.push(Finding {
                fingerprint: fingerprint(
                    "policy",
                    &resource_key,
                    FindingClass::Policy,
                    &format!("{}/{path}", rule.name),
                ),
                detector: "policy".into(),
                class: FindingClass::Policy,
                resource_key,
                resource_type: v(1),
                resource_id: v(2),
                tf_type: None,
                address: cell(&address, row),
                source: Some(format!("rule:{}", rule.name)),
                account: v(3),
                region: v(4),
                diffs: Vec::new(),
                summary: v(5),
                remediation: Vec::new(),
                tags: Default::default(),
                reason: None,
                slo: None,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_shipped_rules_check_clean() {
        let errors = Rules::shipped().check().await;
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[tokio::test]
    async fn a_bad_rule_is_named_with_its_reason() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ddl.sql"), "DROP TABLE resources_observed").unwrap();
        std::fs::write(
            dir.path().join("short.sql"),
            "SELECT resource_key FROM resources_observed",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("typo.sql"),
            "SELECT * FROM resources_obsrved",
        )
        .unwrap();
        let errors = Rules::from_dir(dir.path()).unwrap().check().await;
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(errors.len(), 3, "{text:?}");
        assert!(
            text[0].contains("ddl.sql") && text[0].contains("only queries"),
            "{text:?}"
        );
        assert!(
            text[1].contains("short.sql") && text[1].contains("`resource_type`"),
            "{text:?}"
        );
        assert!(
            text[2].contains("typo.sql") && text[2].contains("resources_obsrved"),
            "{text:?}"
        );
    }
}
