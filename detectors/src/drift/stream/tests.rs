use super::*;
use driftline_pipeline::codec::{decode_table, encode_records};
use driftline_pipeline::schema::{DECLARED_SCHEMA, OBSERVED_SCHEMA};
use driftline_pipeline::{
    ConfigStatus, DeclaredResource, InstanceStatus, ObservedResource, Record, ResourceMode, Topic,
};
use serde_json::json;

const KEY_D: &str = "aws/-/-/AWS::SQS::Queue/https://sqs/q";
const KEY_O: &str = "aws/1/eu-west-1/AWS::SQS::Queue/https://sqs/q";

pub(in crate::drift) fn declared(timeout: u64) -> DeclaredResource {
    DeclaredResource {
        resource_key: KEY_D.into(),
        type_id: "AWS::SQS::Queue/https://sqs/q".into(),
        account: "-".into(),
        region: "-".into(),
        address: "aws_sqs_queue.q".into(),
        mode: ResourceMode::Managed,
        tf_type: "aws_sqs_queue".into(),
        provider: "aws".into(),
        id: Some("https://sqs/q".into()),
        index_key: None,
        status: InstanceStatus::Ready,
        deposed: None,
        attributes: json!({"id": "https://sqs/q", "url": "https://sqs/q", "visibility_timeout_seconds": timeout, "tags": {"team": "core"}}).to_string(),
        sensitive_paths: vec![],
        source: "s.tfstate".into(),
        serial: 1,
        lineage: "l".into(),
        observed_at: 0,
        cut: None,
    }
}

pub(in crate::drift) fn observed(timeout: u64) -> ObservedResource {
    ObservedResource {
        resource_key: KEY_O.into(),
        type_id: "AWS::SQS::Queue/https://sqs/q".into(),
        account: "1".into(),
        region: "eu-west-1".into(),
        resource_type: "AWS::SQS::Queue".into(),
        resource_id: "https://sqs/q".into(),
        resource_name: Some("q".into()),
        arn: Some("arn:aws:sqs:eu-west-1:1:q".into()),
        status: ConfigStatus::Ok,
        captured_at: Some(1),
        configuration_state_id: None,
        configuration: json!({"VisibilityTimeout": timeout}),
        supplementary_configuration: json!({}),
        tags: json!({"team": "core"}),
        relationships: json!([]),
        summary_only: false,
        source: "o.json".into(),
    }
}

fn apply(sd: &mut StreamingDrift, rec: Record) -> String {
    let declared = match &rec {
        Record::Declared(_) => true,
        Record::Deleted { key } => key == KEY_D,
        _ => false,
    };
    let (side, topic, schema) = if declared {
        (Side::Declared, Topic::Declared, &*DECLARED_SCHEMA)
    } else {
        (Side::Observed, Topic::Config, &*OBSERVED_SCHEMA)
    };
    let msgs = encode_records(topic, &[rec]).unwrap();
    let m = &msgs[0];
    match &m.payload {
        None => sd.apply(side, 0, &m.key, None).unwrap(),
        Some(p) => {
            let d = decode_table(schema, &[p.as_slice()]);
            assert!(d.rejected.is_empty(), "{:?}", d.rejected);
            sd.apply(side, 0, &m.key, Some((&d.batch, 0))).unwrap()
        }
    }
}

fn events(evs: &[FindingEvent]) -> Vec<(FindingEventKind, FindingClass)> {
    let mut v: Vec<_> = evs.iter().map(|e| (e.event, e.finding.class)).collect();
    v.sort_by_key(|(e, c)| (e.as_str(), *c));
    v
}

pub(in crate::drift) fn sd() -> StreamingDrift {
    StreamingDrift::new(
        Arc::new(Mappings::builtin().unwrap()),
        DriftIgnore::default(),
    )
}

