//! A serde value written straight into the SDK's DynamoDB item: the same
//! attributes as `serde_dynamo::to_item` (property tests below hold them
//! equal), in one pass. serde_dynamo builds a tree of its own
//! `AttributeValue`s, then converts it into the SDK's, hashing every map key
//! twice and growing the maps as it goes; that was most of a vitals batch's
//! CPU (a state item cost ~200k instructions, a reading ~22k).
//!
//! The rules are serde_dynamo's: numbers are `N` in their `to_string` form,
//! `None` and unit are `NULL`, a unit variant is its name, a newtype or
//! struct or tuple variant is a one-entry map named by the variant, map keys
//! are strings, integers or bools. serde_dynamo's set newtypes (string,
//! number, binary sets) are refused: no stored record uses them, and a new
//! one should fail a test here rather than be written differently.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::ser::{self, Error as _, Serialize};

use super::Item;

type Error = serde_dynamo::Error;

/// `serde_dynamo::to_item`, without its intermediate tree.
pub(crate) fn to_item<T: Serialize + ?Sized>(value: &T) -> Result<Item, Error> {
    match value.serialize(Writer)? {
        AttributeValue::M(item) => Ok(item),
        _ => Err(Error::custom("the value is not a map")),
    }
}

/// `serde_dynamo::to_attribute_value`, without its intermediate tree. Only the tests use it
/// now (the pending events' payload became JSON text); kept for them and a future record.
#[cfg(test)]
pub(crate) fn to_attribute_value<T: Serialize + ?Sized>(value: &T) -> Result<AttributeValue, Error> {
    value.serialize(Writer)
}

fn number(v: impl ToString) -> Result<AttributeValue, Error> {
    Ok(AttributeValue::N(v.to_string()))
}

/// An unsigned integer's `N`, as `number` writes it, without the formatter.
fn unsigned(v: u64) -> Result<AttributeValue, Error> {
    let mut text = String::with_capacity(20);
    push_u64(&mut text, v);
    Ok(AttributeValue::N(text))
}

/// `x.to_string()`, serde_dynamo's text of an f64, with a whole number below 2^53 (most vital
/// values: 72 beats, 16 breaths) written digit by digit: the float formatter's shortest-form
/// search was about a twentieth of a vitals batch's instructions.
pub(crate) fn f64_text(x: f64) -> String {
    // -0.0 is "-0" in Display; NaN and the infinities have no zero fraction.
    if x.fract() != 0.0 || x.abs() >= 9_007_199_254_740_992.0 || (x == 0.0 && x.is_sign_negative()) {
        return x.to_string();
    }
    let mut text = String::with_capacity(17);
    if x < 0.0 {
        text.push('-');
    }
    push_u64(&mut text, x.abs() as u64);
    text
}

