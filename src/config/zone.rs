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
    /// Who may transfer the zone (AXFR/IXFR), by address or network, optionally with a TSIG key
    /// of `keys`; none by default.
    #[serde(default)]
    pub allow_transfer: Vec<TransferEntry>,
    /// TSIG keys that `allow_transfer` entries may require.
    #[serde(default)]
    pub keys: Vec<ZoneKeyConfig>,
    /// Secondaries to NOTIFY on every serial change (`"192.0.2.53:53"`).
    #[serde(default)]
    pub notify: Vec<SocketAddr>,
    /// `[zone.rate_limit]`: response rate limiting over UDP.
    #[serde(default)]
    pub rate_limit: RateLimitSection,
    /// `[zone.xdp]`: the opt-in AF_XDP listener for UDP queries on one interface.
    pub xdp: Option<XdpSection>,
}

/// `[zone.xdp]`: UDP queries arriving on `interface` are answered through AF_XDP sockets, past
/// the kernel's socket layer (built with the feature `xdp`; Linux, root or the capabilities).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XdpSection {
    /// The network interface the queries arrive on (`eth0`).
    pub interface: String,
    /// The receive queues to serve, one socket and thread each (default: all of them).
    pub queues: Option<Vec<u32>>,
}

/// One `allow_transfer` entry: `"192.0.2.0/24"`, or `{ from = "192.0.2.0/24", key = "xfr-key" }`
/// when the transfer must be signed with a key of `[[zone.keys]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferEntry {
    /// The address or network allowed (an address is a network of one).
    pub from: ipnet::IpNet,
    /// The name of the `[[zone.keys]]` key the request must be signed with.
    pub key: Option<String>,
}

impl std::fmt::Display for TransferEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.key {
            Some(key) => write!(f, "{} (key {key})", self.from),
            None => write!(f, "{}", self.from),
        }
    }
}

/// The table form of [`TransferEntry`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyedEntry {
    from: String,
    key: String,
}

impl<'de> Deserialize<'de> for TransferEntry {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = TransferEntry;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an address, a network, or { from = \"192.0.2.0/24\", key = \"name\" }")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<TransferEntry, E> {
                Ok(TransferEntry {
                    from: address_or_network(text)?,
                    key: None,
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<TransferEntry, A::Error> {
                let entry =
                    KeyedEntry::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(TransferEntry {
                    from: address_or_network(&entry.from)?,
                    key: Some(entry.key),
                })
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// `[[zone.keys]]`: a TSIG key transfers may require, inline or from a BIND key file.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneKeyConfig {
    /// The key's name, as the secondaries know it (and as `allow_transfer` names it).
    pub name: String,
    /// `hmac-sha256` (default), `hmac-sha384` or `hmac-sha512` (inline keys only).
    pub algorithm: Option<String>,
    /// The base64 secret, inline.
    pub secret: Option<String>,
    /// A BIND key file (`tsig-keygen` output) holding the key called `name`, instead of `secret`.
    pub key_file: Option<PathBuf>,
}

/// `[zone.rate_limit]`: response rate limiting over UDP (TCP is never limited).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSection {
    /// On (the default) or off.
    pub enabled: bool,
    /// Positive and no-data answers per second per client prefix, name and type (0: no limit).
    pub responses_per_second: u32,
    /// NXDOMAIN and error answers per second per client prefix (0: no limit).
    pub errors_per_second: u32,
    /// Every `slip`-th limited answer goes out truncated (0: none, 1: all).
    pub slip: u32,
    /// The IPv4 prefix length clients are grouped by.
    pub ipv4_prefix: u8,
    /// The IPv6 prefix length clients are grouped by.
    pub ipv6_prefix: u8,
    /// Networks never limited.
    #[serde(deserialize_with = "addresses_or_networks")]
    pub exempt: Vec<ipnet::IpNet>,
}

impl Default for RateLimitSection {
    fn default() -> Self {
        use super::defaults as d;
        Self {
            enabled: true,
            responses_per_second: d::DEFAULT_RESPONSES_PER_SECOND,
            errors_per_second: d::DEFAULT_ERRORS_PER_SECOND,
            slip: d::DEFAULT_SLIP,
            ipv4_prefix: d::DEFAULT_IPV4_PREFIX,
            ipv6_prefix: d::DEFAULT_IPV6_PREFIX,
            exempt: Vec::new(),
        }
    }
}

impl std::fmt::Display for RateLimitSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.enabled {
            return f.write_str("off");
        }
        let limit = |n: u32| {
            if n == 0 {
                "unlimited".to_owned()
            } else {
                format!("{n}/s")
            }
        };
        write!(
            f,
            "answers {} per client /{} (IPv4) or /{} (IPv6), name and type; errors {} per client prefix; {}",
            limit(self.responses_per_second),
            self.ipv4_prefix,
            self.ipv6_prefix,
            limit(self.errors_per_second),
            match self.slip {
                0 => "limited answers dropped".to_owned(),
                1 => "limited answers sent truncated".to_owned(),
                n => format!("1 in {n} limited answers sent truncated, the others dropped"),
            }
        )?;
        if !self.exempt.is_empty() {
            let exempt: Vec<String> = self.exempt.iter().map(ToString::to_string).collect();
            write!(f, "; exempt: {}", exempt.join(", "))?;
        }
        Ok(())
    }
}

fn address_or_network<E: serde::de::Error>(text: &str) -> Result<ipnet::IpNet, E> {
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| {
            E::custom(format!(
                "{text:?} is neither an address nor a network (expected e.g. \"192.0.2.1\" or \"192.0.2.0/24\")"
            ))
        })
}

