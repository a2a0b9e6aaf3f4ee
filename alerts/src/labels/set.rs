//! `LabelSet`: a label set as the engine keeps one per alert. A million
//! open alerts hold a million label sets, and a `BTreeMap<String, String>`
//! of four labels costs a 544-byte node plus eight strings; this keeps
//! every name and value in one string and their ends in one slice.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{LabelLookup, Labels};

/// Labels sorted by name, read-only. Compares, hashes and serialises as
/// the `Labels` map it was built from.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct LabelSet {
    /// Names and values, one after the other, in name order.
    text: Box<str>,
    /// The end of each name and of each value in `text`.
    ends: Box<[u32]>,
}

impl LabelSet {
    pub fn iter(&self) -> Pairs<'_> {
        Pairs {
            text: &self.text,
            ends: self.ends.chunks_exact(2),
            start: 0,
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        // Byte slices: no character-boundary checks on names that match.
        let text = self.text.as_bytes();
        let mut start = 0;
        for pair in self.ends.chunks_exact(2) {
            let (mid, end) = (pair[0] as usize, pair[1] as usize);
            match text[start..mid].cmp(name.as_bytes()) {
                Ordering::Equal => return Some(&self.text[mid..end]),
                // Sorted by name: it is not further on.
                Ordering::Greater => return None,
                Ordering::Less => start = end,
            }
        }
        None
    }

    pub fn len(&self) -> usize {
        self.ends.len() / 2
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn to_labels(&self) -> Labels {
        self.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }
}

/// The (name, value) pairs of a `LabelSet`, in name order.
pub struct Pairs<'a> {
    text: &'a str,
    ends: std::slice::ChunksExact<'a, u32>,
    start: usize,
}

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let pair = self.ends.next()?;
        let (mid, end) = (pair[0] as usize, pair[1] as usize);
        let start = std::mem::replace(&mut self.start, end);
        Some((&self.text[start..mid], &self.text[mid..end]))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.ends.size_hint()
    }
}

impl ExactSizeIterator for Pairs<'_> {}

impl From<&Labels> for LabelSet {
    fn from(labels: &Labels) -> Self {
        let size: usize = labels.iter().map(|(n, v)| n.len() + v.len()).sum();
        // Label sets are small: an alert with 4 GiB of labels is refused
        // long before here (the API's body limit), so u32 ends are enough.
        assert!(size <= u32::MAX as usize, "label set over 4 GiB");
        let mut text = String::with_capacity(size);
        let mut ends = Vec::with_capacity(2 * labels.len());
        for (n, v) in labels {
            text.push_str(n);
            ends.push(text.len() as u32);
            text.push_str(v);
            ends.push(text.len() as u32);
        }
        Self {
            text: text.into_boxed_str(),
            ends: ends.into_boxed_slice(),
        }
    }
}

impl From<Labels> for LabelSet {
    fn from(labels: Labels) -> Self {
        Self::from(&labels)
    }
}

impl LabelLookup for LabelSet {
    fn label(&self, name: &str) -> Option<&str> {
        self.get(name)
    }
}

/// As `Labels` orders: pair by pair, by name then value.
impl Ord for LabelSet {
    fn cmp(&self, other: &Self) -> Ordering {
        // Name, value, name, value…: each string in turn, as bytes (how
        // `str` orders). A flush sorts every alert of a group by this.
        let (a, b) = (self.text.as_bytes(), other.text.as_bytes());
        let (mut from_a, mut from_b) = (0, 0);
        for (&end_a, &end_b) in self.ends.iter().zip(other.ends.iter()) {
            let (end_a, end_b) = (end_a as usize, end_b as usize);
            match a[from_a..end_a].cmp(&b[from_b..end_b]) {
                Ordering::Equal => (from_a, from_b) = (end_a, end_b),
                unequal => return unequal,
            }
        }
        self.ends.len().cmp(&other.ends.len())
    }
}

impl PartialOrd for LabelSet {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for LabelSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for LabelSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for LabelSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Labels::deserialize(d).map(Self::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::of_pairs as l;

    #[test]
    fn reads_orders_and_serialises_as_the_map_it_came_from() {
        let a = l(&[("team", "core"), ("alertname", "DriftChanged"), ("x", "")]);
        let set = LabelSet::from(&a);
        assert_eq!(set.len(), 3);
        assert_eq!(set.get("team"), Some("core"));
        assert_eq!(set.get("x"), Some(""));
        assert_eq!(set.get("nope"), None);
        assert_eq!(set.get("a"), None);
        assert_eq!(set.get("zzz"), None);
        assert_eq!(set.get("alertname"), Some("DriftChanged"));
        assert_eq!(set.to_labels(), a);
        assert_eq!(
            serde_json::to_string(&set).unwrap(),
            serde_json::to_string(&a).unwrap()
        );
        let back: LabelSet = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(back, set);
        let b = l(&[("team", "web"), ("alertname", "DriftChanged")]);
        let c = l(&[("alertname", "DriftChanged")]);
        // A name that is a prefix of another: pairs order, not concatenations.
        let d = l(&[("a", "z"), ("b", "1")]);
        let e = l(&[("ab", ""), ("b", "1")]);
        for (x, y) in [
            (&a, &b),
            (&b, &a),
            (&a, &c),
            (&c, &a),
            (&a, &a),
            (&d, &e),
            (&e, &d),
        ] {
            assert_eq!(LabelSet::from(x).cmp(&LabelSet::from(y)), x.cmp(y));
        }
        assert!(LabelSet::from(&Labels::new()).is_empty());
        assert_eq!(LabelSet::from(&Labels::new()).iter().count(), 0);
    }
}
