//! Every mapped type, every compared attribute: the demo estate's pair of
//! that type compares clean, and changing any one compared attribute (or a
//! tag) on the observed side yields a `changed` finding on exactly that path.

mod common;

use std::sync::Arc;

use datafusion::prelude::SessionContext;
use driftline_collectors::aws_config;
use driftline_collectors::terraform::{Salt, TerraformConfig, load_state};
use driftline_detectors::{DriftDetector, DriftIgnore, DriftReport, Mappings, register_snapshots};
use driftline_pipeline::{DeclaredResource, FindingClass, ObservedResource};
use serde_json::Value;

fn estate() -> (Arc<Mappings>, Vec<DeclaredResource>, Vec<ObservedResource>) {
    let mappings = Arc::new(Mappings::builtin().unwrap());
    let types = Arc::new(mappings.type_table());
    let cfg = TerraformConfig::new(types.clone(), Salt::new("s"));
    let table = &*types;
    let dir = common::estate();
    let declared = load_state(&dir.join("terraform/terraform.tfstate"), &cfg)
        .unwrap()
        .resources;
    let mut observed = aws_config::load_file(&dir.join("aws-config/snapshot.json"), table)
        .unwrap()
        .items;
    observed.extend(
        aws_config::load_file(&dir.join("aws-config/notification.json"), table)
            .unwrap()
            .items,
    );
    (mappings, declared, observed)
}

fn run(m: &Arc<Mappings>, d: &[DeclaredResource], o: &[ObservedResource]) -> DriftReport {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let ctx = SessionContext::new();
        let summary = register_snapshots(&ctx, m, d, o).unwrap();
        DriftDetector::new(m.clone(), DriftIgnore::default())
            .run(&ctx, summary)
            .await
            .unwrap()
    })
}

fn set_path(root: &mut Value, path: &str, v: Value) {
    let mut cur = root;
    let segs: Vec<&str> = path.split('.').collect();
    for (i, seg) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        if let Ok(idx) = seg.parse::<usize>()
            && let Value::Array(a) = cur
        {
            while a.len() <= idx {
                a.push(Value::Object(Default::default()));
            }
            if last {
                a[idx] = v;
                return;
            }
            cur = &mut a[idx];
            continue;
        }
        if !cur.is_object() {
            *cur = Value::Object(Default::default());
        }
        let m = cur.as_object_mut().unwrap();
        if last {
            m.insert(seg.to_string(), v);
            return;
        }
        cur = m
            .entry(seg.to_string())
            .or_insert(Value::Object(Default::default()));
    }
}

#[test]
fn every_mapped_type_and_compared_attribute() {
    let (mappings, declared, observed) = estate();
    let baseline = run(&mappings, &declared, &observed);
    let drifted: Vec<&str> = baseline
        .findings
        .iter()
        .filter_map(|f| f.address.as_deref())
        .collect();
    let mut types_checked = 0;
    let mut attributes_checked = 0;
    for m in mappings.iter() {
        // A clean pair of this type in the estate.
        let d = declared
            .iter()
            .find(|d| {
                d.tf_type == m.terraform_type
                    && !d.type_id.is_empty()
                    && !drifted.contains(&d.address.as_str())
            })
            .unwrap_or_else(|| panic!("the demo estate has no clean {}", m.terraform_type));
        let oi = observed
            .iter()
            .position(|o| o.type_id == d.type_id)
            .unwrap_or_else(|| panic!("{} not observed", d.address));
        for (ci, c) in m.compares.iter().enumerate() {
            let mut o = observed.clone();
            let item = &mut o[oi];
            let (root, rest) = c.observed.split_once('.').unwrap_or((&c.observed, ""));
            let drifted = format!("drifted-{ci}");
            match root {
                "configuration" => set_path(&mut item.configuration, rest, drifted.into()),
                "supplementaryConfiguration" => {
                    set_path(&mut item.supplementary_configuration, rest, drifted.into())
                }
                "tags" => set_path(&mut item.tags, rest, drifted.into()),
                "resourceName" => item.resource_name = Some(drifted),
                "arn" => item.arn = Some(drifted),
                other => panic!(
                    "{}: compare[{ci}] has an observed root {other} this test cannot change",
                    m.terraform_type
                ),
            }
            let r = run(&mappings, &declared, &o);
            let f = r
                .findings
                .iter()
                .find(|f| f.address.as_deref() == Some(d.address.as_str()))
                .unwrap_or_else(|| {
                    panic!(
                        "{}: changing {} is not detected",
                        m.terraform_type, c.observed
                    )
                });
            assert_eq!(f.class, FindingClass::Changed);
            assert!(
                f.diffs.iter().any(|x| x.path == c.terraform),
                "{}: {:?}",
                c.terraform,
                f.diffs
            );
            attributes_checked += 1;
        }
        if m.compare_tags {
            let mut o = observed.clone();
            set_path(
                &mut o[oi].tags,
                "owner",
                Value::String("someone-else".into()),
            );
            let r = run(&mappings, &declared, &o);
            let f = r
                .findings
                .iter()
                .find(|f| f.address.as_deref() == Some(d.address.as_str()));
            assert!(
                f.is_some_and(|f| f.diffs.iter().any(|x| x.path == "tags.owner")),
                "{}: an added tag is not detected",
                m.terraform_type
            );
        }
        types_checked += 1;
    }
    assert!(types_checked >= 20, "{types_checked} types");
    assert!(attributes_checked >= 80, "{attributes_checked} attributes");
}

#[test]
fn not_comparable_types_are_never_missing() {
    let (mappings, declared, observed) = estate();
    let r = run(&mappings, &declared, &observed);
    // 35 managed instances, 2 not comparable: 33 comparable. The DLQ was
    // never observed, so 32 pairs (the deleted volume pairs with its deletion).
    assert_eq!(r.summary.compared, 32);
    assert!(
        r.findings
            .iter()
            .all(|f| f.tf_type.as_deref() != Some("aws_iam_role_policy_attachment"))
    );
    assert_eq!(
        r.summary
            .not_comparable
            .get("aws_iam_role_policy_attachment"),
        Some(&1)
    );
    // Deleting every observed item makes every comparable declared resource missing, nothing else.
    let r = run(&mappings, &declared, &[]);
    let comparable = declared.iter().filter(|d| !d.type_id.is_empty()).count();
    assert_eq!(r.findings.len(), comparable);
    assert!(r.findings.iter().all(|f| f.class == FindingClass::Missing));
}

#[test]
fn observed_deleted_is_missing_and_latest_capture_wins() {
    let (mappings, declared, observed) = estate();
    let mut o = observed.clone();
    let sqs = o
        .iter()
        .position(|x| x.resource_type == "AWS::SQS::Queue")
        .unwrap();
    let mut deleted = o[sqs].clone();
    deleted.status = driftline_pipeline::ConfigStatus::ResourceDeleted;
    deleted.captured_at = deleted.captured_at.map(|t| t + 1000);
    o.push(deleted);
    let r = run(&mappings, &declared, &o);
    assert!(r.findings.iter().any(|f| f.class == FindingClass::Missing
        && f.address.as_deref() == Some("aws_sqs_queue.orders")));
    // An unmanaged resource that was deleted is not reported.
    let mut o = observed.clone();
    let scratch = o
        .iter()
        .position(|x| x.resource_id == "acme-scratch-alice")
        .unwrap();
    o[scratch].status = driftline_pipeline::ConfigStatus::ResourceDeleted;
    let r = run(&mappings, &declared, &o);
    assert!(
        !r.findings
            .iter()
            .any(|f| f.resource_id == "acme-scratch-alice")
    );
}
