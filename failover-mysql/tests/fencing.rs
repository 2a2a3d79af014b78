//! Fencing through the supervisor against real MariaDB: a failover sets read_only on the old
//! primary and clears it on the new one; a promotion of a lagging server is refused, reported,
//! and done once it has caught up.
#![allow(clippy::unwrap_used)] // tests

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use common::*;
use failover_core::*;
use failover_mysql::*;
use failover_testkit::eventually;

/// The site's own check, switched by the test (the database is what is under test here).
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
        if self.0.lock().unwrap().get(target.node.as_str()) == Some(&true) {
            Outcome::healthy("on")
        } else {
            Outcome::failed(FailureClass::Unreachable, "switched off")
        }
    }
}

#[derive(Default)]
struct Recorder(Mutex<Vec<Vec<NodeName>>>);

impl Recorder {
    fn last(&self) -> Option<Vec<NodeName>> {
        self.0.lock().unwrap().last().cloned()
    }
}

#[async_trait]
impl ZoneWriter for Recorder {
    fn describe(&self) -> String {
        "recorder".into()
    }

    async fn publish(&self, publication: &Publication) -> Result<PublishReceipt, PublishError> {
        self.0.lock().unwrap().push(publication.nodes.clone());
        Ok(PublishReceipt::default())
    }
}

fn names(list: &[&str]) -> Vec<NodeName> {
    list.iter().map(NodeName::new).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failover_fences_the_old_primary_and_a_lagging_promotion_is_refused() {
    let (master, slave) = pair();
    setup_pair(&SetupOptions {
        servers: [master.member(), slave.member()],
        admin: admin(),
        replication: replication(),
        timeout: Duration::from_secs(5),
        wait_running: Duration::from_secs(20),
    })
    .await
    .unwrap();
    slave.sql("SET GLOBAL read_only = 1");
    // The site's own user, replicated to slave like the schema.
    master.sql("CREATE DATABASE site; CREATE TABLE site.t (id INT PRIMARY KEY); CREATE USER site@'%' IDENTIFIED BY 'site-pw'; GRANT ALL ON site.* TO site@'%'");

    let spec = ClusterSpec::new(
        vec![
            NodeSpec::new("master", [master.address]),
            NodeSpec::new("slave", [slave.address]),
        ],
        vec![CheckSpec {
            fall: 1,
            ..CheckSpec::new("http", true)
        }],
        vec![ManagedName::new("@", 10)],
    )
    .with_all_down(AllDown::KeepLast)
    .with_damping(Damping::default())
    .with_startup(Startup::default());
    let policy = ActivePassive::new(
        names(&["master", "slave"]),
        Failback::Auto {
            after: Duration::from_secs(1),
        },
    );
    let fence = MysqlFence::new(FenceOptions {
        servers: BTreeMap::from([
            (NodeName::new("master"), master.endpoint()),
            (NodeName::new("slave"), slave.endpoint()),
        ]),
        admin: admin(),
        max_promote_lag: Duration::from_secs(5),
        promote_after_down: Duration::from_secs(600),
        timeout: Duration::from_secs(3),
        retry_after: Duration::from_secs(1),
    });
    let switch = Arc::new(Switch::default());
    switch.set("master", true);
    switch.set("slave", true);
    let recorder = Arc::new(Recorder::default());
    let schedule = ProbeSchedule {
        interval: Duration::from_millis(200),
        timeout: Duration::from_millis(200),
        jitter: Duration::ZERO,
    };
    let handle = Supervisor::new(Arbiter::new(spec, Box::new(policy)).unwrap())
        .node("master".into(), master.address)
        .node("slave".into(), slave.address)
        .check("http".into(), switch.clone(), schedule)
        .writer(recorder.clone())
        .fence(Arc::new(fence))
        .spawn();
    eventually(Duration::from_secs(5), "the first answer", || {
        recorder.last() == Some(names(&["master"]))
    })
    .await;

    // Failover: master's site goes down; its database still answers and is fenced.
    switch.set("master", false);
    eventually(Duration::from_secs(20), "the failover is published", || {
        recorder.last() == Some(names(&["slave"]))
    })
    .await;
    assert!(master.read_only(), "the old primary is read-only");
    assert!(!slave.read_only(), "the new primary is writable");
    let events = handle.status().borrow().recent_events.clone();
    let steps: Vec<String> = events
        .iter()
        .filter(|e| e.name() == "fence-step")
        .map(ToString::to_string)
        .collect();
    println!("{}", steps.join("\n"));
    assert!(
        steps
            .iter()
            .any(|s| s.starts_with("mysql fencing: set read_only = 1 on master: done")),
        "{steps:?}"
    );
    assert!(
        steps
            .iter()
            .any(|s| s.starts_with("mysql fencing: set read_only = 0 on slave: done")),
        "{steps:?}"
    );
    let error = master
        .try_sql_as("site", "site-pw", "INSERT INTO site.t VALUES (1)")
        .expect_err("the fenced primary refuses the site's writes");
    assert!(error.contains("--read-only"), "{error}");
    slave
        .try_sql_as("site", "site-pw", "INSERT INTO site.t VALUES (1)")
        .unwrap();

    // master comes back, but its SQL thread is stopped while slave takes writes: the failback
    // must wait for it.
    master.sql("STOP SLAVE SQL_THREAD");
    slave
        .try_sql_as("site", "site-pw", "INSERT INTO site.t VALUES (2)")
        .unwrap();
    eventually(
        Duration::from_secs(10),
        "master's IO thread has read the write",
        || {
            master.replica_field("Read_Master_Log_Pos")
                != master.replica_field("Exec_Master_Log_Pos")
        },
    )
    .await;
    switch.set("master", true);
    eventually(Duration::from_secs(20), "the failback is refused", || {
        handle
            .status()
            .borrow()
            .recent_events
            .iter()
            .any(|e| e.name() == "publish-vetoed")
    })
    .await;
    let status = handle.status().borrow().clone();
    let refusal = status
        .recent_events
        .iter()
        .find(|e| e.name() == "publish-vetoed")
        .unwrap()
        .to_string();
    println!("{refusal}");
    assert!(
        refusal.starts_with("mysql fencing refused to move the answer to master: master's SQL thread is not caught up (IO Yes, SQL No, lag NULL (unknown), relay log not yet applied"),
        "{refusal}"
    );
    assert_eq!(recorder.last(), Some(names(&["slave"])));
    assert!(master.read_only() && !slave.read_only(), "nothing changed");

    // Once master has applied its relay log, the failback goes through and fences slave.
    master.sql("START SLAVE SQL_THREAD");
    eventually(Duration::from_secs(20), "the failback is published", || {
        recorder.last() == Some(names(&["master"]))
    })
    .await;
    assert!(!master.read_only());
    assert!(slave.read_only());
    assert_eq!(master.sql("SELECT COUNT(*) FROM site.t WHERE id = 2"), "1");
    handle.shutdown().await;
}
