//! `[zone]`: the zone, its managed names, and how it is served.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::error::{Seg, Validator};
use super::{absolute, Config};

/// `[zone]`: the zone the daemon serves.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneConfig {
    /// The zone's name (`test.ru`).
    pub name: String,
    /// Zone file with the static records (SOA, NS, MX...), relative to the config file.
    pub file: PathBuf,
    /// Addresses to serve DNS on, UDP and TCP.
    pub listen: Vec<SocketAddr>,
    /// UDP sockets per listen address (SO_REUSEPORT), one thread each.
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// Directory for state that must survive restarts (the SOA serial).
    pub state_dir: PathBuf,
    /// The managed names and their TTLs.
    pub records: Vec<RecordConfig>,
    /// Addresses or networks allowed to transfer the zone (AXFR/IXFR); none by default.
    #[serde(default, deserialize_with = "addresses_or_networks")]
    pub allow_transfer: Vec<ipnet::IpNet>,
    /// Secondaries to NOTIFY on every serial change (`"192.0.2.53:53"`).
    #[serde(default)]
    pub notify: Vec<SocketAddr>,
}

/// `"192.0.2.1"` or `"192.0.2.0/24"`: an address is a network of one.
fn addresses_or_networks<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<ipnet::IpNet>, D::Error> {
    let texts: Vec<String> = Vec::deserialize(deserializer)?;
    texts
        .iter()
        .map(|text| {
            text.parse::<ipnet::IpNet>()
                .or_else(|_| text.parse::<IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    serde::de::Error::custom(format!(
                        "{text:?} is neither an address nor a network (expected e.g. \"192.0.2.1\" or \"192.0.2.0/24\")"
                    ))
                })
        })
        .collect()
}

fn default_workers() -> usize {
    super::defaults::DEFAULT_UDP_WORKERS
}

/// A managed name: `{ name = "www", ttl = 10 }`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordConfig {
    /// Relative to the zone (`@` for the apex).
    pub name: String,
    /// TTL in seconds.
    #[serde(default = "default_ttl")]
    pub ttl: u32,
    /// The `[policies.NAME]` it follows (default: `[policy]`).
    pub policy: Option<String>,
}

fn default_ttl() -> u32 {
    10
}

impl ZoneConfig {
    /// Makes the zone file and state directory absolute, relative to `base`.
    pub(super) fn resolve(&mut self, base: &Path) {
        absolute(base, &mut self.file);
        absolute(base, &mut self.state_dir);
    }
}

/// Checks `[zone]`: its name, where the answer goes, the managed names.
pub(super) fn validate(config: &Config, v: &mut Validator<'_>) {
    use Seg::{Index, Key};
    let zone = &config.zone;
    if zone.name.trim_end_matches('.').is_empty() || zone.name.contains(char::is_whitespace) {
        v.fail(
            &[Key("zone"), Key("name")],
            format!(
                "{:?} is not a domain name (expected e.g. \"example.com\")",
                zone.name
            ),
        );
    }
    if zone.listen.is_empty() && config.writers.is_empty() {
        v.fail(&[Key("zone"), Key("listen")], "no address to serve DNS on and no [[writer]]: the answer would go nowhere (expected e.g. listen = [\"0.0.0.0:53\"])");
    }
    if !zone.notify.is_empty() && zone.listen.is_empty() {
        v.fail(
            &[Key("zone"), Key("notify")],
            "notify needs the built-in server: set listen",
        );
    }
    if zone.workers == 0 || zone.workers > 64 {
        v.fail(
            &[Key("zone"), Key("workers")],
            format!("{} is out of range (expected 1 to 64)", zone.workers),
        );
    }
    if zone.records.is_empty() {
        v.fail(
            &[Key("zone"), Key("records")],
            "no managed names (expected e.g. [{ name = \"@\", ttl = 10 }])",
        );
    }
    for (i, record) in zone.records.iter().enumerate() {
        let at = [Key("zone"), Key("records"), Index(i)];
        if record.name.is_empty()
            || record.name.ends_with('.')
                && record.name != "@"
                && !record
                    .name
                    .trim_end_matches('.')
                    .ends_with(zone.name.trim_end_matches('.'))
        {
            v.fail(
                &at,
                format!(
                    "name {:?} must be relative to the zone (\"@\", \"www\") or end in {}",
                    record.name, zone.name
                ),
            );
        }
        if zone.records[..i].iter().any(|r| r.name == record.name) {
            v.fail(&at, format!("name {:?} is listed twice", record.name));
        }
    }
}
