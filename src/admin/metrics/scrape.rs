//! The part of `/metrics` read at each scrape: gauges from the status, and the counters the DNS
//! server and the mirror keep themselves.

use std::sync::atomic::AtomicU64;
use std::time::SystemTime;

use failover_core::{Health, StatusReport};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use crate::admin::AdminState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabels {
    node: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckLabels {
    node: String,
    check: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransportLabels {
    transport: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RcodeLabels {
    transport: String,
    rcode: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ObserverLabels {
    observer: String,
}

/// What is read at each scrape: the status's gauges, the observers, the DNS server's and the
/// mirror's own counters (they count where they work; read here, not rebuilt).
pub(super) fn registry(state: &AdminState, report: &StatusReport) -> Registry {
    let mut registry = Registry::with_prefix(super::METRIC_PREFIX);
    register_node_metrics(&mut registry, report);
    register_observer_metrics(&mut registry, report);
    if let Some(stats) = &state.dns_stats {
        register_dns_metrics(&mut registry, &stats.read());
    }
    if let Some(mirror) = &state.mirror {
        register_mirror_metrics(&mut registry, &mirror.status());
    }
    let serial = Gauge::<i64>::default();
    serial.set(i64::from((state.serial)()));
    registry.register("zone_serial", "the served zone's SOA serial", serial);
    let all_down = Gauge::<i64>::default();
    all_down.set(i64::from(report.cluster.all_down));
    registry.register(
        "all_down",
        "1 when every node is down and the all_down rule applies",
        all_down,
    );
    let writers_failing = Gauge::<i64>::default();
    writers_failing.set(
        report
            .writers
            .iter()
            .filter(|w| w.failing.is_some())
            .count() as i64,
    );
    registry.register(
        "writers_failing",
        "zone writers whose last publish failed",
        writers_failing,
    );
    registry
}

/// Each observer of the quorum: in the vote or not, and when it was last heard.
fn register_observer_metrics(registry: &mut Registry, report: &StatusReport) {
    if report.observers.is_empty() {
        return;
    }
    let live = Family::<ObserverLabels, Gauge>::default();
    let heard = Family::<ObserverLabels, Gauge<f64, AtomicU64>>::default();
    let now = SystemTime::now();
    for observer in &report.observers {
        let labels = ObserverLabels {
            observer: observer.observer.to_string(),
        };
        live.get_or_create(&labels).set(i64::from(observer.live));
        if let Some(at) = observer.last_heard.and_then(|ago| now.checked_sub(ago)) {
            heard.get_or_create(&labels).set(unix_seconds(at));
        }
    }
    registry.register(
        "observer_live",
        "1 when the observer counts in the quorum's vote",
        live,
    );
    registry.register_with_unit(
        "observer_last_heard_timestamp",
        "when the observer was last heard (Unix time)",
        Unit::Seconds,
        heard,
    );
}

/// The mirror's counters since it started, and how far behind it is.
fn register_mirror_metrics(registry: &mut Registry, status: &failover_core::MirrorStatus) {
    let counters: [(&str, &str, Option<Unit>, u64); 5] = [
        (
            "mirror_runs",
            "reconciliations this node ran (the driving node of a live mirror)",
            None,
            status.runs,
        ),
        (
            "mirror_conflicts",
            "conflicts resolved by keeping both versions",
            None,
            status.conflicts,
        ),
        (
            "mirror_transferred",
            "bytes that crossed between the replicas in those runs, after deltas",
            Some(Unit::Bytes),
            status.bytes_transferred,
        ),
        (
            "mirror_link_sent",
            "bytes this node sent on the mirror's peer link, after compression",
            Some(Unit::Bytes),
            status.link_bytes_sent,
        ),
        (
            "mirror_link_uncompressed",
            "bytes of the messages this node sent on the mirror's peer link, before compression",
            Some(Unit::Bytes),
            status.link_bytes_raw,
        ),
    ];
    for (name, help, unit, value) in counters {
        let counter = Counter::<u64>::default();
        counter.inc_by(value);
        match unit {
            Some(unit) => registry.register_with_unit(name, help, unit, counter),
            None => registry.register(name, help, counter),
        }
    }
    let gauges: [(&str, &str, Option<Unit>, i64); 3] = [
        (
            "mirror_peer_connected",
            "1 when the peer is reachable and authenticated",
            None,
            i64::from(status.peer_connected),
        ),
        (
            "mirror_backlog_files",
            "paths known to differ and not yet transferred",
            None,
            i64::try_from(status.backlog_files).unwrap_or(i64::MAX),
        ),
        (
            "mirror_backlog",
            "bytes of those paths",
            Some(Unit::Bytes),
            i64::try_from(status.backlog_bytes).unwrap_or(i64::MAX),
        ),
    ];
    for (name, help, unit, value) in gauges {
        let gauge = Gauge::<i64>::default();
        gauge.set(value);
        match unit {
            Some(unit) => registry.register_with_unit(name, help, unit, gauge),
            None => registry.register(name, help, gauge),
        }
    }
    if let Some(last_sync) = status.last_sync {
        let at = Gauge::<f64, AtomicU64>::default();
        at.set(unix_seconds(last_sync));
        registry.register_with_unit(
            "mirror_last_sync_timestamp",
            "when the replicas were last known to be identical (Unix time)",
            Unit::Seconds,
            at,
        );
        // Nothing waiting: in step now. Else behind since the last moment it was in step.
        let lag = Gauge::<f64, AtomicU64>::default();
        if status.backlog_files > 0 {
            lag.set(
                SystemTime::now()
                    .duration_since(last_sync)
                    .unwrap_or_default()
                    .as_secs_f64(),
            );
        }
        registry.register_with_unit(
            "mirror_lag",
            "0 when nothing waits to be mirrored, else the time since the replicas were last in step",
            Unit::Seconds,
            lag,
        );
    }
}

/// `at` as Unix time in seconds.
fn unix_seconds(at: SystemTime) -> f64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// The per-node and per-check gauges.
fn register_node_metrics(registry: &mut Registry, report: &StatusReport) {
    let node_up = Family::<NodeLabels, Gauge>::default();
    let node_drained = Family::<NodeLabels, Gauge>::default();
    let node_published = Family::<NodeLabels, Gauge>::default();
    let check_up = Family::<CheckLabels, Gauge>::default();
    let check_failures = Family::<CheckLabels, Gauge>::default();
    for node in &report.cluster.nodes {
        let labels = NodeLabels {
            node: node.node.to_string(),
        };
        node_up
            .get_or_create(&labels)
            .set(i64::from(node.health == Health::Up));
        node_drained
            .get_or_create(&labels)
            .set(i64::from(node.drained));
        node_published
            .get_or_create(&labels)
            .set(i64::from(report.cluster.answer.contains(&node.node)));
        for check in &node.checks {
            let labels = CheckLabels {
                node: node.node.to_string(),
                check: check.check.to_string(),
            };
            check_up.get_or_create(&labels).set(i64::from(
                check.forced.unwrap_or(check.health) == Health::Up,
            ));
            check_failures
                .get_or_create(&labels)
                .set(i64::from(check.consecutive_failures));
        }
    }
    registry.register(
        "node_up",
        "1 when every critical check of the node is up",
        node_up,
    );
    registry.register(
        "node_drained",
        "1 when an operator drained the node",
        node_drained,
    );
    registry.register(
        "node_published",
        "1 when the node is in the published answer",
        node_published,
    );
    registry.register(
        "check_up",
        "1 when the check is up (forced verdicts included)",
        check_up,
    );
    registry.register(
        "check_consecutive_failures",
        "failed probes in a row",
        check_failures,
    );
}

/// The built-in DNS server's counters, by transport (and rcode for responses).
fn register_dns_metrics(registry: &mut Registry, stats: &failover_dns::ServerStats) {
    type Counted = fn(&failover_dns::TransportStats) -> u64;
    let simple: [(&str, &str, Counted); 5] = [
        ("dns_queries", "DNS queries received", |t| t.queries),
        (
            "dns_truncated",
            "DNS responses sent truncated (too large, or slipped)",
            |t| t.truncated,
        ),
        (
            "dns_malformed_dropped",
            "malformed DNS queries dropped unanswered",
            |t| t.malformed_dropped,
        ),
        (
            "dns_rate_limited",
            "DNS responses withheld by response rate limiting",
            |t| t.rate_limited,
        ),
        (
            "dns_slipped",
            "rate-limited DNS responses sent truncated instead",
            |t| t.slipped,
        ),
    ];
    let transports = [("udp", &stats.udp), ("tcp", &stats.tcp)];
    for (name, help, counted) in simple {
        let family = Family::<TransportLabels, Counter>::default();
        for (transport, counts) in transports {
            family
                .get_or_create(&TransportLabels {
                    transport: transport.to_owned(),
                })
                .inc_by(counted(counts));
        }
        registry.register(name, help, family);
    }
    let responses = Family::<RcodeLabels, Counter>::default();
    for (transport, counts) in transports {
        for (rcode, &count) in counts.responses_by_rcode.iter().enumerate() {
            if count > 0 || rcode == 0 {
                responses
                    .get_or_create(&RcodeLabels {
                        transport: transport.to_owned(),
                        rcode: rcode_name(rcode),
                    })
                    .inc_by(count);
            }
        }
    }
    registry.register("dns_responses", "DNS responses sent, by rcode", responses);
}

/// The mnemonic of a (four-bit) rcode, or its number.
pub(crate) fn rcode_name(rcode: usize) -> String {
    match rcode {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        other => return other.to_string(),
    }
    .to_owned()
}
