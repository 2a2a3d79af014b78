//! `[policy]`: which nodes the managed names point at.

use std::time::Duration;

use serde::Deserialize;

use failover_core::{AllDown, NodeName};

use super::error::{Seg, Validator};
use super::plugin::{registered, unknown_kind, PluginSettings, Section};
use super::Config;

/// The kinds of policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyKind {
    /// One node at a time, in `order`.
    ActivePassive,
    /// Every node that is up.
    AllHealthy,
    /// A kind a program registered ([`crate::plugins::Plugins::policy`]).
    Plugin(String),
}

/// The built-in policy kinds, as written in the config.
const BUILTIN: [&str; 2] = ["active-passive", "all-healthy"];

impl PolicyKind {
    /// The kind's name, as in the config.
    pub fn name(&self) -> &str {
        match self {
            PolicyKind::ActivePassive => BUILTIN[0],
            PolicyKind::AllHealthy => BUILTIN[1],
            PolicyKind::Plugin(kind) => kind,
        }
    }
}

impl std::fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl<'de> Deserialize<'de> for PolicyKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let kind = String::deserialize(deserializer)?;
        match kind.as_str() {
            "active-passive" => Ok(PolicyKind::ActivePassive),
            "all-healthy" => Ok(PolicyKind::AllHealthy),
            other if registered(Section::Policy, other).is_some() => Ok(PolicyKind::Plugin(kind)),
            other => Err(serde::de::Error::custom(unknown_kind(
                other,
                &BUILTIN,
                Section::Policy,
            ))),
        }
    }
}

/// When `active-passive` returns to the preferred node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailbackMode {
    /// After `failback_after`.
    Auto,
    /// When an operator asks.
    Manual,
}

/// `[policy]`. Its kind-specific keys stay plain fields: `order` is refused for `all-healthy`
/// below, and `failback`/`failback_after` have defaults that mean nothing to `all-healthy`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// `active-passive` or `all-healthy`.
    pub kind: PolicyKind,
    /// active-passive: nodes by preference (default: config order).
    #[serde(default)]
    pub order: Vec<String>,
    /// active-passive: `auto` or `manual`.
    #[serde(default = "default_failback")]
    pub failback: FailbackMode,
    /// active-passive, failback `auto`: how long the preferred node must be up again.
    #[serde(default = "default_failback_after", with = "humantime_serde")]
    pub failback_after: Duration,
    /// What to publish when every node is down.
    #[serde(default)]
    pub all_down: AllDown,
    /// A registered kind's own settings (`None` for the built-in kinds).
    #[serde(skip)]
    pub plugin: Option<PluginSettings>,
}

/// `[policies.NAME]`: a policy for the managed names whose `policy` is `NAME`; the others
/// follow `[policy]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedPolicyConfig {
    /// `active-passive` or `all-healthy`.
    pub kind: PolicyKind,
    /// active-passive: nodes by preference (default: its nodes in config order).
    #[serde(default)]
    pub order: Vec<String>,
    /// active-passive: `auto` or `manual`.
    #[serde(default = "default_failback")]
    pub failback: FailbackMode,
    /// active-passive, failback `auto`: how long the preferred node must be up again.
    #[serde(default = "default_failback_after", with = "humantime_serde")]
    pub failback_after: Duration,
    /// The nodes it chooses among (default: every node).
    #[serde(default)]
    pub nodes: Vec<String>,
    /// What its names publish when every one of its nodes is down (default: `[policy]`'s).
    pub all_down: Option<AllDown>,
    /// A registered kind's own settings (`None` for the built-in kinds).
    #[serde(skip)]
    pub plugin: Option<PluginSettings>,
}

fn default_failback() -> FailbackMode {
    FailbackMode::Auto
}
fn default_failback_after() -> Duration {
    super::defaults::DEFAULT_FAILBACK_AFTER
}

impl Config {
    /// The policy's node order (config order when `order` is not given).
    pub fn order(&self) -> Vec<NodeName> {
        if self.policy.order.is_empty() {
            self.nodes.iter().map(|n| NodeName::new(&n.name)).collect()
        } else {
            self.policy.order.iter().map(NodeName::new).collect()
        }
    }
}

/// Checks `[policies.NAME]` and the records' `policy`: every name is known, `nodes` and
/// `order` name known nodes, `order` only within `nodes` and only for `active-passive`.
fn validate_named(config: &Config, v: &mut Validator<'_>) {
    use Seg::{Index, Key};
    let known: Vec<&str> = config.policies.keys().map(String::as_str).collect();
    for (i, record) in config.zone.records.iter().enumerate() {
        if let Some(name) = &record.policy {
            if !config.policies.contains_key(name) {
                v.fail(
                    &[Key("zone"), Key("records"), Index(i), Key("policy")],
                    format!(
                        "unknown policy {name:?} (define [policies.{name}], or use one of: {})",
                        if known.is_empty() {
                            "none defined".to_owned()
                        } else {
                            known.join(", ")
                        }
                    ),
                );
            }
        }
    }
    let nodes: Vec<&str> = config.nodes.iter().map(|n| n.name.as_str()).collect();
    for (key, policy) in &config.policies {
        for (field, list) in [("nodes", &policy.nodes), ("order", &policy.order)] {
            for (i, name) in list.iter().enumerate() {
                let at = [Key("policies"), Key(key), Key(field), Index(i)];
                if !nodes.contains(&name.as_str()) {
                    v.fail(
                        &at,
                        format!("unknown node {name:?} (nodes: {})", nodes.join(", ")),
                    );
                } else if field == "order"
                    && !policy.nodes.is_empty()
                    && !policy.nodes.contains(name)
                {
                    v.fail(&at, format!("node {name:?} is not in this policy's nodes"));
                } else if list[..i].contains(name) {
                    v.fail(&at, format!("node {name:?} is listed twice"));
                }
            }
        }
        if policy.kind == PolicyKind::AllHealthy && !policy.order.is_empty() {
            v.fail(
                &[Key("policies"), Key(key), Key("order")],
                "order only applies to kind = \"active-passive\"",
            );
        }
    }
}

/// Checks `[policy]`: `order` names each node once, and only for `active-passive`; then the
/// named policies.
pub(super) fn validate(config: &Config, v: &mut Validator<'_>) {
    validate_named(config, v);
    use Seg::{Index, Key};
    let policy = &config.policy;
    for (i, name) in policy.order.iter().enumerate() {
        if !config.nodes.iter().any(|n| &n.name == name) {
            let known = config
                .nodes
                .iter()
                .map(|n| n.name.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            v.fail(
                &[Key("policy"), Key("order"), Index(i)],
                format!("unknown node {name:?} (nodes: {known})"),
            );
        }
        if policy.order[..i].contains(name) {
            v.fail(
                &[Key("policy"), Key("order"), Index(i)],
                format!("node {name:?} is listed twice"),
            );
        }
    }
    if policy.kind == PolicyKind::AllHealthy && !policy.order.is_empty() {
        v.fail(
            &[Key("policy"), Key("order")],
            "order only applies to kind = \"active-passive\"",
        );
    }
}