#[tokio::test]
async fn events_follow_the_state_of_each_resource() {
    let mut sd = sd();
    let g: HashSet<String> = [apply(&mut sd, Record::Declared(Box::new(declared(30))))].into();
    let ev = sd.evaluate(&g, true, 1).await.unwrap();
    assert_eq!(
        events(&ev),
        vec![(FindingEventKind::New, FindingClass::Missing)]
    );

    // The queue shows up as declared: missing resolves, nothing else opens.
    apply(&mut sd, Record::Observed(Box::new(observed(30))));
    let ev = sd.evaluate(&g, true, 2).await.unwrap();
    assert_eq!(
        events(&ev),
        vec![(FindingEventKind::Resolved, FindingClass::Missing)]
    );
    assert!(sd.open_findings().is_empty());

    // Someone edits the timeout in the console, then edits it again.
    apply(&mut sd, Record::Observed(Box::new(observed(60))));
    let ev = sd.evaluate(&g, true, 3).await.unwrap();
    assert_eq!(
        events(&ev),
        vec![(FindingEventKind::New, FindingClass::Changed)]
    );
    assert_eq!(ev[0].finding.diffs[0].path, "visibility_timeout_seconds");
    apply(&mut sd, Record::Observed(Box::new(observed(90))));
    let ev = sd.evaluate(&g, true, 4).await.unwrap();
    assert_eq!(
        events(&ev),
        vec![(FindingEventKind::Changed, FindingClass::Changed)]
    );
    assert_eq!(ev[0].finding.diffs[0].observed, json!("90"));
    // Re-evaluating the same state says nothing.
    assert!(sd.evaluate(&g, true, 5).await.unwrap().is_empty());

    // Terraform state catches up (accepted drift): the finding resolves.
    apply(&mut sd, Record::Declared(Box::new(declared(90))));
    let ev = sd.evaluate(&g, true, 6).await.unwrap();
    assert_eq!(
        events(&ev),
        vec![(FindingEventKind::Resolved, FindingClass::Changed)]
    );

    // The resource is removed from state: it is now unmanaged.
    apply(&mut sd, Record::Deleted { key: KEY_D.into() });
    let ev = sd.evaluate(&g, true, 7).await.unwrap();
    assert_eq!(
        events(&ev),
        vec![(FindingEventKind::New, FindingClass::Unmanaged)]
    );
    assert_eq!(sd.open_counts()[&FindingClass::Unmanaged], 1);

    // Handing the partition away forgets it.
    sd.revoke(&[0].into());
    assert!(sd.open_findings().is_empty());
    assert_eq!(sd.open_counts().values().sum::<usize>(), 0);
}

#[tokio::test]
async fn rebuilding_state_emits_nothing_and_later_changes_diff_against_it() {
    let mut sd = sd();
    let mut g = HashSet::new();
    g.insert(apply(&mut sd, Record::Declared(Box::new(declared(30)))));
    g.insert(apply(&mut sd, Record::Observed(Box::new(observed(60)))));
    assert!(sd.evaluate(&g, false, 1).await.unwrap().is_empty());
    assert_eq!(sd.open_findings().len(), 1);
    apply(&mut sd, Record::Observed(Box::new(observed(30))));
    let ev = sd.evaluate(&g, true, 2).await.unwrap();
    assert_eq!(
        events(&ev),
        vec![(FindingEventKind::Resolved, FindingClass::Changed)]
    );
}

#[test]
fn contradicting_and_incomparable_records_are_refused() {
    let mut sd = sd();
    let msgs = encode_records(Topic::Config, &[Record::Observed(Box::new(observed(1)))]).unwrap();
    let d = decode_table(&OBSERVED_SCHEMA, &[msgs[0].payload.as_deref().unwrap()]);
    let other = "aws/1/eu-west-1/AWS::SQS::Queue/https://sqs/other";
    assert!(matches!(
        sd.apply(Side::Observed, 0, other, Some((&d.batch, 0))),
        Err(Skip::Invalid(_))
    ));
    assert_eq!(
        sd.apply(Side::Declared, 0, "tf/s.tfstate#null_resource.x", None),
        Err(Skip::NotComparable)
    );
}

pub(in crate::drift) fn region_status(up: bool) -> SourceStatus {
    let s = if up {
        SourceStatus::up(
            driftline_pipeline::SourceSide::Observed,
            "aws-config://eu-west-1",
            5,
        )
    } else {
        SourceStatus::down(
            driftline_pipeline::SourceSide::Observed,
            "aws-config://eu-west-1",
            "region eu-west-1: AccessDeniedException on ListDiscoveredResources",
            Some(1),
            5,
        )
    };
    s.in_scope("1", "eu-west-1")
}

