//! The e-mail and webhook notifiers against real servers on loopback: Debian's aiosmtpd as the
//! mail relay, and a Python HTTP server as the webhook receiver.
#![allow(clippy::unwrap_used)] // tests

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use failover_core::*;
use failover_testkit::smtp::{aiosmtpd, mailbox};
use failover_testkit::{free_port, TcpServer};

/// A check whose verdict per node the test sets; the real parts here are the mail and web servers.
#[derive(Default)]
struct Switch(Mutex<HashMap<String, bool>>);

impl Switch {
    fn set(&self, node: &str, up: bool) {
        self.0.lock().unwrap().insert(node.to_owned(), up);
    }
}

#[async_trait]
impl HealthCheck for Switch {
    fn kind(&self) -> &'static str {
        "switch"
    }

    async fn probe(&self, target: &Target) -> Outcome {
        match self.0.lock().unwrap().get(target.node.as_str()) {
            Some(true) => Outcome::healthy("HTTP 200"),
            _ => Outcome::failed(
                FailureClass::Unreachable,
                "cannot connect: Connection refused",
            ),
        }
    }
}

const INTERVAL: Duration = Duration::from_millis(100);

fn supervisor(fall: u32, damping: Damping, switch: Arc<Switch>) -> Supervisor {
    let mut check = CheckSpec::new("http", true);
    check.fall = fall;
    let spec = ClusterSpec::new(
        vec![
            NodeSpec::new("master", ["10.1.0.1".parse().unwrap()]),
            NodeSpec::new("slave", ["10.2.0.2".parse().unwrap()]),
        ],
        vec![check],
        vec![ManagedName::new("@", 10)],
    )
    .with_all_down(AllDown::KeepLast)
    .with_damping(damping)
    .with_startup(Startup::default());
    let policy = ActivePassive::new(
        vec!["master".into(), "slave".into()],
        Failback::Auto {
            after: Duration::ZERO,
        },
    );
    Supervisor::new(Arbiter::new(spec, Box::new(policy)).unwrap())
        .node("master".into(), "127.0.0.2".parse().unwrap())
        .node("slave".into(), "127.0.0.3".parse().unwrap())
        .check(
            "http".into(),
            switch,
            ProbeSchedule {
                interval: INTERVAL,
                timeout: INTERVAL,
                jitter: Duration::ZERO,
            },
        )
}

fn email(port: u16) -> EmailNotifier {
    EmailNotifier::new(EmailOptions {
        host: "127.0.0.1".into(),
        port,
        security: EmailSecurity::None,
        credentials: None,
        from: "failoverd@test.ru".into(),
        to: vec!["admin@test.ru".into()],
        subject: SubjectTemplate::new("[failover] {summary}").unwrap(),
        timeout: Duration::from_secs(5),
        batch_window: Duration::from_millis(500),
    })
    .unwrap()
}

