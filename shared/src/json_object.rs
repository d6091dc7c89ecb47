//! Structs read only from JSON objects. Serde's derived `Deserialize` also
//! takes an array, field by field in declaration order, so `"alerting": [null,
//! null]` read as the default alerting and `"sites": [["leeds", "Leeds"]]` as
//! a site: input the API contract (docs/openapi.yaml) calls invalid, accepted
//! with a meaning the client never wrote. Found by `make schemathesis`.
//!
//! Use on the fields that hold request structs:
//! `#[serde(deserialize_with = "crate::json_object::each")]` for `Vec<T>`,
//! `one` for `T`, `optional` for `Option<T>` (with `#[serde(default)]`).
//! Any self-describing format works (the stored items come back through
//! serde_dynamo, where a struct is a map too).

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// `T` from an object only.
pub fn one<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    d.deserialize_map(Object(PhantomData))
}

/// `Option<T>`: absent or `null` is `None`, else an object.
pub fn optional<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    d.deserialize_option(Optional(PhantomData))
}

/// `Vec<T>` whose every element is an object.
pub fn each<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    d.deserialize_seq(Each(PhantomData))
}

struct Object<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for Object<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map))
    }
}

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for Object<T> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        d.deserialize_map(self)
    }
}

struct Optional<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for Optional<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object or null")
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
        one(d).map(Some)
    }
}

struct Each<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for Each<T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of JSON objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        // Capped: the hint comes from the client's bytes. JSON gives none: room for 16
        // (a questionnaire's answers) saves the vector's four regrowths on the way to 20.
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(16).min(1024));
        while let Some(item) = seq.next_element_seed(Object(PhantomData))? {
            out.push(item);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Site {
        id: String,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Trial {
        #[serde(deserialize_with = "each")]
        sites: Vec<Site>,
        #[serde(default, deserialize_with = "optional")]
        lead: Option<Site>,
        #[serde(deserialize_with = "one")]
        home: Site,
    }

    #[test]
    fn objects_are_read_as_before() {
        let t: Trial = serde_json::from_str(r#"{"sites":[{"id":"a"}],"lead":{"id":"b"},"home":{"id":"c"}}"#).unwrap();
        let site = |id: &str| Site { id: id.into() };
        assert_eq!(t, Trial { sites: vec![site("a")], lead: Some(site("b")), home: site("c") });
        let t: Trial = serde_json::from_str(r#"{"sites":[],"lead":null,"home":{"id":"c"}}"#).unwrap();
        assert_eq!(t, Trial { sites: vec![], lead: None, home: site("c") });
    }

    #[test]
    fn an_array_in_place_of_an_object_is_refused_at_every_level() {
        // GIVEN serde's positional form of each struct
        for body in
            [r#"{"sites":[["a"]],"home":{"id":"c"}}"#, r#"{"sites":[],"lead":["b"],"home":{"id":"c"}}"#, r#"{"sites":[],"home":["c"]}"#]
        {
            // WHEN it is read THEN it is refused as a wrong type, not read field by field
            let e = serde_json::from_str::<Trial>(body).unwrap_err();
            assert!(e.is_data() && e.to_string().contains("expected a JSON object"), "{body}: {e}");
        }
    }
}
