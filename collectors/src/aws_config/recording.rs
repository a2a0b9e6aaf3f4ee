//! Which resource types a region's AWS Config recorder records: it must
//! exist and be recording, and its recording group (all supported types,
//! all but an exclusion list, or only an inclusion list) says which types a
//! missing item can be taken as evidence for. A type it leaves out is not
//! observed there, so a declared resource of that type is never `missing`.

use std::sync::Arc;

use aws_sdk_config::Client;
use aws_sdk_config::types::ResourceType;

use super::api::{self, ApiError, Budget};

/// Which resource types a region's recorder records (its recording group):
/// all supported (`only_types` unset) less `excluded_types`, or only
/// `only_types`.
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct Recording {
    pub(super) only_types: Option<Vec<String>>,
    pub(super) excluded_types: Vec<String>,
}

/// Types AWS Config records only with `includeGlobalResourceTypes`.
const GLOBAL_TYPES: [&str; 4] = [
    "AWS::IAM::User",
    "AWS::IAM::Group",
    "AWS::IAM::Role",
    "AWS::IAM::Policy",
];

impl Recording {
    fn of_group(g: Option<&aws_sdk_config::types::RecordingGroup>) -> Recording {
        use aws_sdk_config::types::RecordingStrategyType as Use;
        let Some(g) = g else {
            return Recording::default();
        };
        let names = |types: &[ResourceType]| -> Vec<String> {
            types.iter().map(|t| t.as_str().to_string()).collect()
        };
        let strategy = g.recording_strategy().and_then(|s| s.use_only());
        match strategy {
            Some(Use::ExclusionByResourceTypes) => Recording {
                only_types: None,
                excluded_types: g
                    .exclusion_by_resource_types()
                    .map(|e| names(e.resource_types()))
                    .unwrap_or_default(),
            },
            Some(Use::InclusionByResourceTypes) => Recording {
                only_types: Some(names(g.resource_types())),
                excluded_types: Vec::new(),
            },
            _ if !g.all_supported() && !g.resource_types().is_empty() => Recording {
                only_types: Some(names(g.resource_types())),
                excluded_types: Vec::new(),
            },
            _ => Recording {
                only_types: None,
                excluded_types: if g.include_global_resource_types() {
                    Vec::new()
                } else {
                    GLOBAL_TYPES.iter().map(|t| t.to_string()).collect()
                },
            },
        }
    }

    /// What several recorders record together: every type one of them
    /// records.
    fn union(groups: Vec<Recording>) -> Recording {
        let included: Vec<String> = groups
            .iter()
            .filter_map(|g| g.only_types.clone())
            .flatten()
            .collect();
        let mut broad = groups.iter().filter(|g| g.only_types.is_none());
        let Some(first) = broad.next() else {
            return Recording {
                only_types: Some(included),
                excluded_types: Vec::new(),
            };
        };
        let mut excluded = first.excluded_types.clone();
        for g in broad {
            excluded.retain(|t| g.excluded_types.contains(t));
        }
        excluded.retain(|t| !included.contains(t));
        Recording {
            only_types: None,
            excluded_types: excluded,
        }
    }

    pub(super) fn records_type(&self, ty: &str) -> bool {
        self.only_types
            .as_ref()
            .is_none_or(|o| o.iter().any(|t| t == ty))
            && !self.excluded_types.iter().any(|t| t == ty)
    }
}

/// What the region's recorder records: it must exist and be recording,
/// and its recording group says which types (DescribeConfigurationRecorders).
pub(super) async fn read(
    client: &Client,
    budget: &Arc<Budget>,
    label: &str,
    region: &str,
) -> Result<Recording, ApiError> {
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
        return Ok(Recording::default());
    }
    // Several recorders (a customer one and service-linked ones) record
    // the union of their groups.
    Ok(Recording::union(
        recorders
            .configuration_recorders()
            .iter()
            .map(|r| Recording::of_group(r.recording_group()))
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
        let all = Recording::of_group(Some(
            &RecordingGroup::builder()
                .all_supported(true)
                .include_global_resource_types(true)
                .build(),
        ));
        assert!(all.records_type("AWS::IAM::Role") && all.records_type("AWS::SQS::Queue"));
        let regional =
            Recording::of_group(Some(&RecordingGroup::builder().all_supported(true).build()));
        assert!(
            !regional.records_type("AWS::IAM::Role"),
            "global types need the flag"
        );
        let excl = Recording::of_group(Some(&excluding(&[ResourceType::Queue])));
        assert!(!excl.records_type("AWS::SQS::Queue") && excl.records_type("AWS::S3::Bucket"));
        let only = Recording::of_group(Some(
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
        let both = Recording::union(vec![excl.clone(), only]);
        assert!(!both.records_type("AWS::SQS::Queue") && both.records_type("AWS::S3::Bucket"));
        let queues = Recording {
            only_types: Some(vec!["AWS::SQS::Queue".into()]),
            excluded_types: Vec::new(),
        };
        let both = Recording::union(vec![excl, queues]);
        assert!(both.records_type("AWS::SQS::Queue") && both.records_type("AWS::EC2::VPC"));
    }
}
