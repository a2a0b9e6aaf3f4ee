//! The few texts that repeat across a million kept rows (accounts, regions,
//! types, files, item statuses), each held once and named by a 4-byte id.

use std::collections::HashMap;

/// An id `Names` gave out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct Name(u32);

#[derive(Default)]
pub(super) struct Names {
    ids: HashMap<Box<str>, Name>,
    texts: Vec<Box<str>>,
}

impl Names {
    /// The id of `text`, given out on first sight. Ids are never taken
    /// back: what is named is bounded by the estate's accounts, regions,
    /// types and sources, not by its resources.
    pub(super) fn id(&mut self, text: &str) -> Name {
        if let Some(id) = self.ids.get(text) {
            return *id;
        }
        let id = Name(u32::try_from(self.texts.len()).expect("fewer than 2^32 names"));
        self.texts.push(text.into());
        self.ids.insert(text.into(), id);
        id
    }

    pub(super) fn text(&self, id: Name) -> &str {
        &self.texts[id.0 as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_keeps_its_id() {
        let mut names = Names::default();
        let a = names.id("eu-west-1");
        let b = names.id("us-east-1");
        assert_ne!(a, b);
        assert_eq!(names.id("eu-west-1"), a);
        assert_eq!(names.text(a), "eu-west-1");
        assert_eq!(names.text(b), "us-east-1");
    }
}
