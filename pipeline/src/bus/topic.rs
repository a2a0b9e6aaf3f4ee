//! The topics records travel on, and what each holds.

/// The topics of DESIGN §3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// Latest observed snapshots, keyed by resource key (compacted).
    Config,
    /// Latest declared snapshots, keyed by resource key (compacted).
    Declared,
    /// Finding events, keyed by fingerprint (compacted: the latest event
    /// per finding).
    Findings,
    /// Rejected input with its reason.
    DeadLetters,
    /// Metric samples, as remote-write messages keyed by series bucket.
    Metrics,
    /// Log records, keyed by service bucket.
    Logs,
}

impl Topic {
    pub const ALL: [Topic; 6] = [
        Topic::Config,
        Topic::Declared,
        Topic::Findings,
        Topic::DeadLetters,
        Topic::Metrics,
        Topic::Logs,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Topic::Config => "driftline.config",
            Topic::Declared => "driftline.declared",
            Topic::Findings => "driftline.findings",
            Topic::DeadLetters => "driftline.dlq",
            Topic::Metrics => "driftline.metrics",
            Topic::Logs => "driftline.logs",
        }
    }

    pub fn from_name(name: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Compacted topics are tables: the latest record per key survives.
    /// The snapshot topics hold the latest snapshot per resource; the
    /// findings topic the latest event per fingerprint (the store keeps the
    /// history).
    pub fn is_table(self) -> bool {
        matches!(self, Topic::Config | Topic::Declared | Topic::Findings)
    }

    /// Telemetry streams: high volume, so a bus that cannot keep up refuses
    /// more (`BusError::Full`) rather than buffer without bound.
    pub fn is_telemetry(self) -> bool {
        matches!(self, Topic::Metrics | Topic::Logs)
    }
}

impl std::fmt::Display for Topic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
