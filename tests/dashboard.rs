//! The Grafana dashboard in `packaging/`: well formed, and every series it queries is one that
//! `/metrics` serves — read from a real pair of daemons on loopback with the live mirror and
//! shared observations running, after a real failover.
#![allow(clippy::unwrap_used)] // tests

mod common;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use common::openmetrics::Scrape;
use common::{wait_for_answer, web_server};
use failover::config::Config;
use failover::core::peer::Identity;
use failover::daemon::Daemon;
use failover_testkit::free_port;

const DASHBOARD: &str = include_str!("../packaging/grafana-dashboard.json");

/// Every PromQL expression of the dashboard: its panels' targets, its variables, annotations.
fn expressions(dashboard: &serde_json::Value) -> Vec<String> {
    let mut found = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            found.push(target["expr"].as_str().unwrap().to_owned());
        }
    }
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        found.push(variable["definition"].as_str().unwrap().to_owned());
    }
    for annotation in dashboard["annotations"]["list"].as_array().unwrap() {
        found.push(annotation["expr"].as_str().unwrap().to_owned());
    }
    found
}

/// The series names (`failover_...`) an expression reads.
fn series_in(expression: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = expression;
    while let Some(at) = rest.find("failover_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        names.insert(name);
    }
    names
}

#[test]
fn the_dashboard_is_one_grafana_imports() {
    let dashboard: serde_json::Value = serde_json::from_str(DASHBOARD).unwrap();
    assert_eq!(dashboard["__inputs"][0]["name"], "DS_PROMETHEUS");
    let panels = dashboard["panels"].as_array().unwrap();
    let mut ids = BTreeSet::new();
    for panel in panels {
        let title = panel["title"].as_str().unwrap();
        assert!(
            ids.insert(panel["id"].as_u64().unwrap()),
            "{title}: id twice"
        );
        assert_eq!(panel["datasource"]["uid"], "${DS_PROMETHEUS}", "{title}");
        let grid = &panel["gridPos"];
        assert!(
            grid["x"].as_u64().unwrap() + grid["w"].as_u64().unwrap() <= 24,
            "{title}: wider than the grid"
        );
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{title}: no query");
        let mut refs = BTreeSet::new();
        for target in targets {
            assert!(refs.insert(target["refId"].as_str().unwrap()), "{title}");
            let expr = target["expr"].as_str().unwrap();
            assert!(
                !series_in(expr).is_empty(),
                "{title}: {expr} reads no failover series"
            );
            assert_eq!(
                expr.matches('(').count(),
                expr.matches(')').count(),
                "{title}: {expr}"
            );
        }
    }
    // What the issue asks it to show.
    let titles: Vec<&str> = panels
        .iter()
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    for wanted in [
        "Answer over time",
        "Node state",
        "Check state",
        "Probe latency (p50, p95)",
        "Failovers and failbacks",
        "DNS query rate",
        "Mirror lag",
    ] {
        assert!(titles.contains(&wanted), "no panel {wanted:?}: {titles:?}");
    }
}

/// One server's config file, in its own directory (its own key, state and web root); the two
/// files describe the same pair.
#[allow(clippy::too_many_arguments)] // one port per listener; a struct would only rename them
fn write_config(
    dir: &Path,
    fingerprints: &[String; 2],
    dns: SocketAddr,
    admin: SocketAddr,
    web_port: u16,
    peer_port: u16,
    mirror_port: u16,
) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("www")).unwrap();
    std::fs::write(
        dir.join("db.test.ru"),
        "$ORIGIN test.ru.\n$TTL 10\n@ IN SOA ns.test.ru. admin.test.ru. ( 2 10 10 10 10 )\n  IN NS ns.test.ru.\nns IN A 127.0.0.1\n",
    )
    .unwrap();
    let text = format!(
        r#"
[zone]
name = "test.ru"
file = "db.test.ru"
listen = ["{dns}"]
state_dir = "state"
records = [{{ name = "@", ttl = 10 }}]

[probe]
interval = "300ms"
timeout = "200ms"
jitter = "0s"

[[node]]
name = "master"
address = "127.0.0.2"
peer_address = "127.0.0.2:{peer_port}"
fingerprint = "{}"

[[node]]
name = "slave"
address = "127.0.0.3"
peer_address = "127.0.0.3:{peer_port}"
fingerprint = "{}"

[[check]]
name = "http"
kind = "http"
port = {web_port}
critical = true

[policy]
kind = "active-passive"
failback_after = "1s"

[cluster]
observer_timeout = "2s"

[mirror]
root = "{root}"
port = {mirror_port}
owners = "off"

[admin]
listen = "{admin}"
"#,
        fingerprints[0],
        fingerprints[1],
        root = dir.join("www").display(),
    );
    let path = dir.join("failoverd.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn loopback() -> SocketAddr {
    format!("127.0.0.1:{}", free_port("127.0.0.1"))
        .parse()
        .unwrap()
}

