//! What to do about a finding: revert (make the cloud match the code),
//! accept (make the code and state match the cloud), adopt (bring an
//! unmanaged resource under Terraform with an `import` block).

use driftline_pipeline::Remediation;

fn quoted(address: &str) -> String {
    // Addresses with for_each keys contain double quotes: single-quote for shells.
    format!("'{address}'")
}

pub fn for_changed(address: &str, paths: &[String]) -> Vec<Remediation> {
    vec![
        Remediation {
            action: "revert".into(),
            description: format!(
                "Re-apply the declared configuration for {}",
                paths.join(", ")
            ),
            command: format!("terraform apply -target={}", quoted(address)),
        },
        Remediation {
            action: "accept".into(),
            description:
                "Keep the change: update the code to the observed values, then record them in state"
                    .into(),
            command: format!("terraform apply -refresh-only -target={}", quoted(address)),
        },
    ]
}

pub fn for_missing(address: &str) -> Vec<Remediation> {
    vec![
        Remediation {
            action: "revert".into(),
            description: "Recreate the resource from code".into(),
            command: format!("terraform apply -target={}", quoted(address)),
        },
        Remediation {
            action: "accept".into(),
            description: "The deletion was intended: remove it from code and let a refresh drop it from state".into(),
            command: format!("terraform apply -refresh-only -target={}", quoted(address)),
        },
    ]
}

/// A Terraform resource name from a cloud id: letters, digits, `_`, `-`,
/// not starting with a digit.
pub fn resource_name(id: &str) -> String {
    let base = id.rsplit(['/', ':']).next().unwrap_or(id);
    let mut s: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
        s.insert(0, 'r');
        s.insert(1, '_');
    }
    s
}

pub fn for_unmanaged(tf_type: &str, import_id: &str) -> Vec<Remediation> {
    let name = resource_name(import_id);
    let id = serde_json::Value::String(import_id.to_string());
    vec![Remediation {
        action: "adopt".into(),
        description: format!(
            "Bring it under Terraform: add this import block, then `terraform plan -generate-config-out=generated.tf` \
             writes the matching {tf_type} resource"
        ),
        command: format!("import {{\n  to = {tf_type}.{name}\n  id = {id}\n}}"),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_commands() {
        assert_eq!(resource_name("sg-0abc"), "sg-0abc");
        assert_eq!(
            resource_name("arn:aws:sns:us-east-1:1:alerts.fifo"),
            "alerts_fifo"
        );
        assert_eq!(resource_name("123bucket"), "r_123bucket");
        let r = for_unmanaged("aws_s3_bucket", "logs.example.com");
        assert_eq!(
            r[0].command,
            "import {\n  to = aws_s3_bucket.logs_example_com\n  id = \"logs.example.com\"\n}"
        );
        assert_eq!(
            for_changed("aws_iam_role.x[\"a\"]", &["tags.Owner".into()])[0].command,
            "terraform apply -target='aws_iam_role.x[\"a\"]'"
        );
    }
}
