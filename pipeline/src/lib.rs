//! The spine of driftline: the record model every crate speaks, its Arrow
//! schemas, and the doors that later stages plug into (`Bus`, `Store`).
//!
//! Data flows one way: collectors → bus → detectors → alerts → notifiers.
//! Nothing in here knows about a particular source or detector.

pub mod auth;
pub mod bus;
pub mod codec;
pub mod focus;
pub mod identity;
pub mod kept_keys;
pub mod metrics;
pub mod model;
pub mod schema;
pub mod secrets;
pub mod source_status;
pub mod stage;
pub mod store;
pub mod telemetry;
pub mod text;
pub mod time;

pub use bus::{
    Bus, BusError, BusSink, Collected, Consumer, ConsumerSpec, DeadLetter, Event, InProcessBus,
    Message, OutMessage, Producer, Record, RecordSink, SnapshotSet, Snapshots, Topic, TopicLayout,
    partition_for,
};
pub use identity::{Arn, TypeIdentity, TypeTable};
pub use kept_keys::{ComparisonCut, KeptKeys};
pub use metrics::metrics;

/// The shared outbound HTTP client: timeouts so a hung peer cannot stall a
/// stage, and rustls with ring (no second TLS stack).
pub fn http_client() -> reqwest::blocking::Client {
    http_client_with_timeout(std::time::Duration::from_secs(10))
}

/// The shared client with another whole-request timeout (a scrape's).
pub fn http_client_with_timeout(timeout: std::time::Duration) -> reqwest::blocking::Client {
    // Several crates may race to install it; any installed provider will do.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::builder()
        .timeout(timeout)
        .connect_timeout(std::time::Duration::from_secs(5))
        .user_agent(concat!("driftline/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_else(|_| reqwest::blocking::Client::new())
}
pub use model::{
    AttributeDiff, ConfigStatus, ConfigurationChange, Coverage, CutForComparison, DRIFT_DETECTOR,
    DeclaredResource, Finding, FindingClass, FindingEvent, FindingEventKind, InstanceStatus,
    ObservedResource, ProbableCause, Remediation, ResourceMode, SCHEMA_VERSION, SloBurn,
    fingerprint, join_key, resource_key, split_key, type_id, type_id_of_key,
};
pub use source_status::{SourceSide, SourceStatus, TypeSet, is_status_key, status_key};
pub use store::{FindingsOut, FindingsWriter, ParquetStore, Store, StoreError};
pub use time::{format_epoch_ms, now_ms, parse_iso8601_ms};
