//! The spine of driftline: the record model every crate speaks, its Arrow
//! schemas, and the doors that later stages plug into (`Bus` now; `Store`
//! arrives with the streaming issue).
//!
//! Data flows one way: collectors → bus → detectors → alerts → notifiers.
//! Nothing in here knows about a particular source or detector.

pub mod bus;
pub mod identity;
pub mod model;
pub mod schema;

pub use bus::{Bus, BusError, DeadLetter, InProcessBus, Record, Topic};
pub use identity::{Arn, TypeIdentity, TypeTable};
pub use model::{
    AttributeDiff, ConfigStatus, Coverage, DeclaredResource, Finding, FindingClass, InstanceStatus,
    ObservedResource, Remediation, ResourceMode, fingerprint, format_epoch_ms, resource_key,
    type_id,
};
