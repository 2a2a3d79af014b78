//! Against real MariaDB: a master-master pair set up by `setup_pair`, the checks following
//! stopped threads, replication errors and a killed server, and the pair's status.
#![allow(clippy::unwrap_used)] // tests

mod common;

use std::time::Duration;

use common::*;
use failover_core::{FailureClass, HealthCheck, Outcome, Target};
use failover_mysql::*;
use failover_testkit::eventually;

fn setup_options(master: &Mariadb, slave: &Mariadb) -> SetupOptions {
    SetupOptions {
        servers: [master.member(), slave.member()],
        admin: admin(),
        replication: replication(),
        timeout: Duration::from_secs(5),
        wait_running: Duration::from_secs(20),
    }
}

fn target(server: &Mariadb) -> Target {
    Target {
        node: server.name.as_str().into(),
        address: server.address,
        timeout: Duration::from_secs(3),
    }
}

fn error_of(outcome: &Outcome) -> (FailureClass, String) {
    match outcome {
        Outcome::Failed { class, error } => (*class, error.clone()),
        Outcome::Healthy { detail } => panic!("healthy: {detail}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn setup_makes_a_master_master_pair_and_rows_flow_both_ways() {
    let (master, slave) = pair();
    let report = setup_pair(&setup_options(&master, &slave)).await.unwrap();
    let steps = report.steps.join("\n");
    assert!(
        steps.contains("master: replicates from slave (127.0.0.3:")
            && steps.contains("slave: replicates from master (127.0.0.2:"),
        "{steps}"
    );
    assert!(!steps.contains("not running"), "{steps}");
    // Both are writable after setup: that is the one warning left.
    assert_eq!(report.warnings, vec![PairWarning::BothWritable]);

    master.sql("CREATE DATABASE site; CREATE TABLE site.pages (id INT AUTO_INCREMENT PRIMARY KEY, body TEXT)");
    master.sql("INSERT INTO site.pages (body) VALUES ('written on master')");
    eventually(
        Duration::from_secs(20),
        "the table and row reach slave",
        || {
            slave
                .try_sql("SELECT body FROM site.pages")
                .is_ok_and(|s| s == "written on master")
        },
    )
    .await;
    slave.sql("INSERT INTO site.pages (body) VALUES ('written on slave')");
    eventually(
        Duration::from_secs(20),
        "slave's row reaches master",
        || master.sql("SELECT COUNT(*) FROM site.pages WHERE body = 'written on slave'") == "1",
    )
    .await;
    // auto_increment_offset 1 and 2, increment 2: the keys never collide.
    assert_eq!(
        master.sql("SELECT GROUP_CONCAT(id ORDER BY id) FROM site.pages"),
        "1,2"
    );

    // Running it again changes nothing: positions are kept.
    let again = setup_pair(&setup_options(&master, &slave)).await.unwrap();
    let steps = again.steps.join("\n");
    assert!(
        steps.contains("master: already replicates from slave")
            && steps.contains("slave: already replicates from master"),
        "{steps}"
    );
    slave.sql("SET GLOBAL read_only = 1");
    let status = PairStatus::fetch(
        &master.member(),
        &slave.member(),
        &monitor(),
        Duration::from_secs(3),
    )
    .await;
    assert!(status.is_healthy(), "{status}");
    let text = status.to_string();
    println!("{text}");
    assert!(text.contains("master (127.0.0.2:"), "{text}");
    assert!(
        text.contains("read_only OFF") && text.contains("read_only ON"),
        "{text}"
    );
    assert!(text.contains("OK from slave (127.0.0.3:"), "{text}");
    assert!(text.contains("OK from master (127.0.0.2:"), "{text}");
    assert!(text.contains("IO Yes, SQL Yes, lag 0 s"), "{text}");
    assert!(text.contains("gtid 0-"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn setup_refuses_a_server_that_replicates_from_elsewhere() {
    let (master, slave) = pair();
    slave.sql(&format!(
        "CHANGE MASTER TO MASTER_HOST = '127.0.0.9', MASTER_PORT = {}, MASTER_USER = 'x'",
        slave.port
    ));
    let error = setup_pair(&setup_options(&master, &slave))
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("slave: already replicates from 127.0.0.9:")
            && message.contains("RESET SLAVE ALL"),
        "{message}"
    );
    // Nothing was changed on either server.
    assert_eq!(master.sql("SHOW SLAVE STATUS"), "");
    assert_eq!(
        master.sql("SELECT COUNT(*) FROM mysql.user WHERE user = 'repl'"),
        "0"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_checks_follow_stopped_threads_replication_errors_and_a_dead_server() {
    let (mut master, slave) = pair();
    setup_pair(&setup_options(&master, &slave)).await.unwrap();
    let mysql = MysqlCheck::new(master.port, monitor());
    let replication = ReplicationCheck::new(slave.port, monitor(), Duration::from_secs(30));

    let outcome = mysql.probe(&target(&master)).await;
    assert!(outcome.is_healthy(), "{outcome:?}");
    for server in [&master, &slave] {
        let outcome = replication.probe(&target(server)).await;
        assert!(outcome.is_healthy(), "{}: {outcome:?}", server.name);
    }

    // A wrong password is the config's fault, and says so.
    let wrong = MysqlCheck::new(master.port, Credentials::new(MONITOR.0, "wrong"));
    let (class, error) = error_of(&wrong.probe(&target(&master)).await);
    assert_eq!(class, FailureClass::Misconfigured);
    assert!(
        error.contains("access denied for user \"failover_monitor\""),
        "{error}"
    );

    // STOP SLAVE on slave: down, with the thread states.
    slave.sql("STOP SLAVE");
    let (class, error) = error_of(&replication.probe(&target(&slave)).await);
    assert_eq!(class, FailureClass::Unhealthy);
    assert!(
        error.contains("IO No, SQL No, lag NULL (unknown)"),
        "{error}"
    );
    assert!(error.contains("replication from 127.0.0.2:"), "{error}");
    slave.sql("START SLAVE");
    let mut outcome = replication.probe(&target(&slave)).await;
    for _ in 0..50 {
        if outcome.is_healthy() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        outcome = replication.probe(&target(&slave)).await;
    }
    assert!(outcome.is_healthy(), "{outcome:?}");

    // A duplicate key in replication: slave has the row already, master writes it too.
    master.sql("CREATE DATABASE site; CREATE TABLE site.t (id INT PRIMARY KEY)");
    eventually(Duration::from_secs(20), "the table reaches slave", || {
        slave.try_sql("SELECT COUNT(*) FROM site.t").is_ok()
    })
    .await;
    slave.sql("SET sql_log_bin = 0; INSERT INTO site.t VALUES (7)");
    master.sql("INSERT INTO site.t VALUES (7)");
    let mut failure = None;
    for _ in 0..100 {
        let outcome = replication.probe(&target(&slave)).await;
        if !outcome.is_healthy() {
            failure = Some(error_of(&outcome));
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (class, error) = failure.expect("the duplicate key stops slave's SQL thread");
    assert_eq!(class, FailureClass::Unhealthy);
    assert!(error.contains("SQL No"), "{error}");
    assert!(
        error.contains("Last_SQL_Error: ") && error.contains("Duplicate entry '7'"),
        "{error}"
    );
    // The admin's fix: skip the event.
    slave.sql("SET GLOBAL sql_slave_skip_counter = 1; START SLAVE SQL_THREAD");

    // Master killed: mysql down on it, slave's IO thread not running or connecting.
    master.kill();
    let (class, error) = error_of(&mysql.probe(&target(&master)).await);
    assert_eq!(class, FailureClass::Unreachable, "{error}");
    assert!(error.starts_with("127.0.0.2:"), "{error}");
    let mut failure = None;
    for _ in 0..100 {
        let outcome = replication.probe(&target(&slave)).await;
        if !outcome.is_healthy() {
            failure = Some(error_of(&outcome));
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, error) = failure.expect("slave notices that master is gone");
    assert!(
        error.contains("IO Connecting") || error.contains("IO No"),
        "{error}"
    );
    let status = PairStatus::fetch(
        &master.member(),
        &slave.member(),
        &monitor(),
        Duration::from_secs(2),
    )
    .await;
    let text = status.to_string();
    println!("{text}");
    assert!(
        text.contains("master (127.0.0.2:") && text.contains("UNREACHABLE"),
        "{text}"
    );
    assert!(text.contains("BROKEN from master"), "{text}");
    assert!(!status.is_healthy());
}
