//! `[zone] allow_transfer` entries that require a `[[zone.keys]]` key, through the daemon and the
//! real `dig`: refused without the key, transferred (and verified by dig) with it.
#![allow(clippy::unwrap_used)] // tests

mod common;

use std::net::SocketAddr;

use common::web_server;
use failover::config::Config;
use failover::daemon::Daemon;
use failover_testkit::{dig, free_port};

const SECRET: &str = "a2V5LWZvci10cmFuc2ZlcnMtb2YtdGVzdC5ydQ==";

fn config(dir: &std::path::Path, dns: SocketAddr, web_port: u16) -> Config {
    std::fs::write(
        dir.join("db.test.ru"),
        "$ORIGIN test.ru.\n$TTL 10\n@ IN SOA ns.test.ru. admin.test.ru. ( 2 10 10 10 10 )\n  IN NS ns.test.ru.\nns IN A 127.0.0.1\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("xfr.key"),
        format!("key \"xfr-key\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{SECRET}\";\n}};\n"),
    )
    .unwrap();
    let source = format!(
        r#"
[zone]
name = "test.ru"
file = "db.test.ru"
listen = ["{dns}"]
state_dir = "state"
records = [{{ name = "www", ttl = 10 }}]
allow_transfer = [{{ from = "127.0.0.0/8", key = "xfr-key" }}]

[[zone.keys]]
name = "xfr-key"
key_file = "xfr.key"

[probe]
interval = "300ms"
timeout = "200ms"

[[node]]
name = "master"
address = "127.0.0.2"

[[check]]
name = "http"
kind = "http"
port = {web_port}
critical = true

[policy]
kind = "active-passive"
"#
    );
    let path = dir.join("failoverd.toml");
    std::fs::write(&path, &source).unwrap();
    Config::parse(&source, &path).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyed_transfer_needs_the_key_and_is_signed() {
    let dir = tempfile::tempdir().unwrap();
    let web_port = free_port("127.0.0.2");
    let dns: SocketAddr = format!("127.0.0.1:{}", free_port("127.0.0.1"))
        .parse()
        .unwrap();
    let _web = web_server("127.0.0.2", web_port);
    let config = config(dir.path(), dns, web_port);
    let daemon = Daemon::start(&config).await.unwrap();

    let unsigned =
        tokio::task::spawn_blocking(move || dig(dns, &["+tries=1", "+time=2", "test.ru", "AXFR"]))
            .await
            .unwrap();
    assert!(
        unsigned.contains("Transfer failed") && !unsigned.contains("IN\tSOA"),
        "an unsigned transfer was answered:\n{unsigned}"
    );

    let signed = tokio::task::spawn_blocking(move || {
        dig(
            dns,
            &[
                "+tries=1",
                "+time=2",
                "-y",
                &format!("hmac-sha256:xfr-key:{SECRET}"),
                "test.ru",
                "AXFR",
            ],
        )
    })
    .await
    .unwrap();
    assert!(signed.contains("IN\tSOA"), "{signed}");
    assert!(
        signed.contains("xfr-key"),
        "no TSIG in the answer:\n{signed}"
    );
    assert!(!signed.contains("Transfer failed"), "{signed}");
    assert!(
        !signed.to_lowercase().contains("tsig verify failure"),
        "{signed}"
    );

    daemon.shutdown().await;
}
