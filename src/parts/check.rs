//! `[[check]]` into probes: one [`HealthCheck`] per check, with its schedule.

use std::sync::Arc;

use failover_core::probe::{HttpCheck, HttpOptions, SshCheck, TcpCheck};
use failover_core::{CheckName, FileMirror, HealthCheck, ProbeSchedule};
use failover_dns::{DnsCheck, DnsCheckOptions};

use super::DaemonError;
use crate::config::{CheckConfig, CheckKind, Config, DnsSettings, HttpSettings, TransportConfig};

/// A check built from the config: its name, the probe, and its schedule.
pub type BuiltCheck = (CheckName, Arc<dyn HealthCheck>, ProbeSchedule);

/// The checks the config asks for, each with its schedule (`mirror` checks see no mirror:
/// for `failoverd check`).
pub fn checks(config: &Config) -> Result<Vec<BuiltCheck>, DaemonError> {
    checks_with(config, None)
}

/// The checks the config asks for, `mirror` checks reading `mirror`.
pub fn checks_with(
    config: &Config,
    mirror: Option<Arc<dyn FileMirror>>,
) -> Result<Vec<BuiltCheck>, DaemonError> {
    config
        .checks
        .iter()
        .map(|c| {
            let check = build(config, c, mirror.clone()).map_err(|message| DaemonError::Check {
                path: config.path.clone(),
                check: c.common.name.clone(),
                message,
            })?;
            let (interval, timeout, _, _) = config.check_timing(c);
            let schedule = ProbeSchedule {
                interval,
                timeout,
                jitter: config.probe.jitter,
            };
            Ok((CheckName::new(&c.common.name), check, schedule))
        })
        .collect()
}

/// The probe of one check.
fn build(
    config: &Config,
    check: &CheckConfig,
    mirror: Option<Arc<dyn FileMirror>>,
) -> Result<Arc<dyn HealthCheck>, String> {
    let port = Config::port(check);
    Ok(match &check.kind {
        CheckKind::Plugin(settings) => {
            let nodes = super::notifier::node_names(config);
            let context = crate::plugins::PluginContext {
                config,
                name: &check.common.name,
                nodes: &nodes,
            };
            config
                .plugins
                .build_check(&settings.kind, &settings.table, &context)?
        }
        CheckKind::Tcp(_) => Arc::new(TcpCheck::new(port)),
        CheckKind::Ssh(_) => Arc::new(SshCheck::new(port)),
        CheckKind::Dns(dns) => dns_check(config, dns, port)?,
        CheckKind::Http(http) => http_check(http, port)?,
        CheckKind::Mirror(settings) => super::mirror::check(config, settings, mirror)?,
        CheckKind::Mysql(_) | CheckKind::MysqlReplication(_) => {
            super::mysql::check(config, check, port)?
        }
    })
}

fn dns_check(
    config: &Config,
    dns: &DnsSettings,
    port: u16,
) -> Result<Arc<dyn HealthCheck>, String> {
    // The record type and rcode default in the library (SOA, NOERROR).
    let query = dns
        .query
        .clone()
        .unwrap_or_else(|| config.zone.name.clone());
    let mut options =
        DnsCheckOptions::new(query)
            .with_port(port)
            .with_transport(match dns.transport {
                Some(TransportConfig::Tcp) => failover_dns::Transport::Tcp,
                _ => failover_dns::Transport::Udp,
            });
    if let Some(record_type) = &dns.record_type {
        options = options.with_record_type(record_type.clone());
    }
    if let Some(rcode) = &dns.expect_rcode {
        options = options.with_expect_rcode(rcode.clone());
    }
    if let Some(expected) = &dns.expect_answer {
        options = options.with_expect_answer(expected.clone());
    }
    Ok(Arc::new(DnsCheck::new(options).map_err(|e| e.to_string())?))
}

fn http_check(http: &HttpSettings, port: u16) -> Result<Arc<dyn HealthCheck>, String> {
    let defaults = HttpOptions::new(port);
    let options = HttpOptions {
        port,
        tls: http.tls.unwrap_or(defaults.tls),
        path: http.path.clone().unwrap_or(defaults.path),
        host: http.host.clone().or(defaults.host),
        expect_status: http.expect_status.clone().unwrap_or(defaults.expect_status),
        body_contains: http.body_contains.clone().or(defaults.body_contains),
        danger_accept_invalid_certs: http
            .danger_accept_invalid_certs
            .unwrap_or(defaults.danger_accept_invalid_certs),
    };
    Ok(Arc::new(
        HttpCheck::new(options).map_err(|e| e.to_string())?,
    ))
}
