//! The page's history in a real headless Chromium: the daemon with real web servers, a check
//! that fails and recovers; the heartbeat bars, latency charts, uptimes and the answer changes
//! in the DOM, screenshots for people (desktop and phone) in the test artefacts, the layout at
//! 375 px without a sideways scroll; then a restart, after which the page still shows the
//! history from the journal.
#![allow(clippy::unwrap_used)] // tests

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::chromium;
use common::{http_get, two_nodes_with_admin, wait_for_answer, web_server};
use failover::daemon::Daemon;
use failover_testkit::free_port;

async fn history(admin: SocketAddr) -> serde_json::Value {
    serde_json::from_str(&get(&format!("http://{admin}/history.json")).await).unwrap()
}

/// The body of `url`, which must answer 200.
async fn get(url: &str) -> String {
    let (code, body) = http_get(url).await;
    assert_eq!(code, 200, "{url}");
    body
}

async fn wait_answer(dns: SocketAddr, want: &str) {
    let want: IpAddr = want.parse().unwrap();
    tokio::task::spawn_blocking(move || wait_for_answer(dns, want, Duration::from_secs(15)))
        .await
        .unwrap();
}

/// Probes passed and failed of `node`'s http check in `/history.json`.
fn counts(history: &serde_json::Value, node: &str) -> (u64, u64) {
    let check = history["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["node"] == node && c["check"] == "http")
        .unwrap_or_else(|| panic!("no history of {node}: {history}"));
    check["minutes"]
        .as_array()
        .unwrap()
        .iter()
        .fold((0, 0), |(ok, failed), m| {
            (
                ok + m["ok"].as_u64().unwrap(),
                failed + m["failed"].as_u64().unwrap(),
            )
        })
}

/// The addresses of each answer change, oldest first.
fn answer_changes(history: &serde_json::Value) -> Vec<String> {
    history["answer_changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["answers"][0]["addresses"][0].as_str().unwrap().to_owned())
        .collect()
}

/// The card of `node`'s http check in the page's DOM.
fn card<'a>(dom: &'a str, node: &str) -> &'a str {
    let start = dom
        .find(&format!(
            r#"<article class="check" data-node="{node}" data-check="http">"#
        ))
        .unwrap_or_else(|| panic!("no card for {node}:\n{dom}"));
    let end = dom[start..].find("</article>").unwrap();
    &dom[start..start + end]
}

