//! `/metrics`: the status as Prometheus text.

use failover_core::{Health, StatusReport};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::AdminState;

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
struct EventLabels {
    event: String,
}

/// The Prometheus text at `/metrics`.
pub fn render_metrics(
    state: &AdminState,
    report: &StatusReport,
) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::with_prefix("failover");
    register_node_metrics(&mut registry, report);
    if let Some(stats) = &state.dns_stats {
        register_dns_metrics(&mut registry, &stats.read());
    }
    let recent_events = Family::<EventLabels, Gauge>::default();
    for event in &report.recent_events {
        recent_events
            .get_or_create(&EventLabels {
                event: event.name().to_owned(),
            })
            .inc();
    }
    registry.register(
        "recent_events",
        "events among the last 100, by kind",
        recent_events,
    );
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
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)?;
    Ok(text)
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
pub(super) fn rcode_name(rcode: usize) -> String {
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
