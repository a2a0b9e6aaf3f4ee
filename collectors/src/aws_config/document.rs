//! Reading an item document as a stream. Snapshot and history files are
//! one object around a `configurationItems` array that can hold a million
//! items: each item is decoded, found (`shapes`) and handed on before the
//! next is read, so no tree of the whole file is built. Every other shape
//! (notifications, select and batch-get outputs) is small and goes through
//! `shapes::find` whole, as before.

use serde::Deserialize as _;
use serde::de::{
    self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor,
    value::MapAccessDeserializer,
};
use serde_json::{Map, Value};

use super::cut::{Element, ItemCut, Read};
use super::shapes::{self, Found, Skip};
use crate::file_read::Elements;

/// Why a document could not be read.
pub(super) enum DocumentError {
    Json(serde_json::Error),
    /// The JSON is fine but holds no configuration item where one belongs.
    Shape(String),
}

/// Walks a document, handing each item found to `emit` in document order.
/// On an error part way, the items before it were already emitted. With
/// `cut`, streamed items keep only the kept keys of their documents.
/// `elements` says how an array of items is read.
pub(super) fn read<'de, R: serde_json::de::Read<'de>>(
    de: &mut serde_json::Deserializer<R>,
    elements: Elements,
    cut: Option<ItemCut>,
    emit: &mut dyn FnMut(Found),
) -> Result<Option<Skip>, DocumentError> {
    let mut walk = Walk {
        elements,
        cut,
        emit,
        shape_error: None,
    };
    let outcome = de.deserialize_any(&mut walk).and_then(|skip| {
        de.end()?;
        Ok(skip)
    });
    match (outcome, walk.shape_error) {
        (_, Some(reason)) => Err(DocumentError::Shape(reason)),
        (Err(e), None) => Err(DocumentError::Json(e)),
        (Ok(skip), None) => Ok(skip),
    }
}

struct Walk<'e> {
    elements: Elements<'e>,
    cut: Option<ItemCut<'e>>,
    emit: &'e mut dyn FnMut(Found),
    /// Set when `shapes` rejects a part; the JSON error that stops the walk
    /// is then only the means of stopping it.
    shape_error: Option<String>,
}

impl Walk<'_> {
    fn fail<E: de::Error>(&mut self, reason: String) -> E {
        self.shape_error = Some(reason);
        E::custom("not a configuration item document")
    }

    /// A part read whole, through `shapes::find`.
    fn whole<E: de::Error>(&mut self, v: Value, path: &str) -> Result<Option<Skip>, E> {
        let mut found = Vec::new();
        match shapes::find(v, &mut found, path) {
            Ok(skip) => {
                found.into_iter().for_each(&mut *self.emit);
                Ok(skip)
            }
            Err(reason) => Err(self.fail(reason)),
        }
    }

    /// An array's elements one at a time, each through `shapes::find`. A
    /// schema among them ends the array, as `shapes::find` does.
    fn elements<'de, A: SeqAccess<'de>>(
        &mut self,
        mut seq: A,
        path: &str,
    ) -> Result<(usize, Option<Skip>), A::Error> {
        let mut found = Vec::new();
        let mut count = 0;
        let mut i = 0;
        while let Some(read) = self.elements.next(&mut seq, Element(self.cut))? {
            let shape = match read {
                // An item as it mostly is: no shape of `shapes` to look for.
                Read::Item(item) if !item.has_shape_keys() && item.names_a_resource() => {
                    found.push(Found::Item(*item));
                    Ok(None)
                }
                Read::Item(item) => {
                    shapes::find_in_object((*item).into(), &mut found, &format!("{path}[{i}]"))
                }
                Read::Other(v) => shapes::find(v, &mut found, &format!("{path}[{i}]")),
            };
            match shape {
                Ok(Some(Skip::Schema)) => {
                    while seq.next_element::<IgnoredAny>()?.is_some() {}
                    count += found.len();
                    found.drain(..).for_each(&mut *self.emit);
                    return Ok((count, Some(Skip::Schema)));
                }
                Ok(_) => {}
                Err(reason) => return Err(self.fail(reason)),
            }
            count += found.len();
            found.drain(..).for_each(&mut *self.emit);
            i += 1;
        }
        Ok((count, None))
    }
}

impl<'de> Visitor<'de> for &mut Walk<'_> {
    type Value = Option<Skip>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a configuration item document")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Ok(self.elements(seq, "$")?.1)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut rest = Map::new();
        // Items stream when nothing before them says the object is an
        // envelope (which would take precedence, as in `shapes`).
        let mut streamed: Option<usize> = None;
        while let Some(key) = map.next_key::<String>()? {
            let first_items = key == "configurationItems" && !rest.contains_key(&key);
            if first_items && streamed.is_none() && shapes::wrapping_envelope(&rest).is_none() {
                let n = map.next_value_seed(Items {
                    walk: &mut *self,
                    path: "$.configurationItems",
                })?;
                streamed = Some(n);
            } else {
                let v: Value = map.next_value()?;
                rest.insert(key, v);
            }
        }
        let Some(n) = streamed else {
            let mut found = Vec::new();
            return match shapes::find_in_object(rest, &mut found, "$") {
                Ok(skip) => {
                    found.into_iter().for_each(&mut *self.emit);
                    Ok(skip)
                }
                Err(reason) => Err(self.fail(reason)),
            };
        };
        if let Some(key) = shapes::wrapping_envelope(&rest) {
            return Err(self.fail(format!(
                "$: both configurationItems and the envelope {key}: which holds the items is ambiguous"
            )));
        }
        if rest.contains_key("configurationItems") {
            return Err(self.fail("$: configurationItems appears twice".into()));
        }
        Ok((n == 0).then(|| Skip::NoItem("configurationItems is empty".into())))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        self.whole(Value::String(s.to_string()), "$")
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
        self.whole(Value::String(s), "$")
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Self::Value, E> {
        self.whole(Value::Bool(b), "$")
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
        self.whole(Value::from(n), "$")
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
        self.whole(Value::from(n), "$")
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Self::Value, E> {
        self.whole(Value::from(n), "$")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.whole(Value::Null, "$")
    }
}

