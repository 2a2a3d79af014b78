//! Kinds a program registers beside the built-in ones ([`crate::plugins::Plugins`]): what the
//! config parser knows of them (their names, their keys, how to check their settings) while it
//! reads a file, and the settings of a section of such a kind.
//!
//! serde gives a `Deserialize` impl no context, so the kinds of the parse under way are held in a
//! thread-local for the length of one [`Config::parse_with`](super::Config::parse_with).

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use super::error::{Seg, Validator};

/// The settings of a section whose kind a plugin registered: its kind, and its own keys as they
/// were written (the keys every kind shares, such as a check's `name` and `interval`, are read
/// by failoverd into the section's common part).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct PluginSettings {
    /// The kind, as in `kind = "disk-free"`.
    pub kind: String,
    /// The kind's own keys and their values.
    pub table: toml::Table,
}

/// Checks the settings of one kind: `Err` names the key at fault (`min_free: expected a
/// number`).
pub(crate) type Validate = Arc<dyn Fn(&toml::Table) -> Result<(), String> + Send + Sync>;

/// One registered kind, as the parser sees it.
#[derive(Clone)]
pub(crate) struct KindSpec {
    /// Its name.
    pub name: String,
    /// Its own keys.
    pub keys: &'static [&'static str],
    /// Checks a table of its keys.
    pub validate: Validate,
}

impl fmt::Debug for KindSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KindSpec")
            .field("name", &self.name)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

/// The sections that take registered kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[doc(hidden)]
pub enum Section {
    /// `[[check]]`.
    Check,
    /// `[[notify]]`.
    Notify,
    /// `[[writer]]`.
    Writer,
    /// `[policy]` and `[policies.NAME]`.
    Policy,
}

/// The registered kinds of every section.
#[derive(Clone, Debug, Default)]
pub(crate) struct PluginKinds {
    pub checks: Vec<KindSpec>,
    pub notifiers: Vec<KindSpec>,
    pub writers: Vec<KindSpec>,
    pub policies: Vec<KindSpec>,
}

impl PluginKinds {
    /// The kinds registered for `section`.
    pub fn of(&self, section: Section) -> &[KindSpec] {
        match section {
            Section::Check => &self.checks,
            Section::Notify => &self.notifiers,
            Section::Writer => &self.writers,
            Section::Policy => &self.policies,
        }
    }
}

thread_local! {
    static ACTIVE: RefCell<Option<Arc<PluginKinds>>> = const { RefCell::new(None) };
}

/// Runs `parse` with `kinds` known to the section types (restored afterwards, also on panic).
pub(crate) fn with_kinds<R>(kinds: Arc<PluginKinds>, parse: impl FnOnce() -> R) -> R {
    struct Restore(Option<Arc<PluginKinds>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            ACTIVE.with(|active| *active.borrow_mut() = previous);
        }
    }
    let previous = ACTIVE.with(|active| active.borrow_mut().replace(kinds));
    let _restore = Restore(previous);
    parse()
}

/// The registered kind `name` of `section` in the parse under way.
pub(crate) fn registered(section: Section, name: &str) -> Option<KindSpec> {
    ACTIVE.with(|active| {
        active
            .borrow()
            .as_ref()
            .and_then(|kinds| kinds.of(section).iter().find(|k| k.name == name).cloned())
    })
}

/// The names of the kinds registered for `section` in the parse under way.
pub(crate) fn registered_names(section: Section) -> Vec<String> {
    ACTIVE.with(|active| {
        active
            .borrow()
            .as_ref()
            .map(|kinds| kinds.of(section).iter().map(|k| k.name.clone()).collect())
            .unwrap_or_default()
    })
}

/// The error for a kind nobody knows, naming the built-in and the registered ones.
pub(crate) fn unknown_kind(kind: &str, builtin: &[&str], section: Section) -> String {
    let mut names: Vec<String> = builtin.iter().map(|n| format!("`{n}`")).collect();
    names.extend(registered_names(section).iter().map(|n| format!("`{n}`")));
    format!(
        "unknown variant `{kind}`, expected one of {}",
        names.join(", ")
    )
}

/// A value of a `toml_edit` document read from `source` as a `toml` value.
fn plain(source: &str, item: &toml_edit::Item) -> Option<toml::Value> {
    let text = source.get(item.span()?)?;
    let table: toml::Table = toml::from_str(&format!("v = {text}")).ok()?;
    table.get("v").cloned()
}

/// For `[policy]` and each `[policies.NAME]` of a registered policy kind: takes the kind's own
/// keys out of the text (so that the section itself parses), checks them (an unknown key or a
/// bad value is an error on its line) and returns them, by section (`None` for `[policy]`).
pub(crate) fn take_policy_settings(
    source: &str,
    document: &toml_edit::Document<&str>,
    v: &mut Validator<'_>,
    cleaned: &mut String,
    kinds: &PluginKinds,
) -> Vec<(Option<String>, PluginSettings)> {
    // Keys failoverd reads for every policy kind (`nodes` in `[policies.NAME]` only).
    const SHARED: [&str; 2] = ["kind", "all_down"];
    let mut sections: Vec<(Option<String>, &dyn toml_edit::TableLike)> = Vec::new();
    if let Some(policy) = document.get("policy").and_then(|p| p.as_table_like()) {
        sections.push((None, policy));
    }
    if let Some(named) = document.get("policies").and_then(|p| p.as_table_like()) {
        for (name, item) in named.iter() {
            if let Some(table) = item.as_table_like() {
                sections.push((Some(name.to_owned()), table));
            }
        }
    }
    let mut taken = Vec::new();
    for (name, table) in sections {
        let Some(kind) = table.get("kind").and_then(|k| k.as_str()) else {
            continue;
        };
        let Some(spec) = kinds.policies.iter().find(|k| k.name == kind) else {
            continue;
        };
        let base: Vec<Seg<'_>> = match &name {
            None => vec![Seg::Key("policy")],
            Some(n) => vec![Seg::Key("policies"), Seg::Key(n)],
        };
        let mut own = toml::Table::new();
        for (key, item) in table.iter() {
            if SHARED.contains(&key) || (name.is_some() && key == "nodes") {
                continue;
            }
            let at: Vec<Seg<'_>> = base.iter().copied().chain([Seg::Key(key)]).collect();
            if !spec.keys.contains(&key) {
                v.fail(
                    &at,
                    format!(
                        "unknown key {key:?} for policy kind {kind:?} (its keys: kind, all_down{}{})",
                        if spec.keys.is_empty() { "" } else { ", " },
                        spec.keys.join(", ")
                    ),
                );
            } else if let Some(value) = plain(source, item) {
                own.insert(key.to_owned(), value);
            }
            if let (Some(start), Some(end)) = (
                table
                    .get_key_value(key)
                    .and_then(|(k, _)| k.span())
                    .map(|s| s.start),
                item.span().map(|s| s.end),
            ) {
                super::kinded::blank(cleaned, start..end);
            }
        }
        if let Err(message) = (spec.validate)(&own) {
            // The message starts with the key at fault: put it on the key's line.
            match message.split_once(": ") {
                Some((key, rest)) if own.contains_key(key) => {
                    let at: Vec<Seg<'_>> = base.iter().copied().chain([Seg::Key(key)]).collect();
                    v.fail(&at, rest);
                }
                _ => v.fail(&base, message),
            }
        }
        taken.push((
            name,
            PluginSettings {
                kind: kind.to_owned(),
                table: own,
            },
        ));
    }
    taken
}
