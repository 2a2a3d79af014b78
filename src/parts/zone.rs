//! `[zone]` into the served zone and the DNS server that answers for it.

use failover_dns::{DnsServer, SecondariesConfig, ServedZone, ServerConfig, TransferAcl, Zone};

use super::DaemonError;
use crate::config::Config;

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
        .with_transfer_acl(TransferAcl::allow(
            config.zone.allow_transfer.iter().copied(),
        ))
        .with_secondaries(SecondariesConfig::new(config.zone.notify.clone()));
    Ok(Some(DnsServer::start(served.clone(), &server_config)?))
}