/// `"192.0.2.1"` or `"192.0.2.0/24"`: an address is a network of one.
fn addresses_or_networks<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<ipnet::IpNet>, D::Error> {
    let texts: Vec<String> = Vec::deserialize(deserializer)?;
    texts.iter().map(|text| address_or_network(text)).collect()
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
        for key in &mut self.keys {
            if let Some(file) = &mut key.key_file {
                absolute(base, file);
            }
        }
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
    validate_transfers(zone, v);
    validate_rate_limit(&zone.rate_limit, v);
    if let Some(xdp) = &zone.xdp {
        validate_xdp(xdp, &zone.listen, v);
    }
}

/// Checks `[zone.xdp]`: built in, an interface, queues, listen addresses the program can match.
fn validate_xdp(xdp: &XdpSection, listen: &[SocketAddr], v: &mut Validator<'_>) {
    use Seg::Key;
    let at = |key| [Key("zone"), Key("xdp"), Key(key)];
    if !cfg!(all(feature = "xdp", target_os = "linux")) {
        v.fail(&[Key("zone"), Key("xdp")], "this failoverd was built without the AF_XDP listener (build it on Linux with --features xdp, or remove [zone.xdp])");
    }
    if xdp.interface.trim().is_empty() {
        v.fail(
            &at("interface"),
            "is empty (expected the interface the queries arrive on, e.g. interface = \"eth0\")",
        );
    }
    if let Some(queues) = &xdp.queues {
        if queues.is_empty() {
            v.fail(
                &at("queues"),
                "is empty (leave it out to serve every receive queue)",
            );
        }
        if let Some(twice) = queues
            .iter()
            .enumerate()
            .find(|(i, q)| queues[..*i].contains(q))
        {
            v.fail(&at("queues"), format!("queue {} is listed twice", twice.1));
        }
    }
    if listen.is_empty() {
        v.fail(
            &at("interface"),
            "the AF_XDP listener needs the built-in server: set [zone] listen",
        );
    }
    #[cfg(all(feature = "xdp", target_os = "linux"))]
    if let Err(problem) = failover_dns::XdpConfig::check_listen(listen) {
        v.fail(
            &[Key("zone"), Key("listen")],
            format!("{problem}, for [zone.xdp]'s program to match"),
        );
    }
}

