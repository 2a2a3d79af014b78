//! The built-in probes against real servers on loopback.
#![allow(clippy::unwrap_used)] // tests

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use failover_core::probe::{HttpCheck, HttpOptions};
use failover_core::{FailureClass, HealthCheck, Outcome, Target};

/// A real `python3 -m http.server` on a free loopback port, killed on drop.
struct PythonHttp {
    child: Child,
    port: u16,
    _root: tempfile::TempDir,
}

impl PythonHttp {
    fn start() -> Self {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("health"), "database ok\n").unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .arg("--directory")
            .arg(root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 is needed for this test: apt-get install python3");
        let server = Self {
            child,
            port,
            _root: root,
        };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return server;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("python3 http.server did not listen on 127.0.0.1:{port} within 5 s");
    }
}

impl Drop for PythonHttp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
    let server = PythonHttp::start();
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
    let server = PythonHttp::start();
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
