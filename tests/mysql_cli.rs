//! `failoverd mysql setup` and `failoverd mysql status` against two real MariaDB servers, and
//! `failoverd check` on a config with mysql checks and fencing.
#![allow(clippy::unwrap_used)] // tests

use std::process::Command;

use failover_testkit::mariadb;

fn failoverd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_failoverd"))
}

fn config(dir: &std::path::Path, port: u16) -> std::path::PathBuf {
    std::fs::write(dir.join("admin.pw"), format!("{}\n", mariadb::ADMIN.1)).unwrap();
    std::fs::write(dir.join("monitor.pw"), mariadb::MONITOR.1).unwrap();
    std::fs::write(dir.join("repl.pw"), "repl-secret\n").unwrap();
    std::fs::copy("examples/db.test.ru", dir.join("db.test.ru")).unwrap();
    let path = dir.join("failoverd.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[zone]
name = "test.ru"
file = "db.test.ru"
listen = ["127.0.0.1:0"]
state_dir = "state"
records = [{{ name = "@", ttl = 10 }}]

[[node]]
name = "master"
address = "127.0.0.2"

[[node]]
name = "slave"
address = "127.0.0.3"

[[check]]
name = "mysql"
kind = "mysql"
port = {port}
critical = true

[[check]]
name = "replication"
kind = "mysql-replication"
port = {port}
max_lag = "10s"

[policy]
kind = "active-passive"

[mysql]
port = {port}
user = "{monitor}"
password_file = "monitor.pw"
admin_user = "{admin}"
admin_password_file = "admin.pw"
replication_password_file = "repl.pw"
timeout = "3s"

[mysql.fencing]
max_promote_lag = "5s"
promote_after_down = "2m"
"#,
            monitor = mariadb::MONITOR.0,
            admin = mariadb::ADMIN.0,
        ),
    )
    .unwrap();
    path
}

#[test]
fn setup_then_status_from_the_command_line() {
    let (master, slave) = mariadb::pair();
    let dir = tempfile::tempdir().unwrap();
    let path = config(dir.path(), master.port);

    let check = failoverd()
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        stdout.contains(&format!(
            "replication (mysql-replication port {})",
            master.port
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("mysql fencing: before the answer moves, read_only = 1 on the old primary"),
        "{stdout}"
    );

    let setup = failoverd()
        .args(["mysql", "setup", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&setup.stdout);
    assert!(
        setup.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&setup.stderr)
    );
    assert!(
        stdout.contains("slave: replicates from master (127.0.0.2:"),
        "{stdout}"
    );
    assert!(
        stdout.contains("warning: both servers are writable"),
        "{stdout}"
    );

    master.sql("CREATE DATABASE site");
    let status = failoverd()
        .args(["mysql", "status", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&status.stdout);
    assert_eq!(
        status.status.code(),
        Some(1),
        "both writable is not all well: {stdout}"
    );
    slave.sql("SET GLOBAL read_only = 1");
    let status = failoverd()
        .args(["mysql", "status", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(
        stdout.contains("OK from master (127.0.0.2:")
            && stdout.contains("OK from slave (127.0.0.3:"),
        "{stdout}"
    );
    assert!(stdout.contains("read_only ON"), "{stdout}");

    // The replication user got the password from the file.
    assert!(slave.try_sql_as("repl", "repl-secret", "SELECT 1").is_ok());
}

#[test]
fn mysql_config_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = config(dir.path(), 3306);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace("kind = \"active-passive\"", "kind = \"all-healthy\"")
            .replace(
                "max_lag = \"10s\"",
                "max_lag = \"10s\"\nuser = \"x\"\npassword_file = \"monitor.pw\"",
            )
            .replace("kind = \"mysql\"\n", "kind = \"mysql\"\nmax_lag = \"1s\"\n"),
    )
    .unwrap();
    let output = failoverd()
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("check[1].max_lag: max_lag only applies to kind = \"mysql-replication\" or \"mirror\" (this check is kind = \"mysql\")"), "{stderr}");
    assert!(
        stderr.contains(
            "mysql.fencing: fencing keeps one writer: it needs [policy] kind = \"active-passive\""
        ),
        "{stderr}"
    );
}
