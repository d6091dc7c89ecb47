//! How a FHIR element is read: from a JSON object only, skipping by name the
//! keys it accepts without reading them.
//!
//! A resource carries many elements that mean nothing here (`meta`, `text`,
//! `performer`, ...). Each element type lists them ([`Element::UNREAD`]); they
//! are checked and skipped before the element's derived reader sees the object,
//! whose `deny_unknown_fields` then refuses any other key it does not read,
//! `modifierExtension` included (a receiver must understand it or refuse it).
//!
//! Object only: serde's derived `Deserialize` also takes an array, field by
//! field in declaration order, so `"valueQuantity": [42, "/min", "/min"]` read
//! as 42 /min. The native bodies close that with `trialwatch::json_object`;
//! here the element type itself refuses it, wherever it is used.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::{MapAccessDeserializer, StringDeserializer};
use serde::de::{DeserializeSeed, Deserializer, Error as _, IgnoredAny, MapAccess, Visitor};

/// A FHIR element: its derived reader, for the keys it reads, and the keys it
/// accepts unread. Implemented with [`element!`].
pub(super) trait Element: Sized {
    /// Keys accepted and skipped unread (at most 64).
    const UNREAD: &'static [&'static str];

    /// The derived reader (`#[serde(remote = "Self")]`) of the keys read.
    fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error>;
}

/// Implements [`Element`] and `Deserialize` for a struct that derives
/// `Deserialize` with `#[serde(remote = "Self", deny_unknown_fields)]`.
macro_rules! element {
    ($ty:ident, unread: [$($key:literal),* $(,)?]) => {
        impl $crate::fhir::element::Element for $ty {
            const UNREAD: &'static [&'static str] = &[$($key),*];

            fn read<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $ty::deserialize(d)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $crate::fhir::element::object(d)
            }
        }
    };
}
pub(super) use element;

/// `T` from a JSON object, its unread keys skipped.
pub(super) fn object<'de, D: Deserializer<'de>, T: Element>(d: D) -> Result<T, D::Error> {
    debug_assert!(T::UNREAD.len() <= 64, "Unread tracks the keys seen in a u64");
    d.deserialize_map(Object(PhantomData))
}

struct Object<T>(PhantomData<T>);

impl<'de, T: Element> Visitor<'de> for Object<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::read(MapAccessDeserializer::new(Unread { map, unread: T::UNREAD, seen: 0 }))
    }
}

/// The object's entries minus the unread ones.
struct Unread<A> {
    map: A,
    unread: &'static [&'static str],
    /// Unread keys already seen (bit i: `unread[i]`): a repeated key is refused,
    /// as the derived reader refuses a repeated field.
    seen: u64,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Unread<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        while let Some(key) = self.map.next_key::<String>()? {
            let Some(i) = self.unread.iter().position(|u| *u == key) else {
                return seed.deserialize(StringDeserializer::new(key)).map(Some);
            };
            if self.seen & (1 << i) != 0 {
                return Err(A::Error::duplicate_field(self.unread[i]));
            }
            self.seen |= 1 << i;
            self.map.next_value::<IgnoredAny>()?;
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(remote = "Self", rename_all = "camelCase", deny_unknown_fields)]
    struct Quantity {
        #[serde(default)]
        value: Option<u32>,
        #[serde(default)]
        code: Option<String>,
    }
    element!(Quantity, unread: ["system", "extension"]);

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(remote = "Self", rename_all = "camelCase", deny_unknown_fields)]
    struct Panel {
        #[serde(default)]
        value_quantity: Option<Quantity>,
        #[serde(default)]
        component: Vec<Quantity>,
    }
    element!(Panel, unread: ["meta"]);

    fn read(json: &str) -> Result<Panel, String> {
        trialwatch::edge::http::body::decode::<Panel>(json.as_bytes()).map_err(|e| match e {
            trialwatch::edge::http::HttpError::Refused(trialwatch::Error::Validation(errs)) => {
                format!("{}: {}", errs[0].field, errs[0].message)
            }
            other => other.to_string(),
        })
    }

    #[test]
    fn unread_keys_are_skipped_and_read_keys_read_at_every_level() {
        // GIVEN unread keys beside read ones, at the top and in nested elements
        let p = read(
            r#"{"meta": {"x": [1]}, "valueQuantity": {"value": 7, "system": "u", "extension": []},
                         "component": [{"code": "c", "system": null}]}"#,
        )
        .unwrap();
        // THEN the read keys are read, and nothing else changes
        let q = |value, code: Option<&str>| Quantity { value, code: code.map(str::to_owned) };
        assert_eq!(p, Panel { value_quantity: Some(q(Some(7), None)), component: vec![q(None, Some("c"))] });
    }

    #[test]
    fn any_other_key_is_refused_naming_its_path() {
        // GIVEN a key neither read nor accepted unread (an unread key of another element)
        assert_eq!(read(r#"{"valueQuantity": {"meta": {}}}"#).unwrap_err(), "valueQuantity.meta: unknown field");
        assert_eq!(read(r#"{"component": [{}, {"modifierExtension": []}]}"#).unwrap_err(), "component[1].modifierExtension: unknown field");
        assert_eq!(read(r#"{"system": "u"}"#).unwrap_err(), "system: unknown field");
    }

    #[test]
    fn a_repeated_unread_key_is_refused_as_a_repeated_field_is() {
        assert_eq!(read(r#"{"meta": {}, "meta": {}}"#).unwrap_err(), "body: duplicate field `meta`");
        assert_eq!(read(r#"{"component": [{"code": "a", "code": "b"}]}"#).unwrap_err(), "component[0]: duplicate field `code`");
    }

    #[test]
    fn an_array_in_place_of_an_element_is_refused_at_every_level() {
        // GIVEN serde's positional form of an element, where an object belongs
        for (json, field) in [(r#"{"valueQuantity": [7, "c"]}"#, "valueQuantity"), (r#"{"component": [[7, "c"]]}"#, "component[0]")] {
            // THEN it is a wrong type naming the field, not read field by field
            let e = read(json).unwrap_err();
            assert!(e.starts_with(&format!("{field}: invalid type: sequence")) && e.ends_with("expected a JSON object"), "{json}: {e}");
        }
        assert!(read(r#"[null, []]"#).is_err());
    }
}