#[tokio::test]
async fn a_scope_nobody_reads_is_frozen_then_thawed_by_its_status() {
    let mut sd = sd();
    let key = "source-status/aws-config://eu-west-1";
    let g: HashSet<String> = [apply(&mut sd, Record::Declared(Box::new(declared(30))))].into();
    apply(&mut sd, Record::Observed(Box::new(observed(30))));
    assert!(
        sd.apply_status(0, key, Some(region_status(true)))
            .unwrap()
            .is_empty()
    );
    assert!(sd.evaluate(&g, true, 1).await.unwrap().is_empty());

    // The region goes dark: one source_unavailable, and the queue's group
    // is not evaluated, whatever arrives meanwhile.
    sd.apply_status(0, key, Some(region_status(false))).unwrap();
    apply(&mut sd, Record::Deleted { key: KEY_O.into() });
    let ev = sd.evaluate(&g, true, 2).await.unwrap();
    assert_eq!(
        events(&ev),
        vec![(FindingEventKind::New, FindingClass::SourceUnavailable)]
    );
    assert_eq!(ev[0].finding.region, "eu-west-1");
    assert!(
        ev[0]
            .finding
            .summary
            .contains("its last good reading is kept")
    );

    // Read again: the frozen group comes back to be evaluated, and only
    // then is the queue missing.
    apply(&mut sd, Record::Observed(Box::new(observed(30))));
    apply(&mut sd, Record::Deleted { key: KEY_O.into() });
    let thawed = sd.apply_status(0, key, Some(region_status(true))).unwrap();
    assert_eq!(thawed.len(), 1);
    let ev = sd
        .evaluate(&thawed.into_iter().collect(), true, 3)
        .await
        .unwrap();
    assert_eq!(
        events(&ev),
        vec![
            (FindingEventKind::New, FindingClass::Missing),
            (FindingEventKind::Resolved, FindingClass::SourceUnavailable),
        ]
    );

    // A status under another source's key is refused.
    assert!(matches!(
        sd.apply_status(0, "source-status/other", Some(region_status(true))),
        Err(Skip::Invalid(_))
    ));
}

#[test]
fn a_kept_snapshot_holds_only_what_the_comparison_reads() {
    let mut rows = Rows::new(&Mappings::builtin().unwrap());
    let mut d = declared(30);
    d.attributes = json!({"visibility_timeout_seconds": 30, "tags": {"team": "core"}, "not_compared": "x".repeat(10_000)}).to_string();
    let mut o = observed(30);
    o.configuration = json!({"VisibilityTimeout": 30, "NotCompared": "y".repeat(10_000)});
    for (side, topic, schema, rec) in [
        (
            Side::Declared,
            Topic::Declared,
            &*DECLARED_SCHEMA,
            Record::Declared(Box::new(d)),
        ),
        (
            Side::Observed,
            Topic::Config,
            &*OBSERVED_SCHEMA,
            Record::Observed(Box::new(o)),
        ),
    ] {
        let msgs = encode_records(topic, &[rec]).unwrap();
        let decoded = decode_table(schema, &[msgs[0].payload.as_deref().unwrap()]);
        let key = msgs[0].key.as_str();
        let (_, type_id) = rows.key_scope(key).unwrap();
        let kept = rows.keep(side, &decoded.batch, 0);
        let back = rows
            .batch(
                side,
                &[Kept {
                    type_id,
                    row: &kept,
                }],
            )
            .unwrap();
        let doc = if side == Side::Declared {
            "attributes"
        } else {
            "configuration"
        };
        let text = back
            .column_by_name(doc)
            .unwrap()
            .as_string::<i32>()
            .value(0);
        assert!(text.len() < 200, "{doc} kept whole: {} bytes", text.len());
        assert!(text.contains("30"), "{text}");
        // Every other column the join reads comes back as it was decoded.
        for field in back.schema().fields() {
            let name = field.name();
            if name == doc {
                continue;
            }
            let column = |b: &RecordBatch| b.column_by_name(name).unwrap().slice(0, 1);
            assert_eq!(&column(&back), &column(&decoded.batch), "{name}");
        }
        assert!(!kept.not_recorded);
    }
}