/// `configurationItems`: an array streamed element by element; anything
/// else is read whole.
struct Items<'w, 'e> {
    walk: &'w mut Walk<'e>,
    path: &'static str,
}

impl<'de> DeserializeSeed<'de> for Items<'_, '_> {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_any(self)
    }
}

impl Items<'_, '_> {
    fn whole<E: de::Error>(self, v: Value) -> Result<usize, E> {
        let mut found = Vec::new();
        match shapes::find(v, &mut found, self.path) {
            Ok(_) => {
                let n = found.len();
                found.into_iter().for_each(&mut *self.walk.emit);
                Ok(n)
            }
            Err(reason) => Err(self.walk.fail(reason)),
        }
    }
}

impl<'de> Visitor<'de> for Items<'_, '_> {
    type Value = usize;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("configuration items")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<usize, A::Error> {
        Ok(self.walk.elements(seq, self.path)?.0)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<usize, A::Error> {
        let v = Value::deserialize(MapAccessDeserializer::new(map))?;
        self.whole(v)
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<usize, E> {
        self.whole(Value::String(s.to_string()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<usize, E> {
        self.whole(Value::String(s))
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<usize, E> {
        self.whole(Value::Bool(b))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<usize, E> {
        self.whole(Value::from(n))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<usize, E> {
        self.whole(Value::from(n))
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<usize, E> {
        self.whole(Value::from(n))
    }

    fn visit_unit<E: de::Error>(self) -> Result<usize, E> {
        self.whole(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws_config::item::Field;

    /// What `read` gives for a document: the items' ids, the skip, or the
    /// error; alike in the parser's stream and from a mapped copy.
    fn walk(text: &str) -> Result<(Vec<String>, Option<String>), String> {
        let in_stream = walk_with(text.as_bytes(), Elements::InStream);
        let mapped = crate::file_read::mapped_copy(text.as_bytes());
        assert_eq!(
            in_stream,
            walk_with(mapped.bytes(), Elements::Mapped(&mapped))
        );
        in_stream
    }

    fn walk_with(text: &[u8], elements: Elements) -> Result<(Vec<String>, Option<String>), String> {
        let mut ids = Vec::new();
        let skip = read(
            &mut serde_json::Deserializer::from_slice(text),
            elements,
            None,
            &mut |f| {
                let (Found::Item(m) | Found::SelectRow(m) | Found::Summary(m)) = f;
                let id = m.get(Field::ResourceId).and_then(Value::as_str);
                ids.push(id.unwrap_or("?").to_string());
            },
        )
        .map_err(|e| match e {
            DocumentError::Json(e) => format!("json: {e}"),
            DocumentError::Shape(s) => format!("shape: {s}"),
        })?;
        let skip = skip.map(|s| match s {
            Skip::Schema => "schema".to_string(),
            Skip::NoItem(why) => why,
        });
        Ok((ids, skip))
    }

    #[test]
    fn a_snapshot_streams_its_items_in_order() {
        let doc = r#"{"fileVersion":"1.0","configurationItems":[
            {"resourceType":"AWS::S3::Bucket","resourceId":"a"},
            "{\"resourceType\":\"AWS::S3::Bucket\",\"resourceId\":\"b\"}"]}"#;
        assert_eq!(walk(doc).unwrap(), (vec!["a".into(), "b".into()], None));
        let empty = r#"{"configurationItems":[]}"#;
        let (ids, skip) = walk(empty).unwrap();
        assert!(ids.is_empty());
        assert_eq!(skip.as_deref(), Some("configurationItems is empty"));
    }

    #[test]
    fn an_envelope_before_the_items_wins_and_after_them_is_ambiguous() {
        let before = r#"{"Type":"Notification","TopicArn":"t","Message":{"configurationItem":{"resourceType":"AWS::S3::Bucket","resourceId":"m"}},
            "configurationItems":[{"resourceType":"AWS::S3::Bucket","resourceId":"x"}]}"#;
        assert_eq!(walk(before).unwrap().0, vec!["m".to_string()]);
        let after = r#"{"configurationItems":[{"resourceType":"AWS::S3::Bucket","resourceId":"x"}],
            "invokingEvent":{"configurationItem":{"resourceType":"AWS::S3::Bucket","resourceId":"m"}}}"#;
        let e = walk(after).unwrap_err();
        assert!(e.contains("ambiguous"), "{e}");
    }

    #[test]
    fn other_shapes_and_scalars_read_as_shapes_says() {
        let rows = r#"{"Results":["{\"resourceType\":\"AWS::S3::Bucket\",\"resourceId\":\"r\"}"]}"#;
        assert_eq!(walk(rows).unwrap().0, vec!["r".to_string()]);
        let e = walk("42").unwrap_err();
        assert!(e.contains("expected an object, found a number"), "{e}");
        let e = walk(r#"{"configurationItems":[{"resourceType":"AWS::S3::Bucket"}"#).unwrap_err();
        assert!(e.starts_with("json:"), "{e}");
    }
}
