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
}

impl Topic {
    pub const ALL: [Topic; 4] = [
        Topic::Config,
        Topic::Declared,
        Topic::Findings,
        Topic::DeadLetters,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Topic::Config => "driftline.config",
            Topic::Declared => "driftline.declared",
            Topic::Findings => "driftline.findings",
            Topic::DeadLetters => "driftline.dlq",
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
}

impl std::fmt::Display for Topic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