async fn wait_for_mail(maildir: &Path, count: usize) -> Vec<(String, String)> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mail = mailbox(maildir);
        if mail.len() >= count || Instant::now() > deadline {
            return mail;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_going_down_and_up_sends_two_messages_that_tell_the_story() {
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("mail");
    let smtp = aiosmtpd(&maildir);
    let switch = Arc::new(Switch::default());
    switch.set("master", true);
    switch.set("slave", true);
    let handle = supervisor(3, Damping::default(), switch.clone())
        .notifier(Arc::new(
            Filtered::new(
                email(smtp.port),
                &[
                    "check-down",
                    "check-up",
                    "node-down",
                    "node-up",
                    "failover",
                    "failback",
                ]
                .map(String::from),
            )
            .unwrap(),
        ))
        .spawn();
    // Initial "up" verdicts are not news: no mail for them.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(mailbox(&maildir).is_empty(), "{:?}", mailbox(&maildir));

    switch.set("master", false);
    let mail = wait_for_mail(&maildir, 1).await;
    assert_eq!(mail.len(), 1, "{mail:?}");
    let (subject, body) = &mail[0];
    assert_eq!(
        subject,
        "[failover] failover: answer moved from master (10.1.0.1) to slave (10.2.0.2)"
    );
    assert!(body.contains("reports 3 events"), "{body}");
    assert!(body.contains("http on master is DOWN after 3 failed probes (unreachable: cannot connect: Connection refused) [critical]"), "{body}");
    assert!(body.contains("failing since "), "{body}");
    assert!(
        body.contains("node master is DOWN (critical checks down: http)"),
        "{body}"
    );
    assert!(
        body.contains("What the daemon did: the answer moved from 10.1.0.1 to 10.2.0.2."),
        "{body}"
    );

    switch.set("master", true);
    let mail = wait_for_mail(&maildir, 2).await;
    assert_eq!(mail.len(), 2, "{mail:?}");
    let (subject, body) = &mail[1];
    assert_eq!(
        subject,
        "[failover] failback: answer moved from slave (10.2.0.2) to master (10.1.0.1)"
    );
    assert!(body.contains("http on master is UP again after"), "{body}");
    assert!(body.contains("node master is UP"), "{body}");
    handle.shutdown().await;
    drop(smtp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_check_sends_a_bounded_number_of_messages() {
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("mail");
    let smtp = aiosmtpd(&maildir);
    let switch = Arc::new(Switch::default());
    switch.set("master", true);
    switch.set("slave", true);
    // fall = 1: every failed probe is a transition, the worst case for a mailbox.
    let damping = Damping {
        window: Duration::from_secs(600),
        max_changes: 4,
    };
    let handle = supervisor(1, damping, switch.clone())
        .notifier(Arc::new(email(smtp.port)))
        .spawn();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let flaps = Instant::now();
    let mut toggles = 0;
    while flaps.elapsed() < Duration::from_secs(6) {
        switch.set("master", toggles % 2 == 1);
        toggles += 1;
        tokio::time::sleep(INTERVAL * 2).await;
    }
    switch.set("master", true);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let status = handle.status().borrow().clone();
    let transitions = status
        .recent_events
        .iter()
        .filter(|e| e.name() == "check-down")
        .count();
    let mail = mailbox(&maildir);
    eprintln!("{transitions} check-down events, {} messages", mail.len());
    assert!(
        transitions >= 10,
        "the check should have flapped: {transitions} check-down events"
    );
    // Subjects (check, node, answer) each notify at most max_changes + 1 times per window,
    // and a batch groups them: far fewer messages than transitions.
    assert!(
        mail.len() <= 3 * 5,
        "{} messages for {transitions} flaps",
        mail.len()
    );
    assert!(
        mail.iter().any(|(_, body)| body.contains("is flapping")),
        "one message says it flaps: {mail:?}"
    );
    handle.shutdown().await;
    drop(smtp);
}

/// A real HTTP server (Python's http.server with a POST handler) writing each body to a file.
fn webhook_server(dir: &Path) -> TcpServer {
    let port = free_port("127.0.0.1");
    let script = format!(
        r#"
import http.server, itertools
counter = itertools.count()
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers['Content-Length']))
        name = r'{dir}/hook-%03d.json' % next(counter)
        with open(name + '.tmp', 'wb') as f:
            f.write(self.headers.get('Authorization', '').encode() + b'\n' + body)
        import os; os.rename(name + '.tmp', name)
        self.send_response(204); self.end_headers()
    def log_message(self, *args): pass
http.server.HTTPServer(('127.0.0.1', {port}), Hook).serve_forever()
"#,
        dir = dir.display()
    );
    TcpServer::start(
        Command::new("python3").args(["-c", &script]),
        [127, 0, 0, 1].into(),
        port,
        Duration::from_secs(15),
        "python3",
    )
}

#[tokio::test]
async fn a_webhook_gets_the_event_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let server = webhook_server(dir.path());
    let hook = WebhookNotifier::new(WebhookOptions {
        url: format!("http://127.0.0.1:{}/failover", server.port),
        headers: vec![("Authorization".into(), "Bearer s3cret".into())],
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    let event = Event {
        at: std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        kind: EventKind::Failover {
            names: Vec::new(),
            from: vec!["master".into()],
            to: vec!["slave".into()],
            from_addresses: vec!["10.1.0.1".parse().unwrap()],
            to_addresses: vec!["10.2.0.2".parse().unwrap()],
            degraded: Vec::new(),
        },
    };
    hook.notify(&event).await.unwrap();
    let text = std::fs::read_to_string(dir.path().join("hook-000.json")).unwrap();
    let (authorization, body) = text.split_once('\n').unwrap();
    assert_eq!(authorization, "Bearer s3cret");
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(json["event"], "failover");
    assert_eq!(json["at"], "2023-11-14T22:13:20Z");
    assert_eq!(json["from"], serde_json::json!(["master"]));
    assert_eq!(json["to"], serde_json::json!(["slave"]));
    assert_eq!(json["to_addresses"], serde_json::json!(["10.2.0.2"]));
    assert_eq!(json["subject"], "answer");
    assert_eq!(
        json["summary"],
        "failover: answer moved from master (10.1.0.1) to slave (10.2.0.2)"
    );
    assert_eq!(json["host"], host_name());

    // A receiver that is gone is an error that names the URL.
    let url = format!("http://127.0.0.1:{}/failover", server.port);
    drop(server);
    let err = hook.notify(&event).await.unwrap_err().to_string();
    assert!(err.starts_with(&format!("POST {url}")), "{err}");
}
