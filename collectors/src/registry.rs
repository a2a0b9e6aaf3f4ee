//! Which connector reads an input. Every input a user names — on the
//! command line (`--state`, `--observed`) or in `[watch]` — goes through
//! here, and each connector that reads something other than local files
//! claims its own specs with one line in `STATE` or `OBSERVED`. What no
//! connector claims is a local path (a file, a folder or a glob), read by
//! the side's file loader.

use driftline_pipeline::SourceSide;

use crate::aws_config::api::AwsConfigSettings;
use crate::aws_config::live::AwsConfigApiCollector;
use crate::terraform::backends::StateLocation;

/// An input, as the connector that owns it reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A local file, folder or glob, read by the side's file loader.
    Local(String),
    /// Terraform state in S3 or behind an HTTP backend.
    RemoteState(StateLocation),
    /// The live AWS Config API (a region list or an aggregator).
    AwsConfigApi(Box<AwsConfigSettings>),
}

/// A connector's claim on a spec: `None` when the spec is not its own,
/// `Some(Err)` when it is but cannot work (named in the message).
type Claim = fn(&str, &AwsConfigSettings) -> Option<Result<Input, String>>;

/// The connectors that read declared state from somewhere other than
/// local files.
const STATE: &[Claim] = &[|spec, _| StateLocation::parse(spec).map(|r| r.map(Input::RemoteState))];

/// The connectors that read what runs from somewhere other than local
/// files.
const OBSERVED: &[Claim] = &[|spec, aws| {
    AwsConfigApiCollector::settings_from_spec(spec, aws)
        .map(|s| Ok(Input::AwsConfigApi(Box::new(s))))
}];

fn claims(side: SourceSide) -> &'static [Claim] {
    match side {
        SourceSide::Declared => STATE,
        SourceSide::Observed => OBSERVED,
    }
}

/// What `spec` is on `side`; `aws` is the base for `aws-config…` specs.
pub fn input(spec: &str, side: SourceSide, aws: &AwsConfigSettings) -> Result<Input, String> {
    claims(side)
        .iter()
        .find_map(|claim| claim(spec, aws))
        .unwrap_or_else(|| Ok(Input::Local(spec.to_string())))
}

/// Whether a spec names something other than a local path on either side
/// (a config file's relative paths are rebased; these are not).
pub fn is_remote(spec: &str) -> bool {
    [SourceSide::Declared, SourceSide::Observed]
        .into_iter()
        .any(|side| {
            !matches!(
                input(spec, side, &AwsConfigSettings::default()),
                Ok(Input::Local(_))
            )
        })
}

/// A side's inputs, grouped by the connector that reads them.
#[derive(Debug, Default)]
pub struct Inputs {
    pub local: Vec<String>,
    pub remote_state: Vec<StateLocation>,
    pub aws_config_api: Vec<AwsConfigSettings>,
}

/// Every spec of one side, grouped; the first that cannot work is the error.
pub fn inputs(
    specs: &[String],
    side: SourceSide,
    aws: &AwsConfigSettings,
) -> Result<Inputs, String> {
    let mut out = Inputs::default();
    for spec in specs {
        match input(spec, side, aws)? {
            Input::Local(p) => out.local.push(p),
            Input::RemoteState(l) => out.remote_state.push(l),
            Input::AwsConfigApi(s) => out.aws_config_api.push(*s),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_connector_claims_its_own_specs() {
        let aws = AwsConfigSettings::default();
        let state = |s: &str| input(s, SourceSide::Declared, &aws);
        let observed = |s: &str| input(s, SourceSide::Observed, &aws);
        assert!(matches!(
            state("s3://b/k.tfstate"),
            Ok(Input::RemoteState(_))
        ));
        assert!(matches!(
            state("https://tf.example/state"),
            Ok(Input::RemoteState(_))
        ));
        assert!(
            state("https://user:pw@tf.example/state").is_err(),
            "credentials in a URL"
        );
        assert_eq!(state("states/"), Ok(Input::Local("states/".into())));
        assert!(matches!(
            observed("aws-config:eu-west-1"),
            Ok(Input::AwsConfigApi(_))
        ));
        // A folder named like a state URL's scheme is still a folder on the other side.
        assert_eq!(observed("s3://b/k"), Ok(Input::Local("s3://b/k".into())));
        assert!(is_remote("aws-config") && is_remote("s3://b/k") && !is_remote("./aws-config"));
        let grouped = inputs(
            &["a/".into(), "aws-config:eu-west-1,us-east-1".into()],
            SourceSide::Observed,
            &aws,
        )
        .unwrap();
        assert_eq!(grouped.local, ["a/"]);
        assert_eq!(
            grouped.aws_config_api[0].regions,
            ["eu-west-1", "us-east-1"]
        );
    }
}