/// The attribute names of one kind of item, and that item built once with a placeholder
/// value per name. [`Shape::item`] clones the built map and moves the values into it: a
/// clone copies the table as it lies (same buckets, same hasher), so no name is hashed
/// again. Hashing the names (SipHash, the SDK's `HashMap`) was about a third of building a
/// reading item, and readings are most of a vitals batch's items (issue 16).
pub(crate) struct Shape<const N: usize> {
    names: [&'static str; N],
    built: std::sync::OnceLock<Built<N>>,
}

struct Built<const N: usize> {
    /// The map of the names, each with a placeholder (`NULL`, which owns nothing).
    template: Item,
    /// For each entry of `template` in iteration order, the index of its name.
    order: [usize; N],
    /// Whether a clone iterates in `template`'s order (hashbrown copies the table as it
    /// lies, whatever the values, so one clone tells for all); if not, every entry is looked up.
    clones_in_order: bool,
}

impl<const N: usize> Shape<N> {
    /// `names` must be distinct.
    pub(crate) const fn new(names: [&'static str; N]) -> Self {
        Self { names, built: std::sync::OnceLock::new() }
    }

    /// The item with `values[i]` under `names[i]`: the map `N` inserts would build.
    pub(crate) fn item(&self, values: [AttributeValue; N]) -> Item {
        let built = self.built.get_or_init(|| {
            let mut template = Item::with_capacity(N);
            for name in self.names {
                template.insert(name.to_owned(), AttributeValue::Null(true));
            }
            assert_eq!(template.len(), N, "a shape's names are distinct");
            let mut order = [0; N];
            for (at, name) in order.iter_mut().zip(template.keys()) {
                *at = self.index(name);
            }
            let clones_in_order = template.clone().keys().zip(template.keys()).all(|(a, b)| a == b);
            Built { template, order, clones_in_order }
        });
        let mut item = built.template.clone();
        let mut values = values.map(Some);
        for ((name, slot), &i) in item.iter_mut().zip(&built.order) {
            let i = if built.clones_in_order { i } else { self.index(name) };
            if let Some(value) = values[i].take() {
                // The placeholder is a `NULL`: nothing to drop.
                std::mem::forget(std::mem::replace(slot, value));
            }
        }
        item
    }

    fn index(&self, name: &str) -> usize {
        self.names.iter().position(|n| *n == name).expect("a name of the shape")
    }
}

/// Appends `n` in decimal (its `Display` text) without the formatter.
pub(crate) fn push_u64(out: &mut String, n: u64) {
    let (mut digits, mut at, mut rest) = ([0u8; 20], 20, n);
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.extend(digits[at..].iter().map(|&d| char::from(d)));
}

fn one_entry(key: &str, value: AttributeValue) -> AttributeValue {
    let mut map = HashMap::with_capacity(1);
    map.insert(key.to_owned(), value);
    AttributeValue::M(map)
}

struct Writer;

impl ser::Serializer for Writer {
    type Ok = AttributeValue;
    type Error = Error;
    type SerializeSeq = List;
    type SerializeTuple = List;
    type SerializeTupleStruct = List;
    type SerializeTupleVariant = List;
    type SerializeMap = Map;
    type SerializeStruct = Map;
    type SerializeStructVariant = Map;

