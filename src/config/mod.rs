//! The `failoverd` config file: TOML parsed once into validated types.
//!
//! Every error names the file, the line and the key, and says what was expected. One module per
//! section holds its schema and its validation; `error` holds the errors and their lines,
//! `kinded` the sections whose keys depend on their `kind`, [`schema`] what the types know of
//! their own keys.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

mod admin;
mod check;
mod cluster;
mod damping;
pub mod defaults;
mod error;
mod journal;
pub(crate) mod kinded;
mod local;
mod mirror;
mod mysql;
mod notifier;
pub(crate) mod plugin;
mod policy;
mod probe;
pub mod reference;
mod retired;
pub mod schema;
mod warnings;
mod writer;
mod zone;

pub use admin::AdminConfig;
pub use check::{
    CheckCommon, CheckConfig, CheckKind, DnsSettings, HttpSettings, MirrorSettings, MysqlSettings,
    ReplicationSettings, SshSettings, TcpSettings, TransportConfig, DEFAULT_MAX_LAG,
    DEFAULT_MIRROR_MAX_LAG,
};
pub use cluster::{ClusterConfig, IdentityConfig, WitnessConfig};
pub use damping::DampingConfig;
pub use error::ConfigError;
pub use journal::JournalConfig;
pub use kinded::Kinded;
pub use local::{MirrorLink, Naming, ObserverLinks, Role};
pub use mirror::{MirrorConfig, MirrorOwners};
pub use mysql::{FencingConfig, MysqlConfig};
pub use notifier::{
    CommandSettings, EmailSettings, NotifierCommon, NotifierConfig, NotifierKind, SecurityConfig,
    WebhookSettings,
};
pub use plugin::PluginSettings;
pub use policy::{FailbackMode, NamedPolicyConfig, PolicyConfig, PolicyKind};
pub use probe::{NodeConfig, ProbeConfig};
pub use writer::{
    DynamicUpdateSettings, TsigKeyConfig, WriterCommon, WriterConfig, WriterKind, ZoneFileSettings,
    DEFAULT_TSIG_ALGORITHM,
};
pub use zone::{
    RateLimitSection, RecordConfig, TransferEntry, XdpSection, ZoneConfig, ZoneKeyConfig,
};

use error::{line_number, line_of, Seg, Validator};
use kinded::{check_keys, Wording};

/// The whole config file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The zone and how it is served.
    pub zone: ZoneConfig,
    /// Defaults for every check.
    #[serde(default)]
    pub probe: ProbeConfig,
    /// The servers, in config order.
    #[serde(rename = "node")]
    pub nodes: Vec<NodeConfig>,
    /// The checks, each run against every node.
    #[serde(rename = "check", default)]
    pub checks: Vec<CheckConfig>,
    /// Which nodes the managed names point at.
    pub policy: PolicyConfig,
    /// Policies for the managed names that name one, by name (`[policies.api]`).
    #[serde(default)]
    pub policies: std::collections::BTreeMap<String, NamedPolicyConfig>,
    /// Where events go besides the log.
    #[serde(rename = "notify", default)]
    pub notifiers: Vec<NotifierConfig>,
    /// Other places the answer is published: a BIND zone file, a primary taking dynamic updates.
    #[serde(rename = "writer", default)]
    pub writers: Vec<WriterConfig>,
    /// Damping of notifications for things that change state too often.
    #[serde(default)]
    pub damping: DampingConfig,
    /// The observation journal for `failoverd replay`.
    #[serde(default)]
    pub journal: JournalConfig,
    /// The admin listener (status, metrics, overrides); off when absent.
    pub admin: Option<AdminConfig>,
    /// The MySQL/MariaDB pair: credentials, and fencing on failover.
    pub mysql: Option<MysqlConfig>,
    /// The nodes and the witness share their verdicts (shared observations); each alone when
    /// absent.
    pub cluster: Option<ClusterConfig>,
    /// The observer in a third place that is no node.
    pub witness: Option<WitnessConfig>,
    /// This server's key for the peer link (the same paths on every server).
    #[serde(default)]
    pub identity: IdentityConfig,
    /// The live mirror of the web root between two nodes; off when absent.
    pub mirror: Option<MirrorConfig>,
    /// Where the file was read from (set by [`Config::load`]).
    #[serde(skip)]
    pub path: PathBuf,
    /// The kinds a program registered beside the built-in ones (set by
    /// [`Config::load_with`]; none for `failoverd` itself).
    #[serde(skip)]
    pub plugins: crate::plugins::Plugins,
    /// Which `[[node]]` or `[witness]` this process is (set by [`Config::select`]).
    #[serde(skip)]
    pub local: Option<String>,
}

