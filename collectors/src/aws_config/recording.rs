//! Which resource types a region's AWS Config recorder records: it must
//! exist and be recording, and its recording group (all supported types,
//! all but an exclusion list, or only an inclusion list) says which types a
//! missing item can be taken as evidence for. A type it leaves out is not
//! observed there, so a declared resource of that type is never `missing`.

use std::sync::Arc;

use aws_sdk_config::Client;
use aws_sdk_config::types::ResourceType;

use driftline_pipeline::TypeSet;

use super::api::{self, ApiError, Budget};

/// Types AWS Config records only with `includeGlobalResourceTypes`.
const GLOBAL_TYPES: [&str; 4] = [
    "AWS::IAM::User",
    "AWS::IAM::Group",
    "AWS::IAM::Role",
    "AWS::IAM::Policy",
];

/// The types one recorder's recording group records.
fn of_group(g: Option<&aws_sdk_config::types::RecordingGroup>) -> TypeSet {
    use aws_sdk_config::types::RecordingStrategyType as Use;
    let Some(g) = g else {
        return TypeSet::default();
    };
    let names = |types: &[ResourceType]| -> Vec<String> {
        types.iter().map(|t| t.as_str().to_string()).collect()
    };
    let strategy = g.recording_strategy().and_then(|s| s.use_only());
    match strategy {
        Some(Use::ExclusionByResourceTypes) => TypeSet {
            only_types: None,
            excluded_types: g
                .exclusion_by_resource_types()
                .map(|e| names(e.resource_types()))
                .unwrap_or_default(),
        },
        Some(Use::InclusionByResourceTypes) => TypeSet {
            only_types: Some(names(g.resource_types())),
            excluded_types: Vec::new(),
        },
        _ if !g.all_supported() && !g.resource_types().is_empty() => TypeSet {
            only_types: Some(names(g.resource_types())),
            excluded_types: Vec::new(),
        },
        _ => TypeSet {
            only_types: None,
            excluded_types: if g.include_global_resource_types() {
                Vec::new()
            } else {
                GLOBAL_TYPES.iter().map(|t| t.to_string()).collect()
            },
        },
    }
}

/// What the region's recorder records: it must exist and be recording,
/// and its recording group says which types (DescribeConfigurationRecorders).
pub(super) async fn read(
    client: &Client,
    budget: &Arc<Budget>,
    label: &str,
    region: &str,
) -> Result<TypeSet, ApiError> {
    let status = api::call(
        budget,
        "config",
        "DescribeConfigurationRecorderStatus",
        label,
        client.describe_configuration_recorder_status().send(),
    )
    .await?;
    let Some(first) = status.configuration_recorders_status().first() else {
        return Err(ApiError::NoRecorder {
            region: region.to_string(),
        });
    };
    if !status
        .configuration_recorders_status()
        .iter()
        .any(|r| r.recording())
    {
        return Err(ApiError::NotRecording {
            region: region.to_string(),
            name: first.name().unwrap_or("default").to_string(),
        });
    }
    let recorders = api::call(
        budget,
        "config",
        "DescribeConfigurationRecorders",
        label,
        client.describe_configuration_recorders().send(),
    )
    .await?;
    if recorders.configuration_recorders().is_empty() {
        // A status without a recorder description: take it as all types.
        return Ok(TypeSet::default());
    }
    // Several recorders (a customer one and service-linked ones) record
    // the union of their groups.
    Ok(TypeSet::union(
        recorders
            .configuration_recorders()
            .iter()
            .map(|r| of_group(r.recording_group()))
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_config::types::{
        ExclusionByResourceTypes, RecordingGroup, RecordingStrategy, RecordingStrategyType,
    };

    fn excluding(types: &[ResourceType]) -> RecordingGroup {
        RecordingGroup::builder()
            .all_supported(false)
            .exclusion_by_resource_types(
                ExclusionByResourceTypes::builder()
                    .set_resource_types(Some(types.to_vec()))
                    .build(),
            )
            .recording_strategy(
                RecordingStrategy::builder()
                    .use_only(RecordingStrategyType::ExclusionByResourceTypes)
                    .build(),
            )
            .build()
    }

    #[test]
    fn groups_say_which_types_are_recorded() {
        let all = of_group(Some(
            &RecordingGroup::builder()
                .all_supported(true)
                .include_global_resource_types(true)
                .build(),
        ));
        assert!(all.records_type("AWS::IAM::Role") && all.records_type("AWS::SQS::Queue"));
        let regional = of_group(Some(&RecordingGroup::builder().all_supported(true).build()));
        assert!(
            !regional.records_type("AWS::IAM::Role"),
            "global types need the flag"
        );
        let excl = of_group(Some(&excluding(&[ResourceType::Queue])));
        assert!(!excl.records_type("AWS::SQS::Queue") && excl.records_type("AWS::S3::Bucket"));
        let only = of_group(Some(
            &RecordingGroup::builder()
                .all_supported(false)
                .resource_types(ResourceType::Bucket)
                .recording_strategy(
                    RecordingStrategy::builder()
                        .use_only(RecordingStrategyType::InclusionByResourceTypes)
                        .build(),
                )
                .build(),
        ));
        assert!(only.records_type("AWS::S3::Bucket") && !only.records_type("AWS::SQS::Queue"));
        // Together they record what either records.
        let both = TypeSet::union(vec![excl.clone(), only]);
        assert!(!both.records_type("AWS::SQS::Queue") && both.records_type("AWS::S3::Bucket"));
        let queues = TypeSet {
            only_types: Some(vec!["AWS::SQS::Queue".into()]),
            excluded_types: Vec::new(),
        };
        let both = TypeSet::union(vec![excl, queues]);
        assert!(both.records_type("AWS::SQS::Queue") && both.records_type("AWS::EC2::VPC"));
    }
}