    fn serialize_bool(self, v: bool) -> Result<AttributeValue, Error> {
        Ok(AttributeValue::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<AttributeValue, Error> {
        number(v)
    }
    fn serialize_i16(self, v: i16) -> Result<AttributeValue, Error> {
        number(v)
    }
    fn serialize_i32(self, v: i32) -> Result<AttributeValue, Error> {
        number(v)
    }
    fn serialize_i64(self, v: i64) -> Result<AttributeValue, Error> {
        number(v)
    }
    fn serialize_u8(self, v: u8) -> Result<AttributeValue, Error> {
        unsigned(u64::from(v))
    }
    fn serialize_u16(self, v: u16) -> Result<AttributeValue, Error> {
        unsigned(u64::from(v))
    }
    fn serialize_u32(self, v: u32) -> Result<AttributeValue, Error> {
        unsigned(u64::from(v))
    }
    fn serialize_u64(self, v: u64) -> Result<AttributeValue, Error> {
        unsigned(v)
    }
    fn serialize_f32(self, v: f32) -> Result<AttributeValue, Error> {
        number(v)
    }
    fn serialize_f64(self, v: f64) -> Result<AttributeValue, Error> {
        Ok(AttributeValue::N(f64_text(v)))
    }
    fn serialize_char(self, v: char) -> Result<AttributeValue, Error> {
        Ok(AttributeValue::S(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<AttributeValue, Error> {
        Ok(AttributeValue::S(v.to_owned()))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<AttributeValue, Error> {
        Ok(AttributeValue::B(aws_smithy_types::Blob::new(v)))
    }
    fn serialize_none(self) -> Result<AttributeValue, Error> {
        Ok(AttributeValue::Null(true))
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<AttributeValue, Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<AttributeValue, Error> {
        Ok(AttributeValue::Null(true))
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<AttributeValue, Error> {
        Ok(AttributeValue::Null(true))
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<AttributeValue, Error> {
        Ok(AttributeValue::S(variant.to_owned()))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, name: &'static str, value: &T) -> Result<AttributeValue, Error> {
        // serde_dynamo's set newtypes are named `;…SET;` (Greek question marks).
        if name.starts_with('\u{037E}') {
            return Err(Error::custom("DynamoDB sets are not written by this codec"));
        }
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<AttributeValue, Error> {
        Ok(one_entry(variant, value.serialize(Writer)?))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<List, Error> {
        Ok(List { variant: None, items: Vec::with_capacity(len.unwrap_or(0)) })
    }
    fn serialize_tuple(self, len: usize) -> Result<List, Error> {
        Ok(List { variant: None, items: Vec::with_capacity(len) })
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<List, Error> {
        Ok(List { variant: None, items: Vec::with_capacity(len) })
    }
    fn serialize_tuple_variant(self, _: &'static str, _: u32, variant: &'static str, len: usize) -> Result<List, Error> {
        Ok(List { variant: Some(variant), items: Vec::with_capacity(len) })
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Map, Error> {
        Ok(Map { variant: None, entries: HashMap::with_capacity(len.unwrap_or(0)), key: None })
    }
    fn serialize_struct(self, _: &'static str, len: usize) -> Result<Map, Error> {
        Ok(Map { variant: None, entries: HashMap::with_capacity(len), key: None })
    }
    fn serialize_struct_variant(self, _: &'static str, _: u32, variant: &'static str, len: usize) -> Result<Map, Error> {
        Ok(Map { variant: Some(variant), entries: HashMap::with_capacity(len), key: None })
    }
}

/// A list, or a tuple variant's list inside its one-entry map.
struct List {
    variant: Option<&'static str>,
    items: Vec<AttributeValue>,
}

impl List {
    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.items.push(value.serialize(Writer)?);
        Ok(())
    }
    fn finish(self) -> Result<AttributeValue, Error> {
        let list = AttributeValue::L(self.items);
        Ok(match self.variant {
            Some(variant) => one_entry(variant, list),
            None => list,
        })
    }
}

impl ser::SerializeSeq for List {
    type Ok = AttributeValue;
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.push(value)
    }
    fn end(self) -> Result<AttributeValue, Error> {
        self.finish()
    }
}

impl ser::SerializeTuple for List {
    type Ok = AttributeValue;
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.push(value)
    }
    fn end(self) -> Result<AttributeValue, Error> {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for List {
    type Ok = AttributeValue;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.push(value)
    }
    fn end(self) -> Result<AttributeValue, Error> {
        self.finish()
    }
}

impl ser::SerializeTupleVariant for List {
    type Ok = AttributeValue;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.push(value)
    }
    fn end(self) -> Result<AttributeValue, Error> {
        self.finish()
    }
}

/// A map or struct, or a struct variant's map inside its one-entry map.
struct Map {
    variant: Option<&'static str>,
    entries: Item,
    key: Option<String>,
}

impl Map {
    fn finish(self) -> Result<AttributeValue, Error> {
        let map = AttributeValue::M(self.entries);
        Ok(match self.variant {
            Some(variant) => one_entry(variant, map),
            None => map,
        })
    }
}

impl ser::SerializeMap for Map {
    type Ok = AttributeValue;
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        if self.key.is_some() {
            return Err(Error::custom("a map key without its value"));
        }
        self.key = Some(key.serialize(Key)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let key = self.key.take().ok_or_else(|| Error::custom("a map value before its key"))?;
        self.entries.insert(key, value.serialize(Writer)?);
        Ok(())
    }
    fn serialize_entry<K: Serialize + ?Sized, V: Serialize + ?Sized>(&mut self, key: &K, value: &V) -> Result<(), Error> {
        let key = key.serialize(Key)?;
        self.entries.insert(key, value.serialize(Writer)?);
        Ok(())
    }
    fn end(self) -> Result<AttributeValue, Error> {
        self.finish()
    }
}

impl ser::SerializeStruct for Map {
    type Ok = AttributeValue;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        self.entries.insert(key.to_owned(), value.serialize(Writer)?);
        Ok(())
    }
    fn end(self) -> Result<AttributeValue, Error> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for Map {
    type Ok = AttributeValue;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        self.entries.insert(key.to_owned(), value.serialize(Writer)?);
        Ok(())
    }
    fn end(self) -> Result<AttributeValue, Error> {
        self.finish()
    }
}

/// A map key: a string, an integer or a bool, in text (serde_dynamo's `MapKeySerializer`).
struct Key;

fn not_a_key<T>() -> Result<T, Error> {
    Err(Error::custom("a map key must be a string"))
}

impl ser::Serializer for Key {
    type Ok = String;
    type Error = Error;
    type SerializeSeq = ser::Impossible<String, Error>;
    type SerializeTuple = ser::Impossible<String, Error>;
    type SerializeTupleStruct = ser::Impossible<String, Error>;
    type SerializeTupleVariant = ser::Impossible<String, Error>;
    type SerializeMap = ser::Impossible<String, Error>;
    type SerializeStruct = ser::Impossible<String, Error>;
    type SerializeStructVariant = ser::Impossible<String, Error>;

    fn serialize_bool(self, v: bool) -> Result<String, Error> {
        Ok(v.to_string())
    }
    fn serialize_i8(self, v: i8) -> Result<String, Error> {
        Ok(v.to_string())
    }
    fn serialize_i16(self, v: i16) -> Result<String, Error> {
        Ok(v.to_string())
    }
    fn serialize_i32(self, v: i32) -> Result<String, Error> {
        Ok(v.to_string())
    }
    fn serialize_i64(self, v: i64) -> Result<String, Error> {
        Ok(v.to_string())
    }
    fn serialize_i128(self, v: i128) -> Result<String, Error> {
        Ok(v.to_string())
    }
    fn serialize_u8(self, v: u8) -> Result<String, Error> {
        Ok(v.to_string())
    }
    fn serialize_u16(self, v: u16) -> Result<String, Error> {
        Ok(v.to_string())
    }
    fn serialize_u32(self, v: u32) -> Result<String, Error> {
        Ok(v.to_string())
    }
    fn serialize_u64(self, v: u64) -> Result<String, Error> {
        Ok(v.to_string())
    }
    fn serialize_u128(self, v: u128) -> Result<String, Error> {
        Ok(v.to_string())
    }
    fn serialize_f32(self, _: f32) -> Result<String, Error> {
        not_a_key()
    }
    fn serialize_f64(self, _: f64) -> Result<String, Error> {
        not_a_key()
    }
    fn serialize_char(self, v: char) -> Result<String, Error> {
        Ok(v.to_string())
    }
    fn serialize_str(self, v: &str) -> Result<String, Error> {
        Ok(v.to_owned())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<String, Error> {
        not_a_key()
    }
    fn serialize_none(self) -> Result<String, Error> {
        not_a_key()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<String, Error> {
        not_a_key()
    }
    fn serialize_unit(self) -> Result<String, Error> {
        not_a_key()
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<String, Error> {
        not_a_key()
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<String, Error> {
        Ok(variant.to_owned())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, value: &T) -> Result<String, Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(self, _: &'static str, _: u32, _: &'static str, _: &T) -> Result<String, Error> {
        not_a_key()
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        not_a_key()
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Error> {
        not_a_key()
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeTupleStruct, Error> {
        not_a_key()
    }
    fn serialize_tuple_variant(self, _: &'static str, _: u32, _: &'static str, _: usize) -> Result<Self::SerializeTupleVariant, Error> {
        not_a_key()
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Error> {
        not_a_key()
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, Error> {
        not_a_key()
    }
    fn serialize_struct_variant(self, _: &'static str, _: u32, _: &'static str, _: usize) -> Result<Self::SerializeStructVariant, Error> {
        not_a_key()
    }
}

#[cfg(test)]
#[path = "item_codec_tests.rs"]
mod tests;