/// Each heartbeat cell's state, failures and passes, oldest first.
fn beats(card: &str) -> Vec<(String, u64, u64)> {
    card.split(r#"<span class="beat "#)
        .skip(1)
        .map(|cell| {
            let attribute = |name: &str| {
                let from = cell.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
                cell[from..].split('"').next().unwrap().to_owned()
            };
            (
                attribute("data-state"),
                attribute("data-ok").parse().unwrap(),
                attribute("data-failed").parse().unwrap(),
            )
        })
        .collect()
}

/// What the card says of its uptime over `window`, as a share.
fn uptime(card: &str, window: &str) -> f64 {
    let marker = format!(r#"data-window="{window}" data-value=""#);
    let from = card
        .find(&marker)
        .unwrap_or_else(|| panic!("no uptime over {window}:\n{card}"))
        + marker.len();
    card[from..].split('"').next().unwrap().parse().unwrap()
}

async fn page_dom(url: String) -> String {
    tokio::task::spawn_blocking(move || chromium::dom(&url))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_draws_the_history_of_a_failure_and_keeps_it_across_a_restart() {
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
    let config = two_nodes_with_admin(dir.path(), dns, admin, web_port, "");
    let daemon = Daemon::start(&config).await.unwrap();
    wait_answer(dns, "127.0.0.2").await;

    // The master's web server fails, the answer moves, it comes back and the answer returns.
    master.stop();
    wait_answer(dns, "127.0.0.3").await;
    master.start();
    wait_answer(dns, "127.0.0.2").await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    let before = history(admin).await;
    let (master_ok, master_failed) = counts(&before, "master");
    assert!(master_ok >= 3 && master_failed >= 3, "{before}");
    assert_eq!(counts(&before, "slave").1, 0, "{before}");
    assert_eq!(
        answer_changes(&before),
        ["127.0.0.2", "127.0.0.3", "127.0.0.2"],
        "{before}"
    );

    // The page in a real browser: each check's bar, chart and uptimes; the answer changes.
    let url = format!("http://{admin}/");
    let dom = page_dom(url.clone()).await;
    assert!(dom.contains(r#"<meta name="viewport""#), "{dom}");
    let master_card = card(&dom, "master");
    let cells = beats(master_card);
    assert_eq!(cells.len(), 60, "{master_card}");
    assert!(
        cells.iter().any(|(s, _, _)| s == "partial" || s == "down"),
        "{cells:?}"
    );
    assert_eq!(cells.iter().map(|c| c.2).sum::<u64>(), master_failed);
    // The current minute holds the passes since the recovery (alone, or with the failures).
    assert!(cells.last().unwrap().1 > 0, "{cells:?}");
    let master_1h = uptime(master_card, "1h");
    assert!(master_1h > 0.0 && master_1h < 1.0, "{master_card}");
    assert_eq!(uptime(master_card, "24h"), master_1h);
    assert!(
        master_card.contains(r#"<svg class="latency""#),
        "{master_card}"
    );
    assert!(
        master_card.contains(r#"<path class="max" d="M"#),
        "{master_card}"
    );
    assert!(
        master_card.contains(r#"<rect class="bar""#),
        "{master_card}"
    );
    let slave_card = card(&dom, "slave");
    let slave_cells = beats(slave_card);
    assert_eq!(slave_cells.len(), 60);
    assert!(
        slave_cells
            .iter()
            .all(|(s, _, failed)| (s == "up" || s == "no-data") && *failed == 0),
        "{slave_cells:?}"
    );
    assert_eq!(uptime(slave_card, "1h"), 1.0);
    assert!(slave_card.contains("100 % over 1h"), "{slave_card}");
    let timeline = dom.split(r#"<ol id="answer-changes""#).nth(1).unwrap();
    let timeline = timeline.split("</ol>").next().unwrap();
    let entries: Vec<&str> = timeline
        .split(r#"<li class="answer-change">"#)
        .skip(1)
        .collect();
    assert_eq!(entries.len(), 3, "{timeline}");
    assert!(entries[0].contains("@: 127.0.0.2 (master)"), "{timeline}");
    assert!(entries[1].contains("@: 127.0.0.3 (slave)"), "{timeline}");
    assert!(entries[0].contains("<time datetime=\""), "{timeline}");

    // Screenshots for people, and the layout at a phone's width.
    let artefacts = chromium::artefacts_dir();
    let desktop = artefacts.join("history-desktop.png");
    let phone = artefacts.join("history-phone.png");
    let _ = std::fs::remove_file(&desktop);
    let _ = std::fs::remove_file(&phone);
    let html = get(&url).await;
    let framed = dir.path().join("phone.html");
    std::fs::write(&framed, chromium::framed(&html, 390, 844)).unwrap();
    let framed_url = format!("file://{}", framed.display());
    let narrow = dir.path().join("narrow.html");
    std::fs::write(&narrow, chromium::framed(&html, 375, 812)).unwrap();
    let narrow_url = format!("file://{}", narrow.display());
    let (desktop_path, phone_path) = (desktop.clone(), phone.clone());
    let narrow_dom = tokio::task::spawn_blocking(move || {
        chromium::screenshot(&url, &desktop_path, 1280, 900);
        chromium::screenshot(&framed_url, &phone_path, 390, 844);
        chromium::dom(&narrow_url)
    })
    .await
    .unwrap();
    for (path, size) in [(&desktop, (1280, 900)), (&phone, (390, 844))] {
        assert_eq!(chromium::png_size(path), size, "{}", path.display());
        let bytes = std::fs::metadata(path).unwrap().len();
        assert!(bytes > 20_000, "{}: {bytes} bytes", path.display());
    }
    let width = |name: &str| -> u32 {
        let marker = format!("{name}=\"");
        let from = narrow_dom
            .find(&marker)
            .unwrap_or_else(|| panic!("{narrow_dom}"))
            + marker.len();
        narrow_dom[from..]
            .split('"')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(width("data-client-width"), 375);
    assert!(width("data-scroll-width") <= 375, "{narrow_dom}");

    // A restart: the history before it comes back from the journal.
    daemon.shutdown().await;
    let daemon = Daemon::start(&config).await.unwrap();
    let after = history(admin).await;
    assert_eq!(counts(&after, "master").1, master_failed, "{after}");
    assert!(counts(&after, "master").0 + 2 >= master_ok, "{after}");
    assert_eq!(
        answer_changes(&after),
        ["127.0.0.2", "127.0.0.3", "127.0.0.2"],
        "{after}"
    );
    let dom = page_dom(format!("http://{admin}/")).await;
    let cells = beats(card(&dom, "master"));
    assert_eq!(cells.iter().map(|c| c.2).sum::<u64>(), master_failed);
    assert!(dom.contains("@: 127.0.0.3 (slave)"), "{dom}");
    daemon.shutdown().await;
}
