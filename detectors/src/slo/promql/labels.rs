//! Label sets: what names a series and keys every vector element.

use driftline_pipeline::telemetry::METRIC_NAME_LABEL;
use promql_parser::label::Matchers;

/// A sorted label set, `__name__` included.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(Vec<(String, String)>);

impl Labels {
    pub fn new(mut pairs: Vec<(String, String)>) -> Self {
        pairs.sort();
        pairs.dedup_by(|a, b| a.0 == b.0);
        pairs.retain(|(_, v)| !v.is_empty());
        Self(pairs)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    pub fn name(&self) -> Option<&str> {
        self.get(METRIC_NAME_LABEL)
    }

    /// The same labels without `__name__`.
    pub fn without_name(mut self) -> Self {
        self.0.retain(|(n, _)| n != METRIC_NAME_LABEL);
        self
    }

    /// A copy without `__name__`, for labels borrowed from a series (only
    /// the kept pairs are copied).
    pub fn cow_without_name(labels: std::borrow::Cow<'_, Labels>) -> Self {
        match labels {
            std::borrow::Cow::Owned(l) => l.without_name(),
            std::borrow::Cow::Borrowed(l) => Self(
                l.0.iter()
                    .filter(|(n, _)| n != METRIC_NAME_LABEL)
                    .cloned()
                    .collect(),
            ),
        }
    }

    /// Only the labels named.
    pub fn keep(&self, names: &[String]) -> Self {
        Self(
            self.0
                .iter()
                .filter(|(n, _)| names.iter().any(|k| k == n))
                .cloned()
                .collect(),
        )
    }

    /// Every label but those named (and `__name__`).
    pub fn without(&self, names: &[String]) -> Self {
        Self(
            self.0
                .iter()
                .filter(|(n, _)| n != METRIC_NAME_LABEL && !names.iter().any(|k| k == n))
                .cloned()
                .collect(),
        )
    }

    /// Sets (or, with an empty value, removes) one label.
    pub fn set(&mut self, name: &str, value: &str) {
        match self.0.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
            Ok(i) if value.is_empty() => {
                self.0.remove(i);
            }
            Ok(i) => self.0[i].1 = value.to_string(),
            Err(_) if value.is_empty() => {}
            Err(i) => self.0.insert(i, (name.to_string(), value.to_string())),
        }
    }

    pub(super) fn matches(&self, matchers: &Matchers) -> bool {
        let all = |ms: &[promql_parser::label::Matcher]| {
            ms.iter()
                .all(|m| m.is_match(self.get(&m.name).unwrap_or("")))
        };
        if matchers.or_matchers.is_empty() {
            all(&matchers.matchers)
        } else {
            matchers.or_matchers.iter().any(|ms| all(ms))
        }
    }
}

impl std::fmt::Display for Labels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = self.name().unwrap_or("");
        write!(f, "{name}{{")?;
        let mut first = true;
        for (n, v) in self.0.iter().filter(|(n, _)| n != METRIC_NAME_LABEL) {
            if !first {
                write!(f, ", ")?;
            }
            first = false;
            write!(f, "{n}={v:?}")?;
        }
        write!(f, "}}")
    }
}
