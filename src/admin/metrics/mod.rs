//! `/metrics`: the daemon's Prometheus registry, which lives as long as the daemon (its counters
//! and histograms are fed where things happen, through [`SupervisorMetrics`]), and the gauges
//! read at each scrape from the status, the DNS server and the mirror.

use std::time::Duration;

use failover_core::{CheckName, Event, NodeName, Outcome, StatusReport, SupervisorMetrics};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use super::AdminState;

mod scrape;

pub(super) use scrape::rcode_name;

/// Every series' name starts with this (and `_`).
pub const METRIC_PREFIX: &str = "failover";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    event: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProbeLabels {
    node: String,
    check: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProbeResultLabels {
    node: String,
    check: String,
    /// `healthy`, or the failure's class (`unreachable`, `timeout`, `unhealthy`,
    /// `misconfigured`).
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WriterLabels {
    writer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NotifierLabels {
    notifier: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Probes and publications take from a millisecond to tens of seconds: 1 ms doubling to ~16 s.
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// The daemon's registry: created once at start and kept across reloads (each new supervisor
/// reports into it), so that counters only grow while the daemon runs.
pub struct Metrics {
    registry: Registry,
    events: Family<EventLabels, Counter>,
    probe_duration: HistogramFamily<ProbeLabels>,
    probes: Family<ProbeResultLabels, Counter>,
    publications: Family<WriterLabels, Counter>,
    publish_failures: Family<WriterLabels, Counter>,
    publish_duration: HistogramFamily<WriterLabels>,
    notifications: Family<NotifierLabels, Counter>,
    notification_failures: Family<NotifierLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every family registered; event counters start at 0 for every event kind.
    pub fn new() -> Self {
        let events = Family::<EventLabels, Counter>::default();
        for event in failover_core::EVENT_NAMES {
            events
                .get_or_create(&EventLabels {
                    event: (*event).to_owned(),
                })
                .inc_by(0);
        }
        let metrics = Metrics {
            registry: Registry::with_prefix(METRIC_PREFIX),
            events,
            probe_duration: Family::new_with_constructor(duration_histogram),
            probes: Family::default(),
            publications: Family::default(),
            publish_failures: Family::default(),
            publish_duration: Family::new_with_constructor(duration_histogram),
            notifications: Family::default(),
            notification_failures: Family::default(),
        };
        metrics.registered()
    }

    /// Registers every family in the registry (each is a handle on the same counters).
    fn registered(mut self) -> Self {
        let registry = &mut self.registry;
        registry.register(
            "build",
            "the running failoverd's version",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        registry.register(
            "events",
            "events the arbiter raised, by kind (notified or recorded)",
            self.events.clone(),
        );
        registry.register_with_unit(
            "probe_duration",
            "how long each probe took, by node and check (a timed-out probe counts its timeout)",
            Unit::Seconds,
            self.probe_duration.clone(),
        );
        registry.register(
            "probes",
            "probes by node, check and result (healthy, or the failure's class)",
            self.probes.clone(),
        );
        registry.register(
            "publications",
            "answers a zone writer published",
            self.publications.clone(),
        );
        registry.register(
            "publish_failures",
            "attempts of a zone writer to publish that failed (each is retried)",
            self.publish_failures.clone(),
        );
        registry.register_with_unit(
            "publish_duration",
            "how long each attempt of a zone writer to publish took",
            Unit::Seconds,
            self.publish_duration.clone(),
        );
        registry.register(
            "notifications",
            "events a notifier delivered",
            self.notifications.clone(),
        );
        registry.register(
            "notification_failures",
            "attempts of a notifier to deliver a batch of events that failed",
            self.notification_failures.clone(),
        );
        self
    }

    /// This registry's part of `/metrics` (without the `# EOF`).
    fn encode(&self, out: &mut String) -> std::fmt::Result {
        prometheus_client::encoding::text::encode_registry(out, &self.registry)
    }
}

impl SupervisorMetrics for Metrics {
    fn probed(&self, node: &NodeName, check: &CheckName, outcome: &Outcome, took: Duration) {
        let (node, check) = (node.to_string(), check.to_string());
        let result = match outcome {
            Outcome::Healthy { .. } => "healthy".to_owned(),
            Outcome::Failed { class, .. } => class.to_string(),
        };
        self.probe_duration
            .get_or_create(&ProbeLabels {
                node: node.clone(),
                check: check.clone(),
            })
            .observe(took.as_secs_f64());
        self.probes
            .get_or_create(&ProbeResultLabels {
                node,
                check,
                result,
            })
            .inc();
    }

    fn event(&self, event: &Event) {
        self.events
            .get_or_create(&EventLabels {
                event: event.name().to_owned(),
            })
            .inc();
    }

    fn published(&self, writer: &str, took: Duration, result: Result<(), &str>) {
        let labels = WriterLabels {
            writer: writer.to_owned(),
        };
        self.publish_duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        // Both series exist from the first attempt on: a rate over them never starts blank.
        let (counted, other) = match result {
            Ok(()) => (&self.publications, &self.publish_failures),
            Err(_) => (&self.publish_failures, &self.publications),
        };
        counted.get_or_create(&labels).inc();
        other.get_or_create(&labels).inc_by(0);
    }

    fn notified(&self, notifier: &str, events: usize, result: Result<(), &str>) {
        let labels = NotifierLabels {
            notifier: notifier.to_owned(),
        };
        match result {
            Ok(()) => {
                self.notifications
                    .get_or_create(&labels)
                    .inc_by(events as u64);
                self.notification_failures.get_or_create(&labels).inc_by(0);
            }
            Err(_) => {
                self.notification_failures.get_or_create(&labels).inc();
                self.notifications.get_or_create(&labels).inc_by(0);
            }
        }
    }
}

/// The OpenMetrics text at `/metrics`: the daemon's registry, then the gauges and the DNS
/// server's and the mirror's own counters read now.
pub fn render_metrics(
    state: &AdminState,
    report: &StatusReport,
) -> Result<String, std::fmt::Error> {
    let mut text = String::new();
    state.metrics.encode(&mut text)?;
    prometheus_client::encoding::text::encode_registry(
        &mut text,
        &scrape::registry(state, report),
    )?;
    prometheus_client::encoding::text::encode_eof(&mut text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use failover_core::FailureClass;

    fn text(metrics: &Metrics) -> String {
        let mut out = String::new();
        metrics.encode(&mut out).expect("a String takes any text");
        out
    }

    #[test]
    fn a_probe_counts_its_result_class_and_its_duration() {
        let metrics = Metrics::new();
        let (node, check) = (NodeName::new("master"), CheckName::new("http"));
        let timeout = Outcome::failed(FailureClass::Timeout, "no verdict within 1s");
        metrics.probed(&node, &check, &timeout, Duration::from_millis(1000));
        metrics.probed(
            &node,
            &check,
            &Outcome::healthy("HTTP 200"),
            Duration::from_millis(3),
        );
        let text = text(&metrics);
        for line in [
            "failover_probes_total{node=\"master\",check=\"http\",result=\"timeout\"} 1",
            "failover_probes_total{node=\"master\",check=\"http\",result=\"healthy\"} 1",
            "failover_probe_duration_seconds_count{node=\"master\",check=\"http\"} 2",
            "failover_probe_duration_seconds_bucket{le=\"0.004\",node=\"master\",check=\"http\"} 1",
            "failover_probe_duration_seconds_bucket{le=\"+Inf\",node=\"master\",check=\"http\"} 2",
            "# UNIT failover_probe_duration_seconds seconds",
            "failover_events_total{event=\"failover\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line} in:\n{text}");
        }
    }

    #[test]
    fn a_failed_attempt_counts_as_a_failure_and_a_delivery_counts_its_events() {
        let metrics = Metrics::new();
        metrics.published(
            "zone-file db.test.ru",
            Duration::from_millis(5),
            Err("disk full"),
        );
        metrics.published("zone-file db.test.ru", Duration::from_millis(5), Ok(()));
        metrics.notified("email", 3, Err("connection refused"));
        metrics.notified("email", 3, Ok(()));
        let text = text(&metrics);
        for line in [
            "failover_publications_total{writer=\"zone-file db.test.ru\"} 1",
            "failover_publish_failures_total{writer=\"zone-file db.test.ru\"} 1",
            "failover_publish_duration_seconds_count{writer=\"zone-file db.test.ru\"} 2",
            "failover_notifications_total{notifier=\"email\"} 3",
            "failover_notification_failures_total{notifier=\"email\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line} in:\n{text}");
        }
    }
}
