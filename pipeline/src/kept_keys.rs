//! What of a snapshot's documents a reader keeps, when all it feeds is a
//! comparison that reads a few of their top-level keys: an AWS Config
//! item's configuration, a Terraform instance's attributes. A one-shot
//! scan's loader then never builds the rest of a configuration as a tree,
//! nor writes the rest of the attributes as text: at a million resources,
//! that was most of what reading cost. Filled by the binary from the
//! detector's projection and handed to collectors, as the type table is;
//! `None` where a reader keeps everything (`run`, the store, the rules).

use std::collections::HashMap;

use serde_json::Value;

use crate::DeclaredResource;

/// What a loader that feeds only a one-shot comparison is handed by it:
/// the keys to keep of the documents it reads, and the comparison's cut of
/// a declared resource while its attributes are still a tree. Written as
/// text first, the attributes were parsed twice more (to cut them, and to
/// digest the compared values): a fifth of a scan's instructions.
pub trait ComparisonCut: Send + Sync + std::fmt::Debug {
    fn kept_keys(&self) -> &KeptKeys;

    /// Cuts `attributes` of `d` (its identity resolved, its secrets hashed)
    /// to what the comparison reads, and sets `d.cut`. The loader then
    /// writes `attributes` as `d`'s text.
    fn cut_declared(&self, d: &mut DeclaredResource, attributes: &mut Value);
}

/// Keys by type, looked up for every record read (with SipHash, a percent
/// of a scan); the types are the mappings'.
type ByType = HashMap<String, Vec<String>, foldhash::fast::RandomState>;

/// Top-level keys kept, per AWS Config type (canonical spelling) and per
/// Terraform type.
#[derive(Debug, Default, Clone)]
pub struct KeptKeys {
    configuration: ByType,
    supplementary: ByType,
    attributes: ByType,
}

/// The keys kept of one document; a type nobody compares keeps none.
#[derive(Debug, Clone, Copy)]
pub struct Keys<'a>(Option<&'a [String]>);

impl Keys<'_> {
    /// A type keeps a handful of keys, and every key of every document is
    /// looked up: comparing them (lengths first) beats hashing the key,
    /// which was 3.5% of a scan's instructions.
    pub fn contains(&self, key: &str) -> bool {
        self.0.is_some_and(|k| k.iter().any(|kept| kept == key))
    }
}

impl KeptKeys {
    /// Keeps `key` of the `configuration` of items of `config_type`.
    pub fn keep_configuration(&mut self, config_type: &str, key: &str) {
        keep(&mut self.configuration, config_type, key);
    }

    /// Keeps `key` of the `supplementaryConfiguration` of items of `config_type`.
    pub fn keep_supplementary(&mut self, config_type: &str, key: &str) {
        keep(&mut self.supplementary, config_type, key);
    }

    /// Keeps `key` of the attributes of managed instances of `tf_type`.
    pub fn keep_attribute(&mut self, tf_type: &str, key: &str) {
        keep(&mut self.attributes, tf_type, key);
    }

    pub fn configuration(&self, config_type: &str) -> Keys<'_> {
        Keys(self.configuration.get(config_type).map(Vec::as_slice))
    }

    pub fn supplementary(&self, config_type: &str) -> Keys<'_> {
        Keys(self.supplementary.get(config_type).map(Vec::as_slice))
    }

    /// The attributes kept of a managed instance of `tf_type` whose type
    /// maps to AWS Config; other instances are only counted, and keep none.
    pub fn attributes(&self, tf_type: &str) -> Keys<'_> {
        Keys(self.attributes.get(tf_type).map(Vec::as_slice))
    }
}

fn keep(map: &mut ByType, config_type: &str, key: &str) {
    match map.get_mut(config_type) {
        Some(keys) => {
            if !keys.iter().any(|k| k == key) {
                keys.push(key.to_string());
            }
        }
        None => {
            map.insert(config_type.to_string(), vec![key.to_string()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_kept_per_type_and_document() {
        let mut k = KeptKeys::default();
        k.keep_configuration("AWS::S3::Bucket", "name");
        k.keep_supplementary("AWS::S3::Bucket", "BucketPolicy");
        assert!(k.configuration("AWS::S3::Bucket").contains("name"));
        assert!(!k.configuration("AWS::S3::Bucket").contains("BucketPolicy"));
        assert!(k.supplementary("AWS::S3::Bucket").contains("BucketPolicy"));
        assert!(!k.configuration("AWS::EC2::VPC").contains("name"));
        k.keep_attribute("aws_s3_bucket", "bucket");
        assert!(k.attributes("aws_s3_bucket").contains("bucket"));
        assert!(!k.attributes("aws_s3_bucket").contains("name"));
    }
}
