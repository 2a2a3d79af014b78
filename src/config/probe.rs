//! `[probe]` (the timing every check starts from) and `[[node]]` (the servers probed).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use failover_core::peer::Fingerprint;
use serde::Deserialize;

use super::defaults;
use super::error::{Seg, Validator};
use super::Config;

/// `[probe]`: defaults for every check.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// Time between two probes of one node (`"2s"`).
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Hard limit of one probe (`"1s"`).
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Random spread added to each interval.
    #[serde(default = "default_jitter", with = "humantime_serde")]
    pub jitter: Duration,
    /// Failures in a row that take a check down.
    #[serde(default = "default_fall")]
    pub fall: u32,
    /// Successes in a row that bring it up again.
    #[serde(default = "default_rise")]
    pub rise: u32,
}

fn default_interval() -> Duration {
    defaults::DEFAULT_PROBE_INTERVAL
}
fn default_timeout() -> Duration {
    defaults::DEFAULT_PROBE_TIMEOUT
}
fn default_jitter() -> Duration {
    defaults::DEFAULT_PROBE_JITTER
}
fn default_fall() -> u32 {
    defaults::DEFAULT_FALL
}
fn default_rise() -> u32 {
    defaults::DEFAULT_RISE
}

impl Default for ProbeConfig {
    fn default() -> Self {
        Self {
            interval: default_interval(),
            timeout: default_timeout(),
            jitter: default_jitter(),
            fall: default_fall(),
            rise: default_rise(),
        }
    }
}

/// `[[node]]`: one server.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Its name, used in `order`, events and status.
    pub name: String,
    /// The address probed, and published unless `publish` is set.
    pub address: IpAddr,
    /// Addresses to publish instead of `address` (e.g. an IPv4 and an IPv6).
    #[serde(default)]
    pub publish: Vec<IpAddr>,
    /// Where the other observers and the mirror's peer reach this node's peer link
    /// (`"192.0.2.10:8054"`); needed with `[cluster]` or `[mirror]`.
    pub peer_address: Option<SocketAddr>,
    /// What this node binds for the peer link when `peer_address` is not an address of its own
    /// (behind NAT: `"0.0.0.0:8054"`); default `peer_address`.
    pub peer_listen: Option<SocketAddr>,
    /// Its key's fingerprint, as `failoverd keygen` printed it on that server (`"sha256:..."`).
    pub fingerprint: Option<Fingerprint>,
}

/// Checks `[[node]]`: at least one, each named once.
pub(super) fn validate_nodes(config: &Config, v: &mut Validator<'_>) {
    use Seg::{Index, Key};
    if config.nodes.is_empty() {
        v.fail(
            &[Key("node")],
            "no nodes (expected at least one [[node]] with name and address)",
        );
    }
    for (i, node) in config.nodes.iter().enumerate() {
        let at = [Key("node"), Index(i), Key("name")];
        if node.name.is_empty() {
            v.fail(&at, "empty name");
        }
        if config.nodes[..i].iter().any(|n| n.name == node.name) {
            v.fail(&at, format!("node {:?} is defined twice", node.name));
        }
    }
}

/// Checks `[probe]`: its timing, and a jitter within the interval.
pub(super) fn validate_probe(config: &Config, v: &mut Validator<'_>) {
    use Seg::Key;
    let probe = &config.probe;
    validate_timing(
        v,
        &[Key("probe")],
        probe.interval,
        probe.timeout,
        probe.fall,
        probe.rise,
    );
    if probe.jitter > probe.interval {
        v.fail(
            &[Key("probe"), Key("jitter")],
            format!(
                "{} is more than the interval ({})",
                humantime::format_duration(probe.jitter),
                humantime::format_duration(probe.interval)
            ),
        );
    }
}

/// Checks one set of probe timings (of `[probe]` or of a check), found at `at`.
pub(super) fn validate_timing(
    v: &mut Validator<'_>,
    at: &[Seg<'_>],
    interval: Duration,
    timeout: Duration,
    fall: u32,
    rise: u32,
) {
    let with = |key| {
        let mut path = at.to_vec();
        path.push(Seg::Key(key));
        path
    };
    if interval < Duration::from_millis(100) {
        v.fail(
            &with("interval"),
            format!(
                "{} is too short (expected at least 100ms)",
                humantime::format_duration(interval)
            ),
        );
    }
    if interval > Duration::from_secs(86_400) {
        v.fail(
            &with("interval"),
            format!(
                "{} is too long (expected at most 1 day)",
                humantime::format_duration(interval)
            ),
        );
    }
    for (key, count) in [("fall", fall), ("rise", rise)] {
        if count > 1000 {
            v.fail(
                &with(key),
                format!("{count} probes in a row is too many (expected e.g. 3)"),
            );
        }
    }
    if timeout.is_zero() || timeout > interval {
        v.fail(
            &with("timeout"),
            format!(
                "{} must be more than 0 and at most the interval ({})",
                humantime::format_duration(timeout),
                humantime::format_duration(interval)
            ),
        );
    }
    if fall == 0 {
        v.fail(&with("fall"), "0 (expected at least 1 failure in a row)");
    }
    if rise == 0 {
        v.fail(&with("rise"), "0 (expected at least 1 success in a row)");
    }
}
