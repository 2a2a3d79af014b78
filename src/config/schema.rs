//! What the config types know about themselves, read from their serde derives: the keys of a
//! struct, the kinds of a `#[serde(tag = "kind")]` enum and each kind's keys.
//!
//! serde hands a deserializer these lists (`deserialize_struct`'s fields, the expected names of
//! an unknown variant or field); a deserializer that records them instead of reading anything
//! lets the kind check and the docs test use the types themselves, never a second list.

use std::fmt;

use serde::de::{self, DeserializeOwned, Deserializer, IntoDeserializer, MapAccess, Visitor};

/// The keys of the struct `T` (which must derive `Deserialize` without `flatten`).
pub fn fields_of<T: DeserializeOwned>() -> &'static [&'static str] {
    match T::deserialize(Probe::Struct) {
        Err(Recorded::Names(names)) => names,
        _ => &[],
    }
}

/// The kinds of the tagged enum `T` (`#[serde(tag = "kind")]`, one `deny_unknown_fields`
/// struct per kind), each with its own keys, in declaration order.
pub fn kinds_of<T: DeserializeOwned>() -> Vec<(&'static str, &'static [&'static str])> {
    kind_names::<T>()
        .iter()
        .map(|&kind| match T::deserialize(Probe::Tagged(kind)) {
            Err(Recorded::Names(fields)) => (kind, fields),
            _ => (kind, &[] as &[&str]),
        })
        .collect()
}

/// The kinds of the tagged enum `T`, in declaration order.
pub fn kind_names<T: DeserializeOwned>() -> &'static [&'static str] {
    match T::deserialize(Probe::Tagged(UNKNOWN)) {
        Err(Recorded::Names(names)) => names,
        _ => &[],
    }
}

/// A name no struct or enum of the config uses.
const UNKNOWN: &str = "\u{0}";

/// What a probe asks a type for.
#[derive(Clone, Copy)]
enum Probe {
    /// Its struct fields.
    Struct,
    /// Its variant names (with [`UNKNOWN`]), or the fields of this kind.
    Tagged(&'static str),
}

/// How a probe ends: with the names serde offered, or with nothing useful.
#[derive(Debug)]
enum Recorded {
    Names(&'static [&'static str]),
    Nothing,
}

impl fmt::Display for Recorded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("schema probe")
    }
}

impl std::error::Error for Recorded {}

impl de::Error for Recorded {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Recorded::Nothing
    }
    fn unknown_variant(_: &str, expected: &'static [&'static str]) -> Self {
        Recorded::Names(expected)
    }
    fn unknown_field(_: &str, expected: &'static [&'static str]) -> Self {
        Recorded::Names(expected)
    }
}

impl<'de> Deserializer<'de> for Probe {
    type Error = Recorded;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Recorded> {
        match self {
            Probe::Struct => Err(Recorded::Nothing),
            Probe::Tagged(kind) => visitor.visit_map(TaggedMap { kind, step: 0 }),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Recorded> {
        match self {
            Probe::Struct => Err(Recorded::Names(fields)),
            Probe::Tagged(_) => self.deserialize_any(visitor),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

/// `{ kind = KIND, "\0" = "" }`: the tag, then a key no kind has, which a
/// `deny_unknown_fields` struct refuses by listing its own.
struct TaggedMap {
    kind: &'static str,
    step: u8,
}

impl<'de> MapAccess<'de> for TaggedMap {
    type Error = Recorded;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Recorded> {
        let key = match self.step {
            0 => "kind",
            1 => UNKNOWN,
            _ => return Ok(None),
        };
        seed.deserialize(IntoDeserializer::<Recorded>::into_deserializer(key))
            .map(Some)
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Recorded> {
        let value = if self.step == 0 { self.kind } else { "" };
        self.step += 1;
        seed.deserialize(IntoDeserializer::<Recorded>::into_deserializer(value))
    }
}
