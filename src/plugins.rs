//! Kinds of check, notifier, zone writer and policy that a program adds to failoverd's own, by
//! name, for the complete daemon ([`crate::daemon::DaemonBuilder`]).
//!
//! Each kind is registered with the type of its own settings (any `serde::Deserialize` type,
//! usually a struct with `#[serde(deny_unknown_fields)]`) and a function that builds it from
//! them. The config file then takes the kind like a built-in one:
//!
//! ```toml
//! [[check]]
//! name = "disk"
//! kind = "disk-free"      # registered by the program
//! port = 8080             # the kind's own keys, read into its settings type
//! min_free_mb = 500
//! critical = true         # keys every check takes are failoverd's
//! ```
//!
//! A key the settings type does not take, or a value of the wrong type, is an error that names the
//! file, the line and the key, as for built-in kinds; an unknown kind lists the built-in and the
//! registered ones.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use failover_core::{HealthCheck, NodeName, Notifier, Policy, ZoneWriter};
use serde::de::DeserializeOwned;

use crate::config::plugin::{KindSpec, PluginKinds, Section};
use crate::config::schema::fields_of;
use crate::config::Config;

/// What a plugin's build function may read besides its own settings.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct PluginContext<'a> {
    /// The whole config (nodes, zone, `[probe]` defaults, ...).
    pub config: &'a Config,
    /// The section's name: the check's `name`, the policy's name in `[policies.NAME]` (`policy`
    /// for `[policy]`), the notifier's or writer's position (`notify[2]`).
    pub name: &'a str,
    /// The nodes a policy chooses among, in config order (every node but for a
    /// `[policies.NAME]` with `nodes`); every node for the other kinds.
    pub nodes: &'a [NodeName],
}

