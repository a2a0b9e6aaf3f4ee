//! A JSON document read with only some of its top-level keys: the others
//! are skipped as they are read (`IgnoredAny`), never built as a tree. A
//! document that is not an object is read as the value it is. What a
//! scan's loaders cut items' configurations and instances' attributes with
//! (`ComparisonCut`).

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};

/// The object with only the top-level keys `F` keeps.
pub(crate) struct KeptObject<F>(pub(crate) F);

impl<'de, F: Fn(&str) -> bool> DeserializeSeed<'de> for KeptObject<F> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// The visitor methods of every kind but an object: the value as it is.
macro_rules! any_other_value {
    () => {
        fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<serde_json::Value, E> {
            Ok(serde_json::Value::Bool(b))
        }

        fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<serde_json::Value, E> {
            Ok(serde_json::Value::from(n))
        }

        fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<serde_json::Value, E> {
            Ok(serde_json::Value::from(n))
        }

        fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<serde_json::Value, E> {
            Ok(serde_json::Value::from(n))
        }

        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<serde_json::Value, E> {
            Ok(serde_json::Value::String(s.to_string()))
        }

        fn visit_string<E: serde::de::Error>(self, s: String) -> Result<serde_json::Value, E> {
            Ok(serde_json::Value::String(s))
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<serde_json::Value, E> {
            Ok(serde_json::Value::Null)
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            seq: A,
        ) -> Result<serde_json::Value, A::Error> {
            <serde_json::Value as serde::Deserialize>::deserialize(
                serde::de::value::SeqAccessDeserializer::new(seq),
            )
        }
    };
}
pub(crate) use any_other_value;

impl<'de, F: Fn(&str) -> bool> Visitor<'de> for KeptObject<F> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON document")
    }

    any_other_value!();

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut kept = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if (self.0)(&key) {
                let v: Value = map.next_value()?;
                kept.insert(key, v);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Value::Object(kept))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(text: &str) -> Value {
        KeptObject(|k: &str| k == "a" || k == "b")
            .deserialize(&mut serde_json::Deserializer::from_str(text))
            .unwrap()
    }

    #[test]
    fn an_object_keeps_only_its_kept_keys_and_anything_else_is_as_it_is() {
        assert_eq!(
            kept(r#"{"a":1,"x":{"deep":[1,2]},"b":[{"c":null}],"a":2}"#),
            serde_json::json!({"a": 2, "b": [{"c": null}]})
        );
        assert_eq!(kept(r#""text""#), Value::String("text".into()));
        assert_eq!(kept("[1,null]"), serde_json::json!([1, null]));
        assert_eq!(kept("null"), Value::Null);
        assert_eq!(kept("-3"), serde_json::json!(-3));
    }
}
