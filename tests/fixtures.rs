//! Every real-world fixture behaves as its folder's README says. The tests
//! iterate over the folders, so a new file is covered without a code change.

mod common;

use std::sync::Arc;

use driftline_collectors::aws_config;
use driftline_collectors::terraform::{Salt, TerraformConfig, TerraformError, load_state};
use driftline_detectors::Mappings;
use driftline_pipeline::{InstanceStatus, ResourceMode};

fn tf_config() -> TerraformConfig {
    TerraformConfig::new(
        Arc::new(Mappings::builtin().unwrap().type_table()),
        Salt::new("fixture-salt"),
    )
}

#[test]
fn every_tfstate_loads_with_the_instance_counts_its_sources_record() {
    let dir = common::fixtures().join("tfstate");
    let rows = common::tsv(&dir.join("SOURCES.tsv"));
    let cfg = tf_config();
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let state = load_state(&path, &cfg).unwrap_or_else(|e| panic!("{name} must load: {e}"));
        let row = rows
            .iter()
            .find(|r| r["file"] == name)
            .unwrap_or_else(|| panic!("{name} not in SOURCES.tsv"));
        assert_eq!(
            state.format_version.to_string(),
            row["format_version"],
            "{name}: format version"
        );
        let notes = &row["notes"];
        let expected = common::note_count(notes, "instances")
            .unwrap_or_else(|| panic!("{name}: no instances= note"));
        assert_eq!(state.resources.len(), expected, "{name}: instance count");
        if let Some(data) = common::note_count(notes, "data") {
            let mut data_resources: Vec<&str> = state
                .resources
                .iter()
                .filter(|r| r.mode == ResourceMode::Data)
                .map(|r| r.address.split('[').next().unwrap())
                .collect();
            data_resources.dedup();
            assert!(
                data_resources.len() <= data,
                "{name}: more data sources than recorded"
            );
        }
        if let Some(deposed) = common::note_count(notes, "inst:deposed") {
            assert_eq!(
                state
                    .resources
                    .iter()
                    .filter(|r| r.deposed.is_some())
                    .count(),
                deposed,
                "{name}: deposed"
            );
        }
        if let Some(tainted) = common::note_count(notes, "tainted") {
            let n = state
                .resources
                .iter()
                .filter(|r| r.status == InstanceStatus::Tainted)
                .count();
            assert_eq!(n, tainted, "{name}: tainted");
        }
        if let Some(keyed) = common::note_count(notes, "index_key_str") {
            let n = state
                .resources
                .iter()
                .filter(|r| r.index_key.as_ref().is_some_and(|k| k.is_string()))
                .count();
            assert!(n >= keyed.min(1), "{name}: string index keys");
            assert!(
                state.resources.iter().any(|r| r.address.contains("[\"")),
                "{name}: for_each address"
            );
        }
        // Module resources may all have empty instance lists (033).
        if common::note_count(notes, "modules").unwrap_or(0) > 0
            && !notes.contains("empty_instances")
        {
            assert!(
                state
                    .resources
                    .iter()
                    .any(|r| r.address.starts_with("module.")),
                "{name}: module addresses"
            );
        }
        checked += 1;
    }
    assert!(checked >= 40, "only {checked} state files found");
}

#[test]
fn v3_and_v4_of_one_estate_agree() {
    // 016 is terraformer's format 3 file, 060 its format 4 upgrade with attributes_flat.
    let dir = common::fixtures().join("tfstate");
    let cfg = tf_config();
    let v3 = load_state(&dir.join("016_RetroHazard__CloudResume.tfstate.json"), &cfg).unwrap();
    let v4 = load_state(&dir.join("060_RetroHazard__CloudResume.tfstate.json"), &cfg).unwrap();
    let ids = |s: &driftline_collectors::terraform::LoadedState| {
        let mut v: Vec<(String, Option<String>)> = s
            .resources
            .iter()
            .map(|r| (r.address.clone(), r.id.clone()))
            .collect();
        v.sort();
        v
    };
    assert_eq!(ids(&v3), ids(&v4));
    for (a, b) in v3.resources.iter().zip(&v4.resources) {
        if a.address == b.address {
            assert_eq!(
                a.attributes, b.attributes,
                "{}: attributes differ between formats",
                a.address
            );
        }
    }
}

