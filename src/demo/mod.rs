//! `driftline demo`: the example estate, from the checkout or compiled in,
//! scanned, then a short FinOps summary of its month of spend and an SLO
//! that burns after a drifted security group (`slo.rs`).

mod slo;

use std::path::{Path, PathBuf};

pub use slo::story as slo_story;

use anyhow::Context;
use driftline_collectors::cost::CostImport;
use driftline_pipeline::store::{ParquetStore, QueryLimits, Store};
use driftline_pipeline::{Finding, FindingEvent, FindingEventKind, now_ms};

/// The example estate: the checkout's `examples/estate` when run from a
/// clone, else the copy compiled into the binary, unpacked to a temp dir.
pub fn demo_estate() -> anyhow::Result<PathBuf> {
    let in_tree = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/estate");
    if in_tree.is_dir() {
        return Ok(in_tree);
    }
    let dir = std::env::temp_dir().join(format!("driftline-demo-{}", std::process::id()));
    for (rel, text) in DEMO_FILES {
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&p, text)
            .with_context(|| format!("{}: cannot write demo file", p.display()))?;
    }
    Ok(dir)
}

const DEMO_FILES: &[(&str, &str)] = &[
    (
        "terraform/terraform.tfstate",
        include_str!("../../examples/estate/terraform/terraform.tfstate"),
    ),
    (
        "aws-config/snapshot.json",
        include_str!("../../examples/estate/aws-config/snapshot.json"),
    ),
    (
        "aws-config/notification.json",
        include_str!("../../examples/estate/aws-config/notification.json"),
    ),
    (
        ".driftignore",
        include_str!("../../examples/estate/.driftignore"),
    ),
    (
        "cost/focus-2024-09.csv",
        include_str!("../../examples/estate/cost/focus-2024-09.csv"),
    ),
];

/// The estate's spend, what carries each tag, and what the scan's findings
/// cost: the cost export and the findings go into a scratch store, and the
/// FinOps views answer.
pub fn finops_summary(estate: &Path, findings: &[Finding]) -> anyhow::Result<Vec<String>> {
    let dir = std::env::temp_dir().join(format!("driftline-demo-store-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = ParquetStore::open(&dir)?;
    let mut import = CostImport::new(vec![estate.join("cost").display().to_string()]);
    let report = import.run(&store, &|_, _| {});
    if let Some(e) = report.errors.first() {
        anyhow::bail!("demo cost export: {e}");
    }
    let events: Vec<FindingEvent> = findings
        .iter()
        .map(|f| FindingEvent::new(FindingEventKind::New, now_ms(), f.clone()))
        .collect();
    store.append(
        "finding_events",
        &driftline_pipeline::schema::finding_events_batch(&events)?,
    )?;
    let one = |sql: &str| -> anyhow::Result<f64> {
        let r = store.query(sql, &QueryLimits::default())?;
        Ok(r.cells()?
            .first()
            .and_then(|row| row.first())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0))
    };
    let spend = one("SELECT SUM(EffectiveCost) FROM focus_data_table")?;
    let unmanaged = one("SELECT COALESCE(SUM(cost), 0) FROM unmanaged_cost")?;
    let drifted = one("SELECT COALESCE(SUM(cost), 0) FROM drift_cost")?;
    let coverage = store.query(
        "SELECT tag_key, 100 * SUM(tagged_cost) / SUM(cost) AS share FROM tagging_coverage \
         GROUP BY tag_key ORDER BY share, tag_key",
        &QueryLimits::default(),
    )?;
    let shares: Vec<String> = coverage
        .cells()?
        .into_iter()
        .map(|row| {
            let share: f64 = row[1].parse().unwrap_or(0.0);
            format!("{} {share:.1}%", row[0])
        })
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(vec![
        format!("FinOps (September 2024, {} cost rows): spend ${spend:.2}", report.published),
        format!("  spend carrying each tag (goal 95%): {}", shares.join(", ")),
        format!("  unmanaged resources cost ${unmanaged:.2}; drifted resources cost ${drifted:.2}"),
        "  ask more with `driftline cost import examples/estate/cost` then `driftline sql \"SELECT * FROM cost_by_team\"`".into(),
    ])
}
