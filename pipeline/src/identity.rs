//! How a declared resource finds its observed twin: the type table maps a
//! Terraform type to an AWS Config type and names the attribute that holds
//! the Config `resourceId`. It is filled from the detector's mapping files
//! by the binary and handed to collectors, which never read those files.

use std::collections::HashMap;

/// The tables below are looked up for every record read (SipHash was a
/// percent of a scan); their keys are the mappings', never the input's.
type FastState = foldhash::fast::RandomState;

/// The identity part of one type mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeIdentity {
    pub tf_type: String,
    pub config_type: String,
    /// Terraform attribute whose value is the AWS Config `resourceId`.
    pub id_attribute: String,
    /// AWS Config reports these in region `global` (IAM).
    pub global: bool,
}

#[derive(Debug, Clone, Default)]
pub struct TypeTable {
    by_tf: HashMap<String, TypeIdentity, FastState>,
    /// Lower-cased Config type → canonical spelling. Old notifications write
    /// `AWS::EC2::VOLUME`.
    canonical: HashMap<String, String, FastState>,
}

impl TypeTable {
    pub fn new(entries: impl IntoIterator<Item = TypeIdentity>) -> Self {
        let mut t = TypeTable::default();
        for e in entries {
            t.canonical
                .insert(e.config_type.to_ascii_lowercase(), e.config_type.clone());
            t.by_tf.insert(e.tf_type.clone(), e);
        }
        t
    }

    pub fn by_tf_type(&self, tf_type: &str) -> Option<&TypeIdentity> {
        self.by_tf.get(tf_type)
    }

    /// The canonical spelling of a Config type if it is mapped, else itself.
    pub fn canonical_config_type<'a>(&'a self, t: &'a str) -> &'a str {
        if let Some(c) = self.canonical.get(t) {
            return c;
        }
        match self.canonical.get(&t.to_ascii_lowercase()) {
            Some(c) => c,
            None => t,
        }
    }

    /// True when some Terraform type maps to this Config type.
    pub fn is_mapped_config_type(&self, t: &str) -> bool {
        self.canonical.contains_key(&t.to_ascii_lowercase())
    }

    /// Every mapped Config type, canonical spelling, sorted: what a live
    /// inventory asks AWS Config for when no types are configured.
    pub fn config_types(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.canonical.values().map(String::as_str).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    pub fn len(&self) -> usize {
        self.by_tf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_tf.is_empty()
    }
}

/// The parts of an ARN (`arn:partition:service:region:account:resource`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arn<'a> {
    pub partition: &'a str,
    pub service: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    pub resource: &'a str,
}

impl<'a> Arn<'a> {
    pub fn parse(s: &'a str) -> Option<Self> {
        let mut it = s.splitn(6, ':');
        if it.next()? != "arn" {
            return None;
        }
        Some(Arn {
            partition: it.next()?,
            service: it.next()?,
            region: it.next()?,
            account: it.next()?,
            resource: it.next()?,
        })
    }
}

/// `us-east-1a` → `us-east-1`; leaves anything else alone.
pub fn region_of_zone(zone: &str) -> Option<&str> {
    let z = zone.trim();
    let last = z.chars().last()?;
    if last.is_ascii_lowercase() && z.len() > 1 && z.as_bytes()[z.len() - 2].is_ascii_digit() {
        Some(&z[..z.len() - 1])
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_arns() {
        let a = Arn::parse("arn:aws:ec2:us-east-1:123456789012:security-group/sg-1").unwrap();
        assert_eq!(
            (a.region, a.account, a.resource),
            ("us-east-1", "123456789012", "security-group/sg-1")
        );
        let s3 = Arn::parse("arn:aws:s3:::bucket").unwrap();
        assert_eq!((s3.region, s3.account, s3.resource), ("", "", "bucket"));
        assert!(Arn::parse("sg-1").is_none());
    }

    #[test]
    fn zones_to_regions() {
        assert_eq!(region_of_zone("us-west-2b"), Some("us-west-2"));
        assert_eq!(region_of_zone("Regional"), None);
        assert_eq!(region_of_zone("Not Applicable"), None);
    }

    #[test]
    fn canonical_types() {
        let t = TypeTable::new([TypeIdentity {
            tf_type: "aws_ebs_volume".into(),
            config_type: "AWS::EC2::Volume".into(),
            id_attribute: "id".into(),
            global: false,
        }]);
        assert_eq!(
            t.canonical_config_type("AWS::EC2::VOLUME"),
            "AWS::EC2::Volume"
        );
        assert_eq!(t.canonical_config_type("AWS::X::Y"), "AWS::X::Y");
    }
}