type Build<T> = Arc<dyn Fn(&toml::Table, &PluginContext<'_>) -> Result<T, String> + Send + Sync>;

/// The kinds a program registers, each with the function that builds it from its settings.
#[derive(Clone, Default)]
pub struct Plugins {
    pub(crate) kinds: PluginKinds,
    checks: BTreeMap<String, Build<Arc<dyn HealthCheck>>>,
    notifiers: BTreeMap<String, Build<Arc<dyn Notifier>>>,
    writers: BTreeMap<String, Build<Arc<dyn ZoneWriter>>>,
    policies: BTreeMap<String, Build<Box<dyn Policy>>>,
}

impl fmt::Debug for Plugins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plugins")
            .field("checks", &self.checks.keys().collect::<Vec<_>>())
            .field("notifiers", &self.notifiers.keys().collect::<Vec<_>>())
            .field("writers", &self.writers.keys().collect::<Vec<_>>())
            .field("policies", &self.policies.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The built-in kinds of each section, which a plugin may not take.
fn builtin(section: Section) -> &'static [&'static str] {
    use crate::config::schema::kind_names;
    use crate::config::{CheckKind, NotifierKind, WriterKind};
    match section {
        Section::Check => kind_names::<CheckKind>(),
        Section::Notify => kind_names::<NotifierKind>(),
        Section::Writer => kind_names::<WriterKind>(),
        Section::Policy => &["active-passive", "all-healthy"],
    }
}

/// `S` from a kind's own keys; the error names the key at fault.
fn decode<S: DeserializeOwned>(table: &toml::Table) -> Result<S, String> {
    crate::config::kinded::read::<S, toml::de::Error>(table.clone(), None)
        .map_err(|e| e.message().to_owned())
}

impl Plugins {
    /// No kinds beyond the built-in ones.
    pub fn new() -> Self {
        Self::default()
    }

    /// The parser's view of kind `kind` of `section` with settings `S`.
    ///
    /// # Panics
    ///
    /// When `kind` is a built-in kind or already registered in `section` (a mistake in the
    /// program, not in a config file).
    fn register<S: DeserializeOwned + 'static>(&mut self, section: Section, kind: &str) {
        assert!(
            !builtin(section).contains(&kind),
            "plugin kind {kind:?} is a built-in kind of {section:?}: choose another name"
        );
        let specs = match section {
            Section::Check => &mut self.kinds.checks,
            Section::Notify => &mut self.kinds.notifiers,
            Section::Writer => &mut self.kinds.writers,
            Section::Policy => &mut self.kinds.policies,
        };
        assert!(
            !specs.iter().any(|s| s.name == kind),
            "plugin kind {kind:?} registered twice for {section:?}"
        );
        specs.push(KindSpec {
            name: kind.to_owned(),
            keys: fields_of::<S>(),
            validate: Arc::new(|table| decode::<S>(table).map(|_| ())),
        });
    }

    /// Registers the check kind `kind`: `[[check]] kind = "KIND"` with the keys of `S` (beside
    /// `name`, `critical`, `interval`, `timeout`, `fall`, `rise`, which every check takes).
    ///
    /// # Panics
    ///
    /// When `kind` is built in (`tcp`, `http`, ...) or registered twice.
    pub fn check<S, F>(mut self, kind: &str, build: F) -> Self
    where
        S: DeserializeOwned + 'static,
        F: Fn(S, &PluginContext<'_>) -> Result<Arc<dyn HealthCheck>, String>
            + Send
            + Sync
            + 'static,
    {
        self.register::<S>(Section::Check, kind);
        let build: Build<Arc<dyn HealthCheck>> =
            Arc::new(move |table, context| build(decode(table)?, context));
        self.checks.insert(kind.to_owned(), build);
        self
    }

    /// Registers the notifier kind `kind`: `[[notify]] kind = "KIND"` with the keys of `S`
    /// (beside `events`, `timeout`).
    ///
    /// # Panics
    ///
    /// When `kind` is built in (`command`, `email`, `webhook`) or registered twice.
    pub fn notifier<S, F>(mut self, kind: &str, build: F) -> Self
    where
        S: DeserializeOwned + 'static,
        F: Fn(S, &PluginContext<'_>) -> Result<Arc<dyn Notifier>, String> + Send + Sync + 'static,
    {
        self.register::<S>(Section::Notify, kind);
        let build: Build<Arc<dyn Notifier>> =
            Arc::new(move |table, context| build(decode(table)?, context));
        self.notifiers.insert(kind.to_owned(), build);
        self
    }

    /// Registers the zone-writer kind `kind`: `[[writer]] kind = "KIND"` with the keys of `S`
    /// (beside `timeout`).
    ///
    /// # Panics
    ///
    /// When `kind` is built in (`zone-file`, `dynamic-update`) or registered twice.
    pub fn writer<S, F>(mut self, kind: &str, build: F) -> Self
    where
        S: DeserializeOwned + 'static,
        F: Fn(S, &PluginContext<'_>) -> Result<Arc<dyn ZoneWriter>, String> + Send + Sync + 'static,
    {
        self.register::<S>(Section::Writer, kind);
        let build: Build<Arc<dyn ZoneWriter>> =
            Arc::new(move |table, context| build(decode(table)?, context));
        self.writers.insert(kind.to_owned(), build);
        self
    }

    /// Registers the policy kind `kind`: `[policy]` (or `[policies.NAME]`) `kind = "KIND"` with
    /// the keys of `S` (beside `all_down`, and `nodes` in `[policies.NAME]`).
    ///
    /// # Panics
    ///
    /// When `kind` is built in (`active-passive`, `all-healthy`) or registered twice.
    pub fn policy<S, F>(mut self, kind: &str, build: F) -> Self
    where
        S: DeserializeOwned + 'static,
        F: Fn(S, &PluginContext<'_>) -> Result<Box<dyn Policy>, String> + Send + Sync + 'static,
    {
        self.register::<S>(Section::Policy, kind);
        let build: Build<Box<dyn Policy>> =
            Arc::new(move |table, context| build(decode(table)?, context));
        self.policies.insert(kind.to_owned(), build);
        self
    }

    /// Whether no kind is registered.
    pub fn is_empty(&self) -> bool {
        self.checks.is_empty()
            && self.notifiers.is_empty()
            && self.writers.is_empty()
            && self.policies.is_empty()
    }

    /// Builds the check of registered kind `kind`.
    pub(crate) fn build_check(
        &self,
        kind: &str,
        table: &toml::Table,
        context: &PluginContext<'_>,
    ) -> Result<Arc<dyn HealthCheck>, String> {
        let build = self.checks.get(kind).ok_or_else(|| unregistered(kind))?;
        build(table, context)
    }

    /// Builds the notifier of registered kind `kind`.
    pub(crate) fn build_notifier(
        &self,
        kind: &str,
        table: &toml::Table,
        context: &PluginContext<'_>,
    ) -> Result<Arc<dyn Notifier>, String> {
        let build = self.notifiers.get(kind).ok_or_else(|| unregistered(kind))?;
        build(table, context)
    }

    /// Builds the zone writer of registered kind `kind`.
    pub(crate) fn build_writer(
        &self,
        kind: &str,
        table: &toml::Table,
        context: &PluginContext<'_>,
    ) -> Result<Arc<dyn ZoneWriter>, String> {
        let build = self.writers.get(kind).ok_or_else(|| unregistered(kind))?;
        build(table, context)
    }

    /// Builds the policy of registered kind `kind`.
    pub(crate) fn build_policy(
        &self,
        kind: &str,
        table: &toml::Table,
        context: &PluginContext<'_>,
    ) -> Result<Box<dyn Policy>, String> {
        let build = self.policies.get(kind).ok_or_else(|| unregistered(kind))?;
        build(table, context)
    }
}

/// A config read with other plugins than the daemon's (a program error).
fn unregistered(kind: &str) -> String {
    format!("kind {kind:?} is not registered with this daemon's plugins")
}