#[test]
fn extras_behave_as_their_readme_says() {
    let dir = common::fixtures().join("tfstate/extras");
    let cfg = tf_config();
    let load = |f: &str| load_state(&dir.join(f), &cfg);
    let v1 = load("x01_adammck__terraform-inventory.v1.tfstate.json").expect("format 1 loads");
    assert_eq!(v1.format_version, 1);
    assert_eq!(v1.resources.len(), 5);
    assert!(!v1.warnings.is_empty(), "format 1 is read with a warning");
    for odd in [
        "x02_snyk__driftctl.invalid_version.tfstate.json",
        "x03_snyk__driftctl.unsupported_version.tfstate.json",
    ] {
        let s = load(odd).unwrap_or_else(|e| panic!("{odd}: {e}"));
        assert_eq!(s.format_version, 4);
        assert_eq!(s.resources.len(), 2, "{odd}");
        assert!(
            s.warnings.iter().any(|w| w.contains("terraform_version")),
            "{odd}: warns about its version"
        );
    }
    let big = load("x04_django-commons__membership.github.tfstate.json").unwrap();
    assert_eq!(big.resources.len(), 303);
    assert!(
        big.resources.iter().all(|r| r.resource_key.is_empty()),
        "GitHub resources have no AWS key"
    );
    let err = load("x05_AlexsLemonade__refinebio.git-crypt.tfstate.bin").unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, TerraformError::Format { .. }));
    assert!(
        text.contains("x05_AlexsLemonade__refinebio.git-crypt.tfstate.bin")
            && text.contains("encrypted"),
        "{text}"
    );
}

#[test]
fn every_aws_config_file_loads_as_its_kind() {
    let dir = common::fixtures().join("awsconfig");
    let rows = common::tsv(&dir.join("SOURCES.tsv"));
    let types = Mappings::builtin().unwrap().type_table();
    let mut kinds = std::collections::BTreeMap::new();
    for row in &rows {
        let name = &row["file"];
        let kind = row["kind"].as_str();
        let loaded = aws_config::load_file(&dir.join(name), &types)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            loaded.item_errors.is_empty(),
            "{name}: {:?}",
            loaded.item_errors
        );
        if kind == "schema" {
            assert!(
                loaded.skipped.is_some() && loaded.items.is_empty(),
                "{name}: a schema is skipped"
            );
        } else {
            assert!(!loaded.items.is_empty(), "{name} ({kind}) yields no item");
            for item in &loaded.items {
                assert!(
                    item.configuration.is_object(),
                    "{name}: configuration is an object"
                );
                assert!(item.tags.is_object(), "{name}: tags are a map");
                assert!(!item.resource_id.is_empty(), "{name}: resource id");
                assert!(item.resource_key.starts_with("aws/"), "{name}: key");
            }
            let rt = &row["resourceType"];
            if rt.starts_with("AWS::") && rt != "AWS::EC2::VOLUME" && kind != "history" {
                assert!(
                    loaded.items.iter().any(|i| &i.resource_type == rt),
                    "{name}: type {rt}"
                );
            }
        }
        *kinds.entry(kind.to_string()).or_insert(0) += 1;
    }
    // Every file in the folder is listed, so iterating SOURCES.tsv covers the folder.
    let on_disk = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "json")
        })
        .count();
    assert_eq!(on_disk, rows.len());
    assert!(kinds.len() >= 4, "{kinds:?}");
}

#[test]
fn aws_config_shapes_are_normalised() {
    let dir = common::fixtures().join("awsconfig");
    let types = Mappings::builtin().unwrap().type_table();
    let one = |f: &str| aws_config::load_file(&dir.join(f), &types).unwrap().items;
    // 2014 list form, upper-case type, region from the availability zone.
    let v = one("097_AWS_EC2_VOLUME.json");
    assert_eq!(v[0].resource_type, "AWS::EC2::Volume");
    assert_eq!(v[0].region, "us-west-2");
    // File-delivery keys (awsAccountId / ARN).
    let s3 = one("003_AWS_S3_Bucket.json");
    assert_eq!(s3[0].account, "934654633380");
    assert_eq!(
        s3[0].arn.as_deref(),
        Some("arn:aws:s3:::mborch-test-bucket-config-item")
    );
    assert_eq!(s3[0].captured_at, Some(1_549_956_556_288));
    // batch-get output with epoch float time and JSON-string configuration.
    let b = one("103_MyCustomNamespace_Testing_WordPress.json");
    assert_eq!(b[0].configuration["Name"], "My example custom resource.");
    assert_eq!(b[0].captured_at, Some(1_569_605_832_673));
    // boto3 recording with datetime objects; tags from the configuration's list.
    let h = one("126_AWS_EC2_SecurityGroup.json");
    assert!(h.iter().all(|i| i.captured_at.is_some()));
    // select output without resourceType: told from the columns.
    let sel = one("134_AWS_EC2_SecurityGroup.json");
    assert_eq!(
        (sel[0].resource_type.as_str(), sel[0].resource_id.as_str()),
        ("AWS::EC2::SecurityGroup", "sg-6c7fa917")
    );
    assert_eq!(sel[0].tags["NetworkLocation"], "Private");
    // Oversized notification: only a summary.
    let o = one("106_AWS_EC2_Instance.json");
    assert!(o[0].summary_only);
}