/// Makes `path` absolute, relative to `base`, when it is relative.
fn absolute(base: &Path, path: &mut PathBuf) {
    if path.is_relative() {
        *path = base.join(&*path);
    }
}

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Self, Vec<ConfigError>> {
        Self::load_with(path, &crate::plugins::Plugins::default())
    }

    /// Reads and validates `path`, which may use the kinds `plugins` registers.
    pub fn load_with(
        path: &Path,
        plugins: &crate::plugins::Plugins,
    ) -> Result<Self, Vec<ConfigError>> {
        let source = std::fs::read_to_string(path).map_err(|source| {
            vec![ConfigError::Read {
                path: path.to_owned(),
                source,
            }]
        })?;
        Self::parse_with(&source, path, plugins)
    }

    /// Parses and validates `source`, read from `path` (relative paths in it are relative to
    /// `path`'s directory).
    pub fn parse(source: &str, path: &Path) -> Result<Self, Vec<ConfigError>> {
        Self::parse_with(source, path, &crate::plugins::Plugins::default())
    }

    /// [`Config::parse`] with the kinds `plugins` registers.
    pub fn parse_with(
        source: &str,
        path: &Path,
        plugins: &crate::plugins::Plugins,
    ) -> Result<Self, Vec<ConfigError>> {
        let kinds = std::sync::Arc::new(plugins.kinds.clone());
        plugin::with_kinds(kinds.clone(), || {
            Self::parse_known(source, path, &kinds).map(|mut config| {
                config.plugins = plugins.clone();
                config
            })
        })
    }

    /// Parses with the registered kinds `kinds` known to the section types.
    fn parse_known(
        source: &str,
        path: &Path,
        kinds: &plugin::PluginKinds,
    ) -> Result<Self, Vec<ConfigError>> {
        let mut v = Validator::new(path, source);
        // Keys of another kind are reported and blanked out first, so that parsing goes on.
        let mut cleaned = source.to_owned();
        let mut policy_settings = Vec::new();
        if let Ok(document) = toml_edit::Document::parse(source) {
            let (v, cleaned) = (&mut v, &mut cleaned);
            let owners = Wording::Owners("check");
            check_keys::<CheckCommon, CheckKind>(&document, "check", owners, kinds, v, cleaned);
            check_keys::<NotifierCommon, NotifierKind>(
                &document,
                "notify",
                Wording::Takes,
                kinds,
                v,
                cleaned,
            );
            check_keys::<WriterCommon, WriterKind>(
                &document,
                "writer",
                Wording::Takes,
                kinds,
                v,
                cleaned,
            );
            retired::check(&document, v, cleaned);
            policy_settings = plugin::take_policy_settings(source, &document, v, cleaned, kinds);
        }
        let mut config: Config = match toml::from_str(&cleaned) {
            Ok(config) => config,
            Err(e) => {
                v.errors.push(syntax_error(source, path, &e));
                return Err(v.errors);
            }
        };
        config.path = path.to_owned();
        for (name, settings) in policy_settings {
            match name {
                None => config.policy.plugin = Some(settings),
                Some(name) => {
                    if let Some(named) = config.policies.get_mut(&name) {
                        named.plugin = Some(settings);
                    }
                }
            }
        }
        config.resolve(path.parent().unwrap_or(Path::new(".")));
        config.validate(&mut v);
        if v.errors.is_empty() {
            Ok(config)
        } else {
            Err(v.errors)
        }
    }

    /// Makes every path in the config absolute, relative to `base` (the config's directory).
    fn resolve(&mut self, base: &Path) {
        self.zone.resolve(base);
        for writer in &mut self.writers {
            writer.resolve(base);
        }
        for check in &mut self.checks {
            check.resolve(base);
        }
        for notifier in &mut self.notifiers {
            notifier.resolve(base);
        }
        if let Some(mysql) = &mut self.mysql {
            mysql.resolve(base);
        }
        self.identity.resolve(base);
        if let Some(mirror) = &mut self.mirror {
            mirror.resolve(base, &self.zone.state_dir);
        }
        if let Some(admin) = &mut self.admin {
            admin.resolve(base);
        }
    }

    /// Every section's checks, in the order of the file's sections.
    fn validate(&self, v: &mut Validator<'_>) {
        zone::validate(self, v);
        probe::validate_nodes(self, v);
        probe::validate_probe(self, v);
        check::validate(self, v);
        policy::validate(self, v);
        notifier::validate(self, v);
        writer::validate(self, v);
        cluster::validate(self, v);
        damping::validate(self, v);
        journal::validate(self, v);
        mysql::validate(self, v);
        mirror::validate(self, v);
        admin::validate(self, v);
    }

    /// A check's interval, timeout, fall and rise with `[probe]`'s defaults applied.
    pub fn check_timing(&self, check: &CheckConfig) -> (Duration, Duration, u32, u32) {
        let common = &check.common;
        (
            common.interval.unwrap_or(self.probe.interval),
            common.timeout.unwrap_or(self.probe.timeout),
            common.fall.unwrap_or(self.probe.fall),
            common.rise.unwrap_or(self.probe.rise),
        )
    }

    /// A check's port with the kind's default.
    pub fn port(check: &CheckConfig) -> u16 {
        check.kind.port()
    }
}

