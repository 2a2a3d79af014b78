//! The admin listener while a failover happens: `/status` and `/metrics` field by field, the
//! page at `/` in a real headless Chromium, and overrides (authenticated, persisted across a
//! restart of the daemon).
#![allow(clippy::unwrap_used)] // tests

mod common;

use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::time::{Duration, Instant};

use common::openmetrics::Scrape;
use common::{http_get, two_nodes_with_admin, wait_for_answer, web_server};
use failover::config::Config;
use failover::daemon::Daemon;
use failover_testkit::free_port;

const TOKEN: &str = "0123456789abcdef0123456789abcdef";

fn config(dir: &std::path::Path, dns: SocketAddr, admin: SocketAddr, web_port: u16) -> Config {
    std::fs::write(dir.join("admin.token"), format!("{TOKEN}\n")).unwrap();
    two_nodes_with_admin(dir, dns, admin, web_port, "token_file = \"admin.token\"")
}

async fn post(url: &str, token: Option<&str>) -> (u16, String) {
    failover::core::install_crypto_provider();
    let mut request = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn status(admin: SocketAddr) -> serde_json::Value {
    let (code, text) = http_get(&format!("http://{admin}/status")).await;
    assert_eq!(code, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

fn metric(text: &str, line_start: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(line_start))
        .unwrap_or_else(|| panic!("no metric {line_start} in:\n{text}"))
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

async fn wait_answer(dns: SocketAddr, want: &str, limit: Duration) {
    let want: IpAddr = want.parse().unwrap();
    tokio::task::spawn_blocking(move || wait_for_answer(dns, want, limit))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_metrics_page_and_overrides_during_a_failover() {
    let dir = tempfile::tempdir().unwrap();
    let web_port = free_port("127.0.0.2");
    let dns: SocketAddr = format!("127.0.0.1:{}", free_port("127.0.0.1"))
        .parse()
        .unwrap();
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port("127.0.0.1"))
        .parse()
        .unwrap();
    let mut master = web_server("127.0.0.2", web_port);
    let _slave = web_server("127.0.0.3", web_port);
    let config = config(dir.path(), dns, admin, web_port);
    let daemon = Daemon::start(&config).await.unwrap();
    wait_answer(dns, "127.0.0.2", Duration::from_secs(10)).await;

    let s = status(admin).await;
    assert_eq!(s["zone"]["name"], "test.ru");
    assert_eq!(s["cluster"]["answer"], serde_json::json!(["master"]));
    assert_eq!(s["cluster"]["nodes"][0]["node"], "master");
    assert_eq!(s["cluster"]["nodes"][0]["health"], "up");
    assert_eq!(s["cluster"]["nodes"][0]["checks"][0]["check"], "http");
    assert_eq!(
        s["cluster"]["nodes"][0]["checks"][0]["last_outcome"]["result"],
        "healthy"
    );
    assert_eq!(
        s["publication"]["answers"][0]["addresses"],
        serde_json::json!(["127.0.0.2"])
    );
    let serial_before = s["zone"]["serial"].as_u64().unwrap();
    let (_, metrics) = http_get(&format!("http://{admin}/metrics")).await;
    assert_eq!(metric(&metrics, "failover_node_up{node=\"master\"}"), 1.0);
    assert_eq!(
        metric(&metrics, "failover_node_published{node=\"master\"}"),
        1.0
    );
    assert_eq!(
        metric(&metrics, "failover_node_published{node=\"slave\"}"),
        0.0
    );
    // The DNS server's counters, by transport; the query counter grows with queries.
    let queries = |metrics: &str| {
        metric(metrics, "failover_dns_queries_total{transport=\"udp\"}")
            + metric(metrics, "failover_dns_queries_total{transport=\"tcp\"}")
    };
    let queries_before = queries(&metrics);
    assert!(queries_before >= 1.0, "{metrics}");
    assert!(
        metric(
            &metrics,
            "failover_dns_responses_total{transport=\"udp\",rcode=\"NOERROR\"}"
        ) >= 1.0
    );
    for name in [
        "failover_dns_truncated_total",
        "failover_dns_malformed_dropped_total",
        "failover_dns_rate_limited_total",
        "failover_dns_slipped_total",
    ] {
        for transport in ["udp", "tcp"] {
            assert_eq!(
                metric(&metrics, &format!("{name}{{transport=\"{transport}\"}}")),
                0.0
            );
        }
    }
    // The same counters in /status and /status.txt.
    let s = status(admin).await;
    assert!(s["dns"]["udp"]["queries"].as_u64().unwrap() >= 1, "{s}");
    assert!(
        s["dns"]["udp"]["responses_by_rcode"]["NOERROR"]
            .as_u64()
            .unwrap()
            >= 1,
        "{s}"
    );
    assert_eq!(s["dns"]["tcp"]["rate_limited"], 0, "{s}");
    let (_, text) = http_get(&format!("http://{admin}/status.txt")).await;
    assert!(text.contains("dns (since the server started):"), "{text}");
    assert!(
        text.contains("  udp: ") && text.contains("rate-limited"),
        "{text}"
    );
    wait_answer(dns, "127.0.0.2", Duration::from_secs(10)).await;
    wait_answer(dns, "127.0.0.2", Duration::from_secs(10)).await;
    let (_, metrics) = http_get(&format!("http://{admin}/metrics")).await;
    assert!(queries(&metrics) >= queries_before + 2.0, "{metrics}");
    let before = Scrape::parse(&metrics);
    before.check_naming("failover");
    before.check_histograms();
    assert_eq!(
        before.value("failover_events_total", &[("event", "failover")]),
        Some(0.0),
        "every event kind is there from the start:\n{metrics}"
    );
    assert_eq!(
        before.value(
            "failover_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0),
        "{metrics}"
    );

    // The failover, seen through the admin listener.
    master.stop();
    wait_answer(dns, "127.0.0.3", Duration::from_secs(10)).await;
    let s = status(admin).await;
    let master_status = &s["cluster"]["nodes"][0];
    assert_eq!(master_status["health"], "down");
    let check = &master_status["checks"][0];
    assert_eq!(check["health"], "down");
    assert!(check["consecutive_failures"].as_u64().unwrap() >= 3);
    assert_eq!(check["last_outcome"]["result"], "failed");
    assert_eq!(check["last_outcome"]["class"], "unreachable");
    assert!(check["last_outcome"]["error"]
        .as_str()
        .unwrap()
        .contains("refused"));
    assert_eq!(s["cluster"]["answer"], serde_json::json!(["slave"]));
    assert!(s["zone"]["serial"].as_u64().unwrap() > serial_before);
    let events: Vec<&str> = s["recent_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert!(
        events.ends_with(&["check-down", "node-down", "failover"]),
        "{events:?}"
    );
    let (_, metrics) = http_get(&format!("http://{admin}/metrics")).await;
    assert_eq!(metric(&metrics, "failover_node_up{node=\"master\"}"), 0.0);
    assert_eq!(
        metric(&metrics, "failover_node_published{node=\"slave\"}"),
        1.0
    );
    assert!(
        metric(
            &metrics,
            "failover_check_consecutive_failures{node=\"master\",check=\"http\"}"
        ) >= 3.0
    );
    // Scraped again after the failover: counters and histograms only grew, and they counted it.
    let after = Scrape::parse(&metrics);
    after.check_naming("failover");
    after.check_histograms();
    let grown = after.monotonic();
    for (series, was) in before.monotonic() {
        let now = grown
            .get(&series)
            .unwrap_or_else(|| panic!("{series} disappeared:\n{metrics}"));
        assert!(*now >= was, "{series} went down from {was} to {now}");
    }
    let count = |scrape: &Scrape, name: &str, labels: &[(&str, &str)]| {
        scrape.value(name, labels).unwrap_or(0.0)
    };
    for (name, labels) in [
        ("failover_events_total", &[("event", "failover")][..]),
        ("failover_events_total", &[("event", "node-down")][..]),
        (
            "failover_probes_total",
            &[
                ("node", "master"),
                ("check", "http"),
                ("result", "unreachable"),
            ][..],
        ),
        (
            "failover_probes_total",
            &[("node", "slave"), ("check", "http"), ("result", "healthy")][..],
        ),
        ("failover_notifications_total", &[("notifier", "log")][..]),
    ] {
        assert!(
            count(&after, name, labels) > count(&before, name, labels),
            "{name} {labels:?} did not grow with the failover:\n{metrics}"
        );
    }
    assert!(
        after
            .named("failover_publications_total")
            .map(|s| s.value)
            .sum::<f64>()
            > before
                .named("failover_publications_total")
                .map(|s| s.value)
                .sum::<f64>(),
        "{metrics}"
    );
    let probes = after
        .value(
            "failover_probe_duration_seconds_count",
            &[("node", "master"), ("check", "http")],
        )
        .unwrap();
    assert!(probes >= 4.0, "{metrics}");
    assert!(
        after
            .named("failover_probe_duration_seconds_bucket")
            .filter(|s| s.labels["node"] == "master")
            .count()
            > 10,
        "{metrics}"
    );
    assert!(
        after
            .named("failover_publish_duration_seconds_bucket")
            .count()
            > 10,
        "{metrics}"
    );

    // The page, in a real browser.
    let url = format!("http://{admin}/");
    let dom = tokio::task::spawn_blocking(move || common::chromium::dom(&url))
        .await
        .unwrap();
    assert!(dom.contains("node master: down"), "{dom}");
    assert!(dom.contains("node slave: up"), "{dom}");
    assert!(
        dom.contains("failover: answer moved from master (127.0.0.2) to slave (127.0.0.3)"),
        "{dom}"
    );

    // Overrides: refused without the token.
    master.start();
    wait_answer(dns, "127.0.0.2", Duration::from_secs(10)).await;
    let drain = format!("http://{admin}/admin/drain/master");
    let (code, text) = post(&drain, None).await;
    assert_eq!(code, 401, "{text}");
    let (code, _) = post(&drain, Some("wrong-token-wrong-token")).await;
    assert_eq!(code, 401);
    assert_eq!(
        status(admin).await["cluster"]["answer"],
        serde_json::json!(["master"])
    );
    let (code, text) = post(&format!("http://{admin}/admin/drain/mastr"), Some(TOKEN)).await;
    assert_eq!(
        (code, text.contains("unknown node \\\"mastr\\\"")),
        (400, true),
        "{text}"
    );

    // With the token, through the CLI an operator uses: the answer moves away.
    let output = Command::new(env!("CARGO_BIN_EXE_failoverd"))
        .args(["admin", "--config"])
        .arg(&config.path)
        .args(["drain", "master"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "done: drain master"
    );
    wait_answer(dns, "127.0.0.3", Duration::from_secs(5)).await;

    // It survives a restart of the daemon.
    daemon.shutdown().await;
    let daemon = Daemon::start(&config).await.unwrap();
    let started = Instant::now();
    wait_answer(dns, "127.0.0.3", Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let s = status(admin).await;
    assert_eq!(
        s["cluster"]["answer"],
        serde_json::json!(["slave"]),
        "after {:?}",
        started.elapsed()
    );
    assert_eq!(s["cluster"]["nodes"][0]["drained"], true);
    assert_eq!(s["cluster"]["overrides"][0]["override"], "drain");
    let output = Command::new(env!("CARGO_BIN_EXE_failoverd"))
        .args(["status", "--config"])
        .arg(&config.path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("node master [up, drained]"), "{text}");

    let (code, _) = post(&format!("http://{admin}/admin/undrain/master"), Some(TOKEN)).await;
    assert_eq!(code, 200);
    wait_answer(dns, "127.0.0.2", Duration::from_secs(5)).await;
    daemon.shutdown().await;
}
