//! `[[writer]]`: other places the answer is published (a BIND zone file, a primary taking
//! dynamic updates); the keys every kind takes, and each kind's own.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::error::{Seg, Validator};
use super::kinded::{Kinded, PluginKind};
use super::plugin::{PluginSettings, Section};
use super::{absolute, Config};

/// `[[writer]]`: another place the answer is published.
pub type WriterConfig = Kinded<WriterCommon, WriterKind>;

/// The keys of `[[writer]]` every kind takes.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriterCommon {
    /// Budget of each step (write, reload, update).
    #[serde(default = "default_step_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_step_timeout() -> Duration {
    super::defaults::DEFAULT_STEP_TIMEOUT
}

/// The kinds of zone writer, each with its own keys.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum WriterKind {
    /// Rewrite a BIND zone file and reload it.
    ZoneFile(ZoneFileSettings),
    /// Send RFC 2136 updates to a primary.
    DynamicUpdate(DynamicUpdateSettings),
    /// A kind a program registered ([`crate::plugins::Plugins::writer`]).
    #[serde(skip)]
    Plugin(PluginSettings),
}

impl PluginKind for WriterKind {
    const SECTION: Section = Section::Writer;
    fn plugin(settings: PluginSettings) -> Self {
        WriterKind::Plugin(settings)
    }
}

/// `kind = "zone-file"`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneFileSettings {
    /// The zone file BIND loads.
    pub file: Option<PathBuf>,
    /// The reload command (default `["rndc", "reload", ZONE]`).
    pub reload: Option<Vec<String>>,
    /// Ask this server for the SOA after the reload until it serves the new serial.
    pub verify: Option<SocketAddr>,
}

/// `kind = "dynamic-update"`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DynamicUpdateSettings {
    /// The primary's address (`"192.0.2.53:53"`).
    pub primary: Option<SocketAddr>,
    /// A BIND key file (`tsig-keygen` output).
    pub key_file: Option<PathBuf>,
    /// Which key of `key_file`, when it holds several.
    pub key_name: Option<String>,
    /// The key inline instead of `key_file`.
    pub key: Option<TsigKeyConfig>,
}

/// An inline TSIG key: `{ name = "failover-key", algorithm = "hmac-sha256", secret = "..." }`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TsigKeyConfig {
    /// The key's name, as the primary knows it.
    pub name: String,
    /// `hmac-sha256` (default), `hmac-sha384` or `hmac-sha512`.
    #[serde(default = "default_tsig_algorithm")]
    pub algorithm: String,
    /// The base64 secret.
    pub secret: String,
}

/// The TSIG algorithm of a key that names none (a writer's inline key, a `[[zone.keys]]` entry).
pub const DEFAULT_TSIG_ALGORITHM: &str = "hmac-sha256";

fn default_tsig_algorithm() -> String {
    DEFAULT_TSIG_ALGORITHM.to_owned()
}

impl WriterKind {
    /// The kind's name, as in the config.
    pub fn name(&self) -> &str {
        match self {
            WriterKind::Plugin(settings) => &settings.kind,
            WriterKind::ZoneFile(_) => "zone-file",
            WriterKind::DynamicUpdate(_) => "dynamic-update",
        }
    }
}

impl std::fmt::Display for WriterKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl WriterConfig {
    /// Makes its files absolute, relative to `base`.
    pub(super) fn resolve(&mut self, base: &Path) {
        let file = match &mut self.kind {
            WriterKind::ZoneFile(s) => s.file.as_mut(),
            WriterKind::DynamicUpdate(s) => s.key_file.as_mut(),
            // Its paths are its own: relative to the config's directory through
            // `PluginContext::config.path`.
            WriterKind::Plugin(_) => None,
        };
        if let Some(file) = file {
            absolute(base, file);
        }
    }
}

/// Checks `[[writer]]`: what each kind needs, and a reload command that can run.
pub(super) fn validate(config: &Config, v: &mut Validator<'_>) {
    use Seg::{Index, Key};
    for (i, writer) in config.writers.iter().enumerate() {
        match &writer.kind {
            WriterKind::ZoneFile(s) => {
                if s.file.is_none() {
                    v.fail(&[Key("writer"), Index(i)], "kind = \"zone-file\" needs file (e.g. file = \"/etc/bind/db.example.com\")");
                }
                if s.reload
                    .as_ref()
                    .is_some_and(|r| r.first().is_none_or(|c| c.is_empty()))
                {
                    v.fail(
                        &[Key("writer"), Index(i), Key("reload")],
                        "empty command (expected e.g. [\"rndc\", \"reload\", \"example.com\"])",
                    );
                }
            }
            WriterKind::DynamicUpdate(s) => {
                if s.primary.is_none() {
                    v.fail(&[Key("writer"), Index(i)], "kind = \"dynamic-update\" needs primary (e.g. primary = \"192.0.2.53:53\")");
                } else if s.key.is_some() == s.key_file.is_some() {
                    v.fail(&[Key("writer"), Index(i)], "kind = \"dynamic-update\" needs exactly one of key_file (a tsig-keygen file) or key = { name, algorithm, secret }");
                }
            }
            // Checked by its settings type while parsing.
            WriterKind::Plugin(_) => {}
        }
    }
}
