//! Sections whose keys depend on their `kind` (`[[check]]`, `[[notify]]`, `[[writer]]`): the keys
//! every kind shares, the kind's own keys as a tagged enum, and the check that names a key of
//! another kind with its line and the fix.
//!
//! serde's internally tagged enums buffer the table before they pick the kind, which loses
//! toml's position of a wrong key. So the keys are checked first, on the document itself, against
//! the lists the types give ([`super::schema`]); the types still refuse anything that slips by.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::error::{Seg, Validator};
use super::plugin::{registered, unknown_kind, PluginKinds, PluginSettings, Section};
use super::schema::{fields_of, kind_names, kinds_of};

/// The kinds of a section that takes registered kinds beside its own.
#[doc(hidden)]
pub trait PluginKind: Sized {
    /// The section.
    #[doc(hidden)]
    const SECTION: Section;
    /// A section of a registered kind.
    fn plugin(settings: PluginSettings) -> Self;
}

/// A section whose keys depend on its `kind`: `common` holds the keys every kind takes, `kind`
/// the kind with its own keys (a `#[serde(tag = "kind")]` enum of `deny_unknown_fields` structs).
#[derive(Clone, Debug, PartialEq)]
pub struct Kinded<C, K> {
    /// The keys every kind takes.
    pub common: C,
    /// The kind, and its own keys.
    pub kind: K,
}

impl<'de, C: DeserializeOwned, K: DeserializeOwned + PluginKind> Deserialize<'de> for Kinded<C, K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(KindedVisitor(PhantomData))
    }
}

struct KindedVisitor<C, K>(PhantomData<(C, K)>);

impl<'de, C: DeserializeOwned, K: DeserializeOwned + PluginKind> Visitor<'de>
    for KindedVisitor<C, K>
{
    type Value = Kinded<C, K>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a table with a kind")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let shared = fields_of::<C>();
        let mut common = toml::Table::new();
        let mut own = toml::Table::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == "kind" {
                // Read here, where toml still knows its line, for an unknown kind's error.
                let kind = map.next_value_seed(KindName(kind_names::<K>(), K::SECTION))?;
                own.insert(key, toml::Value::String(kind));
            } else if shared.contains(&key.as_str()) {
                common.insert(key, map.next_value()?);
            } else {
                own.insert(key, map.next_value()?);
            }
        }
        if !own.contains_key("kind") {
            return Err(de::Error::missing_field("kind"));
        }
        let common = read::<C, A::Error>(common, None)?;
        let name = own.get("kind").and_then(|k| k.as_str()).unwrap_or_default();
        if let Some(spec) = registered(K::SECTION, name) {
            let kind = name.to_owned();
            own.remove("kind");
            // Its error names the key (see `read`), which the caller puts on the key's line.
            (spec.validate)(&own).map_err(de::Error::custom)?;
            let settings = PluginSettings { kind, table: own };
            return Ok(Kinded {
                common,
                kind: K::plugin(settings),
            });
        }
        let kind = read::<K, A::Error>(own, Some("kind"))?;
        Ok(Kinded { common, kind })
    }
}

/// `T` from `table`; an error names the key that caused it (`interval: expected a duration`),
/// found by reading each key alone (with `keep`, the tag, beside it).
pub(crate) fn read<T: DeserializeOwned, E: de::Error>(
    table: toml::Table,
    keep: Option<&str>,
) -> Result<T, E> {
    let error = match T::deserialize(table.clone()) {
        Ok(value) => return Ok(value),
        Err(e) => e.message().to_owned(),
    };
    for (key, value) in &table {
        if Some(key.as_str()) == keep {
            continue;
        }
        let mut alone: toml::Table = keep
            .and_then(|k| table.get(k).map(|v| (k.to_owned(), v.clone())))
            .into_iter()
            .collect();
        alone.insert(key.clone(), value.clone());
        if let Err(e) = T::deserialize(alone) {
            if !e.message().starts_with("missing field") {
                return Err(E::custom(format!("{key}: {}", e.message())));
            }
        }
    }
    Err(E::custom(error))
}

/// The `kind` string, refused right away when no kind has that name (built in or registered).
struct KindName(&'static [&'static str], Section);