/// toml's error as a config error. One raised inside a `[[check]]`, `[[notify]]` or `[[writer]]`
/// starts with the key it is about (see [`kinded`]) but points at the section's header: it gets
/// the key's own line and path instead.
fn syntax_error(source: &str, path: &Path, error: &toml::de::Error) -> ConfigError {
    let located = error.span().and_then(|span| {
        let document = toml_edit::Document::parse(source).ok()?;
        let (key, message) = error.message().split_once(": ")?;
        ["check", "notify", "writer"]
            .into_iter()
            .find_map(|section| {
                let array = document.get(section)?.as_array_of_tables()?;
                let index = array.iter().position(|table| {
                    table.span().is_some_and(|s| s.contains(&span.start)) && table.contains_key(key)
                })?;
                let at = [Seg::Key(section), Seg::Index(index), Seg::Key(key)];
                Some(ConfigError::Invalid {
                    path: path.to_owned(),
                    line: line_of(source, &at).or(Some(line_number(source, span.start))),
                    key: error::key_name(&at),
                    message: message.to_owned(),
                })
            })
    });
    located.unwrap_or_else(|| ConfigError::Syntax {
        path: path.to_owned(),
        message: error.to_string().trim_end().to_owned(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
pub(super) mod tests {
    use super::*;
    use failover_core::{NodeName, OnPartition};

    pub(crate) const GOOD: &str = r#"
[zone]
name = "test.ru"
file = "db.test.ru"
listen = ["127.0.0.1:5353"]
state_dir = "state"
records = [{ name = "@", ttl = 10 }, { name = "www", ttl = 10 }]

[probe]
interval = "2s"
timeout = "1s"
fall = 3
rise = 1

[[node]]
name = "master"
address = "192.0.2.1"

[[node]]
name = "slave"
address = "198.51.100.2"

[[check]]
name = "http"
kind = "http"
port = 80
critical = true

[[check]]
name = "ssh"
kind = "ssh"

[policy]
kind = "active-passive"
order = ["master", "slave"]
failback = "auto"
failback_after = "30s"
all_down = "keep-last"
"#;

    pub(crate) fn parse(source: &str) -> Result<Config, Vec<ConfigError>> {
        Config::parse(source, Path::new("/etc/failoverd/failoverd.toml"))
    }

    pub(crate) fn errors_of(source: &str) -> Vec<String> {
        parse(source)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn the_documented_example_parses() {
        let config = parse(GOOD).unwrap();
        assert_eq!(config.zone.file, Path::new("/etc/failoverd/db.test.ru"));
        assert_eq!(config.zone.state_dir, Path::new("/etc/failoverd/state"));
        assert_eq!(config.policy.failback_after, Duration::from_secs(30));
        assert_eq!(Config::port(&config.checks[1]), 22);
        assert_eq!(
            config.order(),
            vec![NodeName::new("master"), NodeName::new("slave")]
        );
    }

    #[test]
    fn an_unknown_kind_names_the_line_and_the_choices() {
        let errors = errors_of(&GOOD.replace("kind = \"http\"", "kind = \"htpp\""));
        assert_eq!(errors.len(), 1);
        let e = &errors[0];
        assert!(
            e.starts_with("/etc/failoverd/failoverd.toml: TOML parse error at line 25"),
            "{e}"
        );
        assert!(
            e.contains("unknown variant `htpp`, expected one of `tcp`, `http`, `ssh`"),
            "{e}"
        );
    }

    const FP1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const FP2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    const FP3: &str = "sha256:3333333333333333333333333333333333333333333333333333333333333333";

    /// GOOD with each node's peer-link address and fingerprint.
    pub(crate) fn linked() -> String {
        GOOD.replace(
            "address = \"192.0.2.1\"\n",
            &format!("address = \"192.0.2.1\"\npeer_address = \"192.0.2.1:8054\"\nfingerprint = \"{FP1}\"\n"),
        )
        .replace(
            "address = \"198.51.100.2\"\n",
            &format!("address = \"198.51.100.2\"\npeer_address = \"198.51.100.2:8054\"\nfingerprint = \"{FP2}\"\n"),
        )
    }

    const MIRROR: &str = r#"
[mirror]
root = "/var/www/site"
exclude = ["*.log"]
"#;

    #[test]
    fn a_mirror_section_gets_its_defaults_and_its_errors_name_the_key() {
        let config = parse(&format!("{}{MIRROR}", linked())).unwrap();
        let mirror = config.mirror.as_ref().unwrap();
        let [a, b] = config.mirror_pair().unwrap();
        assert_eq!((a.name.as_str(), b.name.as_str()), ("master", "slave"));
        assert_eq!(mirror.port, 8055);
        assert_eq!(
            config.identity.certificate,
            Path::new("/etc/failoverd/node.crt")
        );
        assert_eq!(
            mirror.state_dir.as_deref(),
            Some(Path::new("/etc/failoverd/state/mirror"))
        );
        assert_eq!(mirror.coalesce, Duration::from_millis(100));
        assert_eq!(mirror.rescan_interval, Duration::from_secs(3600));
        assert_eq!(mirror.max_delete, 50);
        assert_eq!(
            mirror.version_policy(),
            Some((Duration::from_secs(30 * 24 * 3600), 1 << 30))
        );
        assert!(!mirror.xattrs && !mirror.acls);
        let versions = errors_of(&format!(
            "{}{MIRROR}keep_versions_for = \"0s\"\nversions_max_size_mb = 0\n",
            linked()
        ));
        assert!(
            versions[0]
                .contains("mirror.keep_versions_for: 0 keeps nothing (expected e.g. \"30d\""),
            "{versions:#?}"
        );
        assert!(
            versions[1].contains("mirror.versions_max_size_mb: 0 keeps nothing"),
            "{versions:#?}"
        );
        let off = parse(&format!(
            "{}{MIRROR}versions = false\nkeep_versions_for = \"0s\"\n",
            linked()
        ))
        .unwrap();
        assert_eq!(off.mirror.unwrap().version_policy(), None);

        let bad = format!("{GOOD}{MIRROR}").replace(
            "exclude",
            "nodes = [\"master\", \"mastr\"]\nport = 0\nmax_delete = 0\nexclude",
        );
        let errors = errors_of(&bad);
        assert_eq!(errors.len(), 4, "{errors:#?}");
        assert!(errors[0].contains("line 42: mirror.nodes[2]: \"mastr\" is not a [[node]] (expected one of: master, slave)"), "{errors:#?}");
        assert!(
            errors[1].contains("mirror.nodes: expected two different nodes (of: master, slave)"),
            "{errors:#?}"
        );
        assert!(
            errors[2].contains("mirror.max_delete: 0 is out of range"),
            "{errors:#?}"
        );
        assert!(
            errors[3].contains("line 43: mirror.port: port 0"),
            "{errors:#?}"
        );

        // The pair needs to reach each other.
        let errors = errors_of(&format!("{GOOD}{MIRROR}"));
        assert!(errors[0].contains("line 16: node[1].name: node \"master\" has no peer_address: [mirror] needs where the others reach it (peer_address = \"IP:8054\" in its [[node]])"), "{errors:#?}");
        assert!(errors[1].contains("node \"master\" has no fingerprint: [mirror] needs its key's (run `failoverd keygen --name master` on that server"), "{errors:#?}");
        let errors = errors_of(&format!("{}{MIRROR}port = 8054\n", linked()));
        assert!(
            errors[0].contains("mirror.port: 8054 is also node \"master\"'s peer_address port"),
            "{errors:#?}"
        );
        // Three nodes: which two is to be said.
        let three = format!(
            "{}\n[[node]]\nname = \"third\"\naddress = \"203.0.113.9\"\n{MIRROR}",
            linked()
        );
        let errors = errors_of(&three);
        assert!(errors[0].contains("mirror.root: set nodes = [\"a\", \"b\"] in [mirror]: the two nodes whose roots are mirrored (there are 3 [[node]]s: master, slave, third)"), "{errors:#?}");
        assert!(parse(&format!("{three}nodes = [\"slave\", \"master\"]\n")).is_ok());

        let check = GOOD.replace("kind = \"ssh\"", "kind = \"mirror\"");
        let errors = errors_of(&check);
        assert!(
            errors[0].contains("check[2].kind: kind = \"mirror\" needs a [mirror] section"),
            "{errors:?}"
        );
    }

    #[test]
    fn mirror_owners_are_names_by_default_numeric_or_off() {
        let config = parse(&format!("{}{MIRROR}", linked())).unwrap();
        assert_eq!(config.mirror.unwrap().owners, MirrorOwners::Names);
        for (word, owners) in [
            ("numeric", MirrorOwners::Numeric),
            ("off", MirrorOwners::Off),
        ] {
            let text = format!("{}{MIRROR}owners = \"{word}\"\n", linked());
            assert_eq!(parse(&text).unwrap().mirror.unwrap().owners, owners);
        }
        let errors = errors_of(&format!("{}{MIRROR}owners = \"uid\"\n", linked()));
        assert!(
            errors[0].contains("owners = \"uid\"")
                && errors[0].contains("expected one of `names`, `numeric`, `off`"),
            "{errors:?}"
        );
    }

    #[test]
    fn names_may_follow_named_policies_and_an_unknown_one_is_an_error() {
        let text = GOOD.replace(
            "{ name = \"www\", ttl = 10 }]",
            "{ name = \"www\", ttl = 10 }, { name = \"api\", ttl = 10, policy = \"api\" }]",
        ) + "\n[policies.api]\nkind = \"all-healthy\"\nnodes = [\"master\", \"slave\"]\nall_down = \"serve-all\"\n";
        let config = parse(&text).unwrap();
        assert_eq!(config.zone.records[2].policy.as_deref(), Some("api"));
        assert_eq!(config.policies["api"].kind, PolicyKind::AllHealthy);
        assert_eq!(
            config.policies["api"].all_down,
            Some(failover_core::AllDown::ServeAll)
        );

        let errors = errors_of(&text.replace("policy = \"api\"", "policy = \"apii\""));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].contains("line 7: zone.records[3].policy: unknown policy \"apii\" (define [policies.apii], or use one of: api)"),
            "{errors:?}"
        );
        let errors = errors_of(&format!("{text}order = [\"slvae\"]\n"));
        assert!(
            errors[0].contains("policies.api.order[1]: unknown node \"slvae\""),
            "{errors:?}"
        );
    }

    #[test]
    fn an_unknown_key_is_an_error() {
        let errors = errors_of(&GOOD.replace("fall = 3", "fall = 3\nfails = 4"));
        assert!(
            errors[0].contains("line 13") && errors[0].contains("unknown field `fails`"),
            "{errors:?}"
        );
    }

    #[test]
    fn a_bad_duration_says_what_was_expected() {
        let errors = errors_of(&GOOD.replace("interval = \"2s\"", "interval = \"2 parsecs\""));
        assert!(
            errors[0].contains("line 10") && errors[0].contains("expected a duration"),
            "{errors:?}"
        );
    }

    #[test]
    fn notifiers_are_checked_per_kind() {
        let with = |notify: &str| format!("{GOOD}\n{notify}");
        assert!(parse(&with("[[notify]]\nkind = \"email\"\nhost = \"192.0.2.25\"\nfrom = \"f@test.ru\"\nto = [\"a@test.ru\"]\nevents = [\"failover\"]\n")).is_ok());
        // The mirror's events can be chosen like the arbiter's (they were refused before).
        assert!(parse(&with("[[notify]]\nkind = \"command\"\ncommand = [\"true\"]\nevents = [\"mirror-conflicts\", \"mirror-failed\", \"fence-step\"]\n")).is_ok());
        let errors = errors_of(&with("[[notify]]\nkind = \"email\"\nhost = \"192.0.2.25\"\nurl = \"http://x\"\nevents = [\"failovr\"]\n"));
        assert!(
            errors
                .iter()
                .any(|e| e.contains("notify[1].url: url does not apply to kind = \"email\"")),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.contains("kind = \"email\" needs from")),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.contains("notify[1].events[1]: unknown event \"failovr\"")),
            "{errors:?}"
        );
        let errors = errors_of(&with(
            "[[notify]]\nkind = \"webhook\"\nurl = \"http://x\"\nsubject = \"{x}\"\n",
        ));
        assert!(
            errors.iter().any(|e| e.contains("subject does not apply")),
            "{errors:?}"
        );
    }

    #[test]
    fn semantic_errors_name_line_and_key() {
        let errors = errors_of(&GOOD.replace(
            "order = [\"master\", \"slave\"]",
            "order = [\"master\", \"slvae\"]",
        ));
        assert_eq!(
            errors,
            ["/etc/failoverd/failoverd.toml line 35: policy.order[2]: unknown node \"slvae\" (nodes: master, slave)"]
        );
        let errors = errors_of(&GOOD.replace("kind = \"ssh\"", "kind = \"ssh\"\npath = \"/\""));
        assert_eq!(
            errors,
            ["/etc/failoverd/failoverd.toml line 32: check[2].path: path only applies to kind = \"http\" (this check is kind = \"ssh\")"]
        );
        let errors = errors_of(&GOOD.replace("kind = \"ssh\"", "kind = \"tcp\""));
        assert!(
            errors[0].contains("line 31: check[2].kind: check \"ssh\": kind \"tcp\" needs a port"),
            "{errors:?}"
        );
        let errors = errors_of(&GOOD.replace("timeout = \"1s\"", "timeout = \"5s\""));
        assert!(
            errors[0].contains(
                "line 11: probe.timeout: 5s must be more than 0 and at most the interval (2s)"
            ),
            "{errors:?}"
        );
        let errors = errors_of(&GOOD.replace("critical = true", "critical = false"));
        assert!(errors[0].contains("no check is critical"), "{errors:?}");
    }
    /// `linked()` with `[cluster]` (its keys `cluster`) and, when `witness`, a `[witness]`.
    fn with_cluster(cluster: &str, witness: bool) -> String {
        let mut source = format!("{}\n[cluster]\n{cluster}\n", linked());
        if witness {
            source.push_str(&format!(
                "\n[witness]\nname = \"witness\"\npeer_address = \"203.0.113.3:8054\"\nfingerprint = \"{FP3}\"\n"
            ));
        }
        source
    }

    #[test]
    fn cluster_and_witness_parse_with_their_defaults() {
        let config = parse(&with_cluster("", false)).unwrap();
        let cluster = config.cluster.as_ref().unwrap();
        assert_eq!(config.identity.key, Path::new("/etc/failoverd/node.key"));
        assert_eq!(cluster.observer_timeout, Duration::from_secs(10));
        assert_eq!(config.on_partition(), OnPartition::FailOver);
        assert_eq!(config.nodes[0].fingerprint.unwrap().to_string(), FP1);
        assert_eq!(config.observer_names(), ["master", "slave"]);
        // A witness makes three observers: a node cut off from two of them holds by default.
        let config = parse(&with_cluster("", true)).unwrap();
        assert_eq!(config.on_partition(), OnPartition::Hold);
        assert_eq!(config.observer_names(), ["master", "slave", "witness"]);
        let config = parse(&with_cluster("on_partition = \"hold\"", false)).unwrap();
        assert_eq!(config.on_partition(), OnPartition::Hold);
        let config = parse(&with_cluster("", true).replace(
            "\n[cluster]\n",
            "\n[identity]\ncertificate = \"keys/me.crt\"\n\n[cluster]\n",
        ))
        .unwrap();
        assert_eq!(
            config.identity.certificate,
            Path::new("/etc/failoverd/keys/me.crt")
        );
    }

    #[test]
    fn cluster_mistakes_name_the_key_and_the_fix() {
        let errors = errors_of(&with_cluster("on_partition = \"failover\"", false));
        assert!(
            errors[0].contains("unknown variant `failover`, expected `fail-over` or `hold`"),
            "{errors:?}"
        );
        let errors = errors_of(&with_cluster("", false).replace(FP2, "sha256:abc"));
        assert!(
            errors[0].contains(
                "is not sha256:<64 hex digits> (print yours with failoverd keygen --show)"
            ),
            "{errors:?}"
        );
        let errors = errors_of(&with_cluster("", true).replace(FP3, FP1));
        assert!(
            errors.iter().any(|e| e.contains("witness.fingerprint: \"witness\" has the same fingerprint as \"master\": each server needs its own key")),
            "{errors:?}"
        );
        let errors =
            errors_of(&with_cluster("", true).replace("name = \"witness\"", "name = \"slave\""));
        assert!(
            errors
                .iter()
                .any(|e| e.contains("witness.name: \"slave\" is also a [[node]]")),
            "{errors:?}"
        );
        let errors = errors_of(&format!("{GOOD}\n[cluster]\n"));
        assert!(
            errors.iter().any(|e| e.contains(
                "node \"slave\" has no peer_address: [cluster] needs where the others reach it"
            )),
            "{errors:?}"
        );
        let errors = errors_of(&with_cluster("", false).replace(
            "peer_address = \"198.51.100.2:8054\"",
            "peer_listen = \"0.0.0.0:0\"",
        ));
        assert!(
            errors
                .iter()
                .any(|e| e.contains("node[2].peer_listen: port 0")),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.contains("node[2].peer_listen: peer_listen without peer_address")),
            "{errors:?}"
        );
        let errors = errors_of(&format!(
            "{GOOD}\n[witness]\nname = \"w\"\nfingerprint = \"{FP3}\"\n"
        ));
        assert!(
            errors[0].contains("witness: a [witness] needs a [cluster] section"),
            "{errors:?}"
        );
    }

    #[test]
    fn two_nodes_without_a_witness_are_warned_about() {
        let alone = parse(GOOD).unwrap().warnings();
        assert!(
            alone
                .iter()
                .any(|w| w.contains("each deciding alone") && w.contains("split brain")),
            "{alone:?}"
        );
        let pair = parse(&with_cluster("", false)).unwrap().warnings();
        assert!(
            pair.iter().any(|w| w.contains("two nodes and no witness")
                && w.contains("on_partition = fail-over decides (each serves itself)")),
            "{pair:?}"
        );
        let with_witness = parse(&with_cluster("", true)).unwrap().warnings();
        assert!(
            !with_witness.iter().any(|w| w.contains("witness")),
            "{with_witness:?}"
        );
        let unreachable =
            parse(&with_cluster("", true).replace("peer_address = \"203.0.113.3:8054\"\n", ""))
                .unwrap()
                .warnings();
        assert!(
            unreachable
                .iter()
                .any(|w| w.contains("the [witness] \"witness\" has no peer_address")),
            "{unreachable:?}"
        );
    }

    #[test]
    fn a_key_of_another_kind_names_file_line_key_and_the_kinds_it_belongs_to() {
        let errors =
            errors_of(&GOOD.replace("kind = \"ssh\"", "kind = \"ssh\"\nquery = \"test.ru\""));
        assert_eq!(
            errors,
            ["/etc/failoverd/failoverd.toml line 32: check[2].query: query only applies to kind = \"dns\" (this check is kind = \"ssh\")"]
        );
        let errors = errors_of(&GOOD.replace("kind = \"ssh\"", "kind = \"ssh\"\nmax_lag = \"5s\""));
        assert_eq!(
            errors,
            ["/etc/failoverd/failoverd.toml line 32: check[2].max_lag: max_lag only applies to kind = \"mysql-replication\" or \"mirror\" (this check is kind = \"ssh\")"]
        );
    }

    #[test]
    fn a_key_of_no_kind_lists_the_keys_of_its_kind() {
        let errors =
            errors_of(&GOOD.replace("kind = \"ssh\"", "kind = \"ssh\"\nurl = \"http://x\""));
        assert_eq!(
            errors,
            ["/etc/failoverd/failoverd.toml line 32: check[2].url: check \"ssh\": unknown key \"url\" for kind \"ssh\" (keys of kind ssh: kind, name, critical, interval, timeout, fall, rise, port)"]
        );
        let errors = errors_of(&format!(
            "{GOOD}\n[[writer]]\nkind = \"zone-file\"\nfile = \"db\"\nreload_cmd = [\"x\"]\n"
        ));
        assert!(
            errors[0].contains("writer[1].reload_cmd: unknown key \"reload_cmd\" for kind \"zone-file\" (keys of kind zone-file: kind, timeout, file, reload, verify)"),
            "{errors:?}"
        );
    }

    #[test]
    fn a_bad_value_inside_a_check_names_its_own_line_and_key() {
        let errors = errors_of(&GOOD.replace("port = 80", "port = 80\ninterval = \"2 parsecs\""));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("/etc/failoverd/failoverd.toml line 27: check[1].interval: ")
                && errors[0].contains("expected a duration"),
            "{errors:?}"
        );
        let errors = errors_of(&GOOD.replace("port = 80", "port = \"eighty\""));
        assert!(
            errors[0]
                .starts_with("/etc/failoverd/failoverd.toml line 26: check[1].port: invalid type"),
            "{errors:?}"
        );
    }

    #[test]
    fn a_missing_file_is_named() {
        let errors = Config::load(Path::new("/nonexistent/failoverd.toml")).unwrap_err();
        let error = errors[0].to_string();
        assert!(
            error.starts_with("/nonexistent/failoverd.toml: No such file"),
            "{error}"
        );
    }

    #[test]
    fn the_kinds_and_their_keys_come_from_the_types() {
        let kinds = schema::kinds_of::<CheckKind>();
        let names: Vec<&str> = kinds.iter().map(|(name, _)| *name).collect();
        assert_eq!(
            names,
            [
                "tcp",
                "http",
                "ssh",
                "dns",
                "mysql",
                "mysql-replication",
                "mirror"
            ]
        );
        assert_eq!(kinds[6].1, ["max_lag"]);
        assert_eq!(
            schema::fields_of::<CheckCommon>(),
            ["name", "critical", "interval", "timeout", "fall", "rise"]
        );
    }
}
