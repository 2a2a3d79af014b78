//! The built-in probes against real servers on loopback.
#![allow(clippy::unwrap_used)] // tests

use std::time::Duration;

use failover_core::probe::{HttpCheck, HttpOptions};
use failover_core::{FailureClass, HealthCheck, Outcome, Target};
use failover_testkit::{free_port, HttpServer};

/// A real `python3 -m http.server` on a free port of 127.0.0.1 serving `/health`, killed on drop.
fn python_http() -> HttpServer {
    HttpServer::serve(
        "127.0.0.1",
        free_port("127.0.0.1"),
        &[("health", "database ok\n")],
        Duration::from_secs(5),
    )
}

fn target() -> Target {
    Target {
        node: "master".into(),
        address: "127.0.0.1".parse().unwrap(),
        timeout: Duration::from_secs(3),
    }
}

fn check(options: HttpOptions) -> HttpCheck {
    HttpCheck::new(options).unwrap()
}

#[tokio::test]
async fn http_status_and_body_decide_health() {
    let server = python_http();
    let base = HttpOptions::new(server.port);

    let outcome = check(base.clone()).probe(&target()).await;
    assert_eq!(outcome, Outcome::healthy("HTTP 200"));

    let outcome = check(HttpOptions {
        path: "/health".into(),
        body_contains: Some("database ok".into()),
        ..base.clone()
    })
    .probe(&target())
    .await;
    assert_eq!(outcome, Outcome::healthy("HTTP 200"));

    let outcome = check(HttpOptions {
        path: "/health".into(),
        body_contains: Some("all good".into()),
        ..base.clone()
    })
    .probe(&target())
    .await;
    assert!(
        matches!(&outcome, Outcome::Failed { class: FailureClass::Unhealthy, error } if error.contains("does not contain \"all good\"")),
        "{outcome:?}"
    );

    let outcome = check(HttpOptions {
        path: "/missing".into(),
        ..base.clone()
    })
    .probe(&target())
    .await;
    assert!(
        matches!(&outcome, Outcome::Failed { class: FailureClass::Unhealthy, error } if error.contains("status 404 (expected 2xx or 3xx)")),
        "{outcome:?}"
    );

    let outcome = check(HttpOptions {
        path: "/missing".into(),
        expect_status: vec![404],
        host: Some("www.test.ru".into()),
        ..base
    })
    .probe(&target())
    .await;
    assert_eq!(outcome, Outcome::healthy("HTTP 404"));
}

#[tokio::test]
async fn a_stopped_server_is_unreachable() {
    let server = python_http();
    let port = server.port;
    drop(server);
    let outcome = check(HttpOptions::new(port)).probe(&target()).await;
    assert!(
        matches!(&outcome, Outcome::Failed { class: FailureClass::Unreachable, error } if error.contains("refused")),
        "{outcome:?}"
    );
}

#[test]
fn bad_options_are_refused_with_the_fix() {
    let err = HttpCheck::new(HttpOptions {
        path: "health".into(),
        ..HttpOptions::new(80)
    })
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "http check path \"health\" must start with \"/\""
    );
}
