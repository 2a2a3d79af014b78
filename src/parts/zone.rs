//! `[zone]` into the served zone and the DNS server that answers for it.

use failover_dns::{
    DnsServer, RateLimitConfig, SecondariesConfig, ServedZone, ServerConfig, TransferAcl, TsigKey,
    Zone,
};

use super::DaemonError;
use crate::config::{Config, DEFAULT_TSIG_ALGORITHM};

/// Loads the zone file named by the config and checks the managed names against it.
pub fn load_zone(config: &Config) -> Result<Zone, DaemonError> {
    let zone = Zone::from_file_for(&config.zone.file, &config.zone.name)?;
    let found = zone.origin();
    if !found
        .trim_end_matches('.')
        .eq_ignore_ascii_case(config.zone.name.trim_end_matches('.'))
    {
        return Err(DaemonError::WrongZone {
            file: config.zone.file.clone(),
            found,
            expected: config.zone.name.clone(),
        });
    }
    Ok(zone)
}

/// Starts the built-in DNS server for `served` on `[zone] listen` (none when it is empty).
pub fn start_server(
    config: &Config,
    served: &ServedZone,
) -> Result<Option<DnsServer>, DaemonError> {
    if config.zone.listen.is_empty() {
        return Ok(None);
    }
    let server_config = ServerConfig::new(config.zone.listen.clone())
        .with_udp_workers(config.zone.workers)
        .with_transfer_acl(transfer_acl(config)?)
        .with_secondaries(SecondariesConfig::new(config.zone.notify.clone()))
        .with_rate_limit(rate_limit(config));
    #[cfg(all(feature = "xdp", target_os = "linux"))]
    let server_config = match &config.zone.xdp {
        Some(xdp) => {
            let mut listener = failover_dns::XdpConfig::new(&xdp.interface);
            if let Some(queues) = &xdp.queues {
                listener = listener.with_queues(queues.clone());
            }
            server_config.with_xdp(listener)
        }
        None => server_config,
    };
    Ok(Some(DnsServer::start(served.clone(), &server_config)?))
}

/// `[zone] allow_transfer` with the `[[zone.keys]]` its entries require.
pub fn transfer_acl(config: &Config) -> Result<TransferAcl, DaemonError> {
    let zone = &config.zone;
    let mut acl = TransferAcl::allow(
        zone.allow_transfer
            .iter()
            .filter(|entry| entry.key.is_none())
            .map(|entry| entry.from),
    );
    for (index, key) in zone.keys.iter().enumerate() {
        let networks: Vec<_> = zone
            .allow_transfer
            .iter()
            .filter(|entry| entry.key.as_ref() == Some(&key.name))
            .map(|entry| entry.from)
            .collect();
        if networks.is_empty() {
            continue;
        }
        let tsig = match (&key.secret, &key.key_file) {
            (Some(secret), _) => TsigKey::new(
                &key.name,
                key.algorithm.as_deref().unwrap_or(DEFAULT_TSIG_ALGORITHM),
                secret,
            )
            .map_err(|error| error.to_string()),
            (None, Some(file)) => {
                TsigKey::from_bind_key_file(file, Some(&key.name)).map_err(|e| e.to_string())
            }
            (None, None) => Err("no key: set secret or key_file".to_owned()),
        }
        .map_err(|message| DaemonError::ZoneKey {
            path: config.path.clone(),
            index: index + 1,
            message,
        })?;
        acl = acl.require_key(networks, tsig);
    }
    Ok(acl)
}

/// `[zone.rate_limit]` as the server takes it (`None` when off).
pub fn rate_limit(config: &Config) -> Option<RateLimitConfig> {
    let section = &config.zone.rate_limit;
    section.enabled.then(|| {
        RateLimitConfig::default()
            .with_rates(section.responses_per_second, section.errors_per_second)
            .with_slip(section.slip)
            .with_prefixes(section.ipv4_prefix, section.ipv6_prefix)
            .with_exempt(section.exempt.clone())
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;

    const ZONE: &str = r#"
[zone]
name = "test.ru"
file = "db.test.ru"
listen = ["127.0.0.1:5353"]
state_dir = "state"
records = [{ name = "@", ttl = 10 }]
allow_transfer = ["192.0.2.1", { from = "198.51.100.0/24", key = "xfr-key" }]
keys = [{ name = "xfr-key", algorithm = "hmac-sha512", secret = "c2VjcmV0c2VjcmV0" }]
[zone.rate_limit]
responses_per_second = 50
slip = 1
ipv6_prefix = 64
exempt = ["127.0.0.0/8"]
[[node]]
name = "a"
address = "192.0.2.1"
[[check]]
name = "tcp"
kind = "tcp"
port = 80
critical = true
[policy]
kind = "active-passive"
"#;

    fn config(source: &str) -> Config {
        Config::parse(
            source,
            std::path::Path::new("/etc/failoverd/failoverd.toml"),
        )
        .unwrap()
    }

    #[test]
    fn the_transfer_acl_holds_plain_and_keyed_entries() {
        let acl = transfer_acl(&config(ZONE)).unwrap();
        assert_eq!(acl.networks(), &["192.0.2.1/32".parse().unwrap()]);
        let keyed = acl.keyed_networks();
        assert_eq!(keyed.len(), 1);
        assert_eq!(keyed[0].0, "198.51.100.0/24".parse().unwrap());
        assert_eq!(keyed[0].1.name(), "xfr-key");
        assert_eq!(keyed[0].1.algorithm().name(), "hmac-sha512");
    }

    #[test]
    fn a_bad_secret_names_its_key() {
        let source = ZONE.replace("c2VjcmV0c2VjcmV0", "not base64!");
        let error = transfer_acl(&config(&source)).unwrap_err().to_string();
        assert!(error.contains("zone.keys[1]"), "{error}");
    }

    #[test]
    fn the_rate_limit_is_passed_on_or_left_off() {
        let limit = rate_limit(&config(ZONE)).unwrap();
        assert_eq!(limit.responses_per_second, 50);
        assert_eq!(limit.errors_per_second, 20);
        assert_eq!(limit.slip, 1);
        assert_eq!((limit.ipv4_prefix, limit.ipv6_prefix), (24, 64));
        assert_eq!(limit.exempt, vec!["127.0.0.0/8".parse().unwrap()]);
        let off = ZONE.replace("slip = 1", "slip = 1\nenabled = false");
        assert_eq!(rate_limit(&config(&off)), None);
        let start = ZONE.find("[zone.rate_limit]").unwrap();
        let end = ZONE.find("[[node]]").unwrap();
        let default = format!("{}{}", &ZONE[..start], &ZONE[end..]);
        assert_eq!(
            rate_limit(&config(&default)),
            Some(RateLimitConfig::default())
        );
    }
}