async fn scrape(admin: SocketAddr) -> Scrape {
    failover::core::install_crypto_provider();
    let text = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
        .get(format!("http://{admin}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    Scrape::parse(&text)
}

/// Scrapes `admin` until `ready` holds (at most 30 s), and returns that scrape.
async fn scrape_until(admin: SocketAddr, what: &str, ready: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let scrape = scrape(admin).await;
        if ready(&scrape) {
            return scrape;
        }
        assert!(
            Instant::now() < deadline,
            "{what} not in /metrics within 30 s: {:?}",
            scrape.samples.iter().map(|s| s.key()).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_series_the_dashboard_queries_is_served_by_a_running_pair() {
    let dir = tempfile::tempdir().unwrap();
    let (master_dir, slave_dir) = (dir.path().join("master"), dir.path().join("slave"));
    let mut fingerprints = Vec::new();
    for (name, dir) in [("master", &master_dir), ("slave", &slave_dir)] {
        std::fs::create_dir_all(dir).unwrap();
        let identity = Identity::generate(name).unwrap();
        identity.write(dir).unwrap();
        fingerprints.push(identity.fingerprint().to_string());
    }
    let fingerprints: [String; 2] = fingerprints.try_into().unwrap();
    let web_port = free_port("127.0.0.2");
    let peer_port = free_port("127.0.0.2");
    let mirror_port = free_port("127.0.0.3");
    let mut master_web = web_server("127.0.0.2", web_port);
    let _slave_web = web_server("127.0.0.3", web_port);
    let (dns, admin) = (loopback(), loopback());
    let mut daemons = Vec::new();
    for (name, dir, dns, admin) in [
        ("master", &master_dir, dns, admin),
        ("slave", &slave_dir, loopback(), loopback()),
    ] {
        let path = write_config(
            dir,
            &fingerprints,
            dns,
            admin,
            web_port,
            peer_port,
            mirror_port,
        );
        let config = Config::load(&path).unwrap().select(Some(name.to_owned()));
        daemons.push(Daemon::start(&config).await.unwrap());
    }
    let master_ip: IpAddr = "127.0.0.2".parse().unwrap();
    tokio::task::spawn_blocking(move || wait_for_answer(dns, master_ip, Duration::from_secs(15)))
        .await
        .unwrap();
    // A failover, so that the events, notifications and failed probes have counted something.
    std::fs::write(master_dir.join("www/index.html"), "site\n").unwrap();
    master_web.stop();
    let slave_ip: IpAddr = "127.0.0.3".parse().unwrap();
    tokio::task::spawn_blocking(move || wait_for_answer(dns, slave_ip, Duration::from_secs(15)))
        .await
        .unwrap();
    let scrape = scrape_until(admin, "a mirror run and the slave observer", |s| {
        s.value("failover_mirror_runs_total", &[]).unwrap_or(0.0) >= 1.0
            && s.value("failover_observer_live", &[("observer", "slave")]) == Some(1.0)
    })
    .await;
    assert_eq!(
        std::fs::read_to_string(slave_dir.join("www/index.html"))
            .ok()
            .as_deref(),
        Some("site\n"),
        "the mirror carried the file"
    );
    scrape.check_naming("failover");

    let dashboard: serde_json::Value = serde_json::from_str(DASHBOARD).unwrap();
    let queried: BTreeSet<String> = expressions(&dashboard)
        .iter()
        .flat_map(|e| series_in(e))
        .collect();
    assert!(queried.len() > 20, "{queried:?}");
    let served: BTreeSet<&str> = scrape.samples.iter().map(|s| s.name.as_str()).collect();
    let missing: Vec<&String> = queried
        .iter()
        .filter(|name| !served.contains(name.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries series /metrics does not serve: {missing:?}\nserved: {served:?}"
    );
    // And the documentation names every series the dashboard shows.
    let operations = std::fs::read_to_string("docs/operations.md").unwrap();
    for name in &queried {
        let family = name.strip_suffix("_bucket").unwrap_or(name);
        assert!(
            operations.contains(&format!("`{family}`")),
            "docs/operations.md does not document {family}"
        );
    }
    for daemon in daemons {
        daemon.shutdown().await;
    }
}
