//! What every state format reads into: one resource instance object.

use serde_json::Value;

/// One resource instance object as the state records it.
#[derive(Debug, Clone)]
pub struct StateInstance {
    pub address: String,
    pub managed: bool,
    pub tf_type: String,
    pub provider: String,
    pub index_key: Option<Value>,
    pub tainted: bool,
    pub deposed: Option<String>,
    pub attributes: Value,
    /// Whether the reader already cut `attributes` to what a scan's cut
    /// keeps, so `declare` need not look at each key again.
    pub attributes_cut: bool,
    pub sensitive_attributes: Option<Value>,
    pub identity: Option<Value>,
}