impl<'de> DeserializeSeed<'de> for KindName {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        let kind = String::deserialize(deserializer)?;
        if self.0.contains(&kind.as_str()) || registered(self.1, &kind).is_some() {
            Ok(kind)
        } else {
            Err(de::Error::custom(unknown_kind(&kind, self.0, self.1)))
        }
    }
}

/// How a section says that a key belongs to other kinds.
#[derive(Clone, Copy)]
pub(crate) enum Wording {
    /// `path only applies to kind = "http" (this check is kind = "ssh")`.
    Owners(&'static str),
    /// `url does not apply to kind = "email" (it takes: host, port, ...)`.
    Takes,
}

/// Checks the keys of every table of `section` (an array of tables, or one table) against its
/// kind, whose shared keys are `C`'s and own keys `K`'s. Each wrong key is reported and blanked
/// out of `cleaned`, so that parsing goes on and every other mistake is found in the same run.
pub(crate) fn check_keys<C: DeserializeOwned, K: DeserializeOwned + PluginKind>(
    document: &toml_edit::Document<&str>,
    section: &str,
    wording: Wording,
    plugins: &PluginKinds,
    v: &mut Validator<'_>,
    cleaned: &mut String,
) {
    let shared = fields_of::<C>();
    let mut kinds: Vec<(&str, &[&str])> = kinds_of::<K>();
    kinds.extend(
        plugins
            .of(K::SECTION)
            .iter()
            .map(|spec| (spec.name.as_str(), spec.keys)),
    );
    let tables: Vec<&dyn toml_edit::TableLike> = match document.get(section) {
        Some(toml_edit::Item::ArrayOfTables(array)) => array
            .iter()
            .map(|t| t as &dyn toml_edit::TableLike)
            .collect(),
        Some(item) => item.as_table_like().into_iter().collect(),
        None => return,
    };
    let indexed = matches!(
        document.get(section),
        Some(toml_edit::Item::ArrayOfTables(_))
    );
    for (index, table) in tables.into_iter().enumerate() {
        let Some(kind) = table.get("kind").and_then(|k| k.as_str()) else {
            continue;
        };
        let Some((_, own)) = kinds.iter().find(|(name, _)| *name == kind) else {
            continue;
        };
        let name = table.get("name").and_then(|n| n.as_str());
        for (key, item) in table.iter() {
            if key == "kind" || shared.contains(&key) || own.contains(&key) {
                continue;
            }
            let owners: Vec<&str> = kinds
                .iter()
                .filter(|(_, fields)| fields.contains(&key))
                .map(|(name, _)| *name)
                .collect();
            let message = match (owners.is_empty(), wording) {
                (true, _) => {
                    let mut keys: Vec<&str> = shared.iter().chain(own.iter()).copied().collect();
                    keys.insert(0, "kind");
                    format!(
                        "{}unknown key {key:?} for kind {kind:?} (keys of kind {kind}: {})",
                        name.map(|n| format!("{section} {n:?}: "))
                            .unwrap_or_default(),
                        keys.join(", ")
                    )
                }
                (false, Wording::Owners(what)) => format!(
                    "{key} only applies to kind = \"{}\" (this {what} is kind = \"{kind}\")",
                    owners.join("\" or \"")
                ),
                (false, Wording::Takes) => format!(
                    "{key} does not apply to kind = \"{kind}\" (it takes: {})",
                    own.join(", ")
                ),
            };
            let at: Vec<Seg<'_>> = if indexed {
                vec![Seg::Key(section), Seg::Index(index), Seg::Key(key)]
            } else {
                vec![Seg::Key(section), Seg::Key(key)]
            };
            v.fail(&at, message);
            if let (Some(start), Some(end)) = (
                table
                    .get_key_value(key)
                    .and_then(|(k, _)| k.span())
                    .map(|s| s.start),
                item.span().map(|s| s.end),
            ) {
                blank(cleaned, start..end);
            }
        }
    }
}

/// Replaces `range` of `text` with spaces, keeping its line breaks (and so every line number).
pub(super) fn blank(text: &mut String, range: std::ops::Range<usize>) {
    let Some(part) = text.get(range.clone()) else {
        return;
    };
    let spaces: String = part
        .chars()
        .map(|c| match c {
            '\n' => "\n".to_owned(),
            c => " ".repeat(c.len_utf8()),
        })
        .collect();
    text.replace_range(range, &spaces);
}