/// Checks `allow_transfer` and `[[zone.keys]]`: every key named is defined, once, one way.
fn validate_transfers(zone: &ZoneConfig, v: &mut Validator<'_>) {
    use Seg::{Index, Key};
    for (i, key) in zone.keys.iter().enumerate() {
        let at = [Key("zone"), Key("keys"), Index(i)];
        if key.name.trim_end_matches('.').is_empty() {
            v.fail(
                &at,
                "name is empty (expected the key's name, e.g. name = \"xfr-key\")",
            );
        }
        if zone.keys[..i].iter().any(|k| k.name == key.name) {
            v.fail(&at, format!("key {:?} is defined twice", key.name));
        }
        if key.secret.is_some() == key.key_file.is_some() {
            v.fail(&at, "needs exactly one of secret (base64, inline) or key_file (a tsig-keygen file holding the key called name)");
        }
        if key.key_file.is_some() && key.algorithm.is_some() {
            v.fail(
                &[Key("zone"), Key("keys"), Index(i), Key("algorithm")],
                "a key file names its algorithm: drop algorithm or use secret",
            );
        }
    }
    for (i, entry) in zone.allow_transfer.iter().enumerate() {
        let Some(name) = &entry.key else { continue };
        if !zone.keys.iter().any(|k| &k.name == name) {
            v.fail(
                &[Key("zone"), Key("allow_transfer"), Index(i), Key("key")],
                format!("no key {name:?} in [[zone.keys]] (define it: [[zone.keys]] name = {name:?}, secret = \"...\" or key_file = \"...\")"),
            );
        }
    }
}

/// Checks `[zone.rate_limit]`: prefix lengths and slip within range.
/// Highest rate limit the response rate limiter can count to.
const MAX_RATE: u32 = 65_000;

fn validate_rate_limit(rate_limit: &RateLimitSection, v: &mut Validator<'_>) {
    use Seg::Key;
    let at = |key| [Key("zone"), Key("rate_limit"), Key(key)];
    if !(1..=32).contains(&rate_limit.ipv4_prefix) {
        v.fail(
            &at("ipv4_prefix"),
            format!(
                "{} is out of range (expected 1 to 32, e.g. 24)",
                rate_limit.ipv4_prefix
            ),
        );
    }
    if !(1..=128).contains(&rate_limit.ipv6_prefix) {
        v.fail(
            &at("ipv6_prefix"),
            format!(
                "{} is out of range (expected 1 to 128, e.g. 56)",
                rate_limit.ipv6_prefix
            ),
        );
    }
    // The table counts to 65,535 a second per bucket: a higher limit would never limit.
    for (key, value) in [
        ("responses_per_second", rate_limit.responses_per_second),
        ("errors_per_second", rate_limit.errors_per_second),
    ] {
        if value > MAX_RATE {
            v.fail(
                &at(key),
                format!("{value} is out of range (expected 0 to {MAX_RATE}; 0 means no limit)"),
            );
        }
    }
    if rate_limit.slip > 10 {
        v.fail(&at("slip"), format!("{} is out of range (expected 0 to 10: 0 drops every limited answer, 1 truncates each, 2 every second)", rate_limit.slip));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::super::tests::{errors_of, parse, GOOD};
    use super::*;

    fn with_transfers(entries: &str, rest: &str) -> String {
        let zone = GOOD.replace(
            "records = ",
            &format!("allow_transfer = {entries}\nrecords = "),
        );
        format!("{zone}\n{rest}")
    }

    #[test]
    fn xdp_is_read_and_checked() {
        let config = parse(&format!(
            "{GOOD}\n[zone.xdp]\ninterface = \"eth0\"\nqueues = [0, 1]\n"
        ))
        .unwrap();
        let expected = XdpSection {
            interface: "eth0".to_owned(),
            queues: Some(vec![0, 1]),
        };
        assert_eq!(config.zone.xdp, Some(expected));
        assert_eq!(parse(GOOD).unwrap().zone.xdp, None);
        let errors = errors_of(&format!(
            "{GOOD}\n[zone.xdp]\ninterface = \" \"\nqueues = [1, 1]\n"
        ));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].contains("zone.xdp.interface: is empty"),
            "{errors:?}"
        );
        assert!(errors[1].contains("queue 1 is listed twice"), "{errors:?}");
        let two = GOOD.replace(
            "listen = [\"127.0.0.1:5353\"]",
            "listen = [\"127.0.0.1:5353\", \"127.0.0.2:5353\"]",
        );
        let errors = errors_of(&format!("{two}\n[zone.xdp]\ninterface = \"eth0\"\n"));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].contains("zone.listen: at most one listen address per address family"),
            "{errors:?}"
        );
    }

    #[test]
    fn rate_limit_defaults_to_the_librarys_values() {
        let config = parse(GOOD).unwrap();
        assert_eq!(config.zone.rate_limit, RateLimitSection::default());
        assert!(config.zone.rate_limit.enabled);
        assert_eq!(config.zone.rate_limit.responses_per_second, 100);
        assert_eq!(config.zone.rate_limit.errors_per_second, 20);
        assert_eq!(config.zone.rate_limit.slip, 2);
        assert_eq!(config.zone.rate_limit.ipv4_prefix, 24);
        assert_eq!(config.zone.rate_limit.ipv6_prefix, 56);
        assert!(config.zone.rate_limit.exempt.is_empty());
    }

    #[test]
    fn rate_limit_is_read_and_checked() {
        let source = format!(
            "{GOOD}\n[zone.rate_limit]\nenabled = false\nslip = 1\nexempt = [\"127.0.0.0/8\", \"::1\"]\n"
        );
        let config = parse(&source).unwrap();
        assert!(!config.zone.rate_limit.enabled);
        assert_eq!(config.zone.rate_limit.slip, 1);
        assert_eq!(config.zone.rate_limit.exempt.len(), 2);
        let errors = errors_of(&format!(
            "{GOOD}\n[zone.rate_limit]\nipv4_prefix = 33\nipv6_prefix = 0\nslip = 11\n"
        ));
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(
            errors[0].contains("zone.rate_limit.ipv4_prefix: 33 is out of range"),
            "{errors:?}"
        );
        assert!(
            errors[1].contains("zone.rate_limit.ipv6_prefix: 0 is out of range"),
            "{errors:?}"
        );
        assert!(
            errors[2].contains("zone.rate_limit.slip: 11 is out of range"),
            "{errors:?}"
        );
        // A limit the table cannot count to would never limit: refused, naming the range.
        let errors = errors_of(&format!(
            "{GOOD}\n[zone.rate_limit]\nresponses_per_second = 70000\nerrors_per_second = 65000\n"
        ));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].contains(
                "zone.rate_limit.responses_per_second: 70000 is out of range (expected 0 to 65000; 0 means no limit)"
            ),
            "{errors:?}"
        );
    }

    #[test]
    fn transfers_take_addresses_and_keyed_entries() {
        let source = with_transfers(
            "[\"192.0.2.1\", { from = \"198.51.100.0/24\", key = \"xfr-key\" }]",
            "[[zone.keys]]\nname = \"xfr-key\"\nsecret = \"c2VjcmV0\"\n",
        );
        let config = parse(&source).unwrap();
        assert_eq!(
            config.zone.allow_transfer,
            vec![
                TransferEntry {
                    from: "192.0.2.1/32".parse().unwrap(),
                    key: None
                },
                TransferEntry {
                    from: "198.51.100.0/24".parse().unwrap(),
                    key: Some("xfr-key".to_owned())
                },
            ]
        );
        assert_eq!(config.zone.keys[0].name, "xfr-key");
        assert!(
            !config.warnings().iter().any(|w| w.contains("zone.keys")),
            "{:?}",
            config.warnings()
        );
        // A key no entry requires signs nothing: a warning, not an error.
        let unused = parse(&with_transfers(
            "[\"192.0.2.1\"]",
            "[[zone.keys]]\nname = \"xfr-key\"\nsecret = \"c2VjcmV0\"\n",
        ))
        .unwrap();
        assert!(
            unused
                .warnings()
                .iter()
                .any(|w| w
                    .contains("[[zone.keys]] \"xfr-key\" is required by no allow_transfer entry")),
            "{:?}",
            unused.warnings()
        );
    }

    #[test]
    fn an_unknown_or_doubtful_key_is_an_error_with_its_place() {
        let errors = errors_of(&with_transfers(
            "[{ from = \"198.51.100.0/24\", key = \"nope\" }]",
            "[[zone.keys]]\nname = \"xfr-key\"\n",
        ));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors
                .iter()
                .any(|e| e.contains("zone.keys[1]") && e.contains("exactly one of secret")),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.contains("zone.allow_transfer[1].key: no key \"nope\"")),
            "{errors:?}"
        );
        let errors = errors_of(&with_transfers("[{ from = \"nowhere\", key = \"k\" }]", ""));
        assert!(
            errors[0].contains("\"nowhere\" is neither an address nor a network"),
            "{errors:?}"
        );
        let errors = errors_of(&with_transfers(
            "[{ from = \"192.0.2.1\", kee = \"k\" }]",
            "",
        ));
        assert!(errors[0].contains("kee"), "{errors:?}");
    }
}
