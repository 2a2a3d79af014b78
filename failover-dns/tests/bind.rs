//! The zone writers steering a real BIND 9 that each test starts on loopback ports in a temp dir.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use std::path::Path;
use std::time::Duration;

use failover_core::{ManagedAnswer, ManagedName, Publication, ZoneWriter};
use failover_dns::{
    DynamicUpdateOptions, DynamicUpdateWriter, TsigKey, Zone, ZoneFileOptions, ZoneFileWriter,
};
use failover_testkit::bind::{Bind, BindKey, RNDC_SECRET};
use failover_testkit::free_port;

const UPDATE_SECRET: &str = "ZmFpbG92ZXItdXBkYXRlLWtleS1mb3ItdGhlLXRlc3Qh";
const OTHER_SECRET: &str = "c29tZWJvZHktZWxzZXMta2V5LXRoYXQtaXMtbm90LW91cnM=";

const MASTER: &str = "10.1.0.1";
const BACKUP: &str = "10.2.0.1";
const BACKUP_V6: &str = "2001:db8::2";

const ZONE: &str = "\
; test.ru as the administrator wrote it
$TTL 10
@       IN SOA ns1.test.ru. admin.test.ru. (
            2024010101 ; serial
            3600 600 86400 10 )
        IN NS  ns1
        IN MX  10 mail
@       IN A   10.1.0.1
www     IN A   10.1.0.1
ns1     IN A   127.0.0.1
mail    IN A   10.0.0.25 ; static, never managed
";

/// The named.conf statement of a TSIG key the writers use.
fn bind_key(key: &TsigKey) -> BindKey {
    BindKey {
        name: key.name().to_owned(),
        algorithm: key.algorithm().to_string(),
        secret: data_encoding::BASE64.encode(key.secret()),
    }
}

fn managed() -> Vec<ManagedName> {
    vec![ManagedName::new("@", 10), ManagedName::new("www", 10)]
}

fn publication(addresses: &[&str]) -> Publication {
    let addresses: Vec<_> = addresses.iter().map(|a| a.parse().unwrap()).collect();
    Publication {
        nodes: vec![],
        answers: ["@", "www"]
            .into_iter()
            .map(|name| ManagedAnswer {
                name: name.into(),
                ttl: 10,
                addresses: addresses.clone(),
            })
            .collect(),
    }
}

fn zone_file_writer(bind: &Bind, rndc_conf: &Path) -> ZoneFileWriter {
    let mut options = ZoneFileOptions::new("test.ru", bind.path("db.test.ru"), managed());
    options.reload_command = bind.reload_command(rndc_conf);
    options.verify_at = Some(bind.address());
    options.timeout = Duration::from_secs(5);
    ZoneFileWriter::new(options).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zone_file_writer_moves_bind_to_the_backup_and_back() {
    let bind = Bind::start("test.ru", ZONE, "", &[]);
    let writer = zone_file_writer(&bind, &bind.path("rndc.conf"));
    let first_serial = bind.serial();
    assert_eq!(bind.dig("www.test.ru", "A"), [MASTER]);

    let receipt = writer.publish(&publication(&[MASTER])).await.unwrap();
    assert_eq!(bind.dig("www.test.ru", "A"), [MASTER]);
    assert_eq!(receipt.serial, Some(bind.serial()));

    let receipt = writer
        .publish(&publication(&[BACKUP, BACKUP_V6]))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", bind.log()));
    assert_eq!(bind.dig("www.test.ru", "A"), [BACKUP]);
    assert_eq!(bind.dig("www.test.ru", "AAAA"), [BACKUP_V6]);
    assert_eq!(bind.dig("test.ru", "A"), [BACKUP]);
    let failover_serial = bind.serial();
    assert!(
        failover_serial > first_serial,
        "{failover_serial} > {first_serial}"
    );
    assert_eq!(receipt.serial, Some(failover_serial));
    // Static records are still served, and the file keeps the administrator's comments.
    assert_eq!(bind.dig("mail.test.ru", "A"), ["10.0.0.25"]);
    assert_eq!(bind.dig("test.ru", "MX"), ["10 mail.test.ru."]);
    let text = std::fs::read_to_string(bind.path("db.test.ru")).unwrap();
    assert!(text.contains("; static, never managed"), "{text}");

    writer.publish(&publication(&[MASTER])).await.unwrap();
    assert_eq!(bind.dig("www.test.ru", "A"), [MASTER]);
    assert!(bind.dig("www.test.ru", "AAAA").is_empty());
    assert!(bind.serial() > failover_serial);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_reload_is_reported_and_bind_keeps_serving() {
    let bind = Bind::start("test.ru", ZONE, "", &[]);
    let good = zone_file_writer(&bind, &bind.path("rndc.conf"));
    good.publish(&publication(&[BACKUP])).await.unwrap();
    assert_eq!(bind.dig("www.test.ru", "A"), [BACKUP]);
    let serial = bind.serial();
    let file_before = std::fs::read(bind.path("db.test.ru")).unwrap();

    // BIND rejects rndc's key.
    let wrong_key = bind.write_rndc_conf("wrong-key.conf", OTHER_SECRET, bind.control_port);
    let error = zone_file_writer(&bind, &wrong_key)
        .publish(&publication(&[MASTER]))
        .await
        .unwrap_err()
        .to_string();
    eprintln!("{error}");
    assert!(
        error.starts_with("reload of zone test.ru failed: "),
        "{error}"
    );
    assert!(
        error.contains("rndc: connection to remote host closed"),
        "rndc's own message: {error}"
    );
    assert!(error.contains("previous zone file was put back"), "{error}");

    // Nothing listens on the control port rndc is pointed at.
    let wrong_port = bind.write_rndc_conf("wrong-port.conf", RNDC_SECRET, free_port("127.0.0.1"));
    let error = zone_file_writer(&bind, &wrong_port)
        .publish(&publication(&[MASTER]))
        .await
        .unwrap_err()
        .to_string();
    eprintln!("{error}");
    assert!(
        error.contains("rndc: connect failed: 127.0.0.1#"),
        "{error}"
    );
    assert!(error.contains("connection refused"), "{error}");

    // The reload "succeeds" but BIND never loads the file: the serial check catches it.
    let mut options = ZoneFileOptions::new("test.ru", bind.path("db.test.ru"), managed());
    options.reload_command = vec!["true".into()];
    options.verify_at = Some(bind.address());
    options.timeout = Duration::from_secs(1);
    let error = ZoneFileWriter::new(options)
        .unwrap()
        .publish(&publication(&[MASTER]))
        .await
        .unwrap_err()
        .to_string();
    eprintln!("{error}");
    assert!(
        error.contains(&format!("did not serve serial {}", serial + 1)),
        "{error}"
    );
    assert!(
        error.contains(&format!("still serves serial {serial}")),
        "{error}"
    );

    // The file is the one BIND serves, byte for byte, and still a valid zone; BIND serves it.
    assert_eq!(std::fs::read(bind.path("db.test.ru")).unwrap(), file_before);
    Zone::from_file_for(bind.path("db.test.ru"), "test.ru").unwrap();
    assert_eq!(bind.dig("www.test.ru", "A"), [BACKUP]);
    assert_eq!(bind.serial(), serial);

    // And the next good publish still goes through.
    good.publish(&publication(&[MASTER])).await.unwrap();
    assert_eq!(bind.dig("www.test.ru", "A"), [MASTER]);
    assert!(bind.serial() > serial);
}

fn update_key() -> TsigKey {
    TsigKey::new("failover-update", "hmac-sha256", UPDATE_SECRET).unwrap()
}

fn dynamic_writer(bind: &Bind, key: TsigKey) -> DynamicUpdateWriter {
    let mut options = DynamicUpdateOptions::new("test.ru", bind.address(), key, managed());
    options.timeout = Duration::from_secs(5);
    DynamicUpdateWriter::new(options).unwrap()
}

fn dynamic_bind() -> Bind {
    let sha512 = TsigKey::new("failover-512", "hmac-sha512", OTHER_SECRET).unwrap();
    let not_allowed = TsigKey::new("not-allowed", "hmac-sha256", OTHER_SECRET).unwrap();
    Bind::start(
        "test.ru",
        ZONE,
        "allow-update { key \"failover-update\"; key \"failover-512\"; };",
        &[&update_key(), &sha512, &not_allowed].map(bind_key),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_update_flips_bind_with_a_tsig_key() {
    let bind = dynamic_bind();
    let first_serial = bind.serial();
    let writer = dynamic_writer(&bind, update_key());

    let receipt = writer
        .publish(&publication(&[BACKUP, BACKUP_V6]))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", bind.log()));
    assert_eq!(bind.dig("www.test.ru", "A"), [BACKUP]);
    assert_eq!(bind.dig("www.test.ru", "AAAA"), [BACKUP_V6]);
    assert_eq!(bind.dig("test.ru", "A"), [BACKUP]);
    let serial = bind.serial();
    assert!(serial > first_serial);
    assert_eq!(receipt.serial, Some(serial));
    assert_eq!(bind.dig("test.ru", "MX"), ["10 mail.test.ru."]);

    // Back, with an HMAC-SHA512 key this time.
    let sha512 = TsigKey::new("failover-512", "hmac-sha512", OTHER_SECRET).unwrap();
    dynamic_writer(&bind, sha512)
        .publish(&publication(&[MASTER]))
        .await
        .unwrap();
    assert_eq!(bind.dig("www.test.ru", "A"), [MASTER]);
    assert!(bind.dig("www.test.ru", "AAAA").is_empty());
    assert!(bind.serial() > serial);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_is_reported_and_nothing_changes() {
    let bind = dynamic_bind();
    let serial = bind.serial();

    let wrong_secret = TsigKey::new("failover-update", "hmac-sha256", OTHER_SECRET).unwrap();
    let error = dynamic_writer(&bind, wrong_secret)
        .publish(&publication(&[BACKUP]))
        .await
        .unwrap_err()
        .to_string();
    eprintln!("{error}");
    assert!(
        error.starts_with("dynamic update of zone test.ru at 127.0.0.1:"),
        "{error}"
    );
    assert!(error.contains("TSIG BADSIG"), "{error}");
    assert!(error.contains("NOTAUTH"), "{error}");

    let unknown = TsigKey::new("nobody", "hmac-sha256", UPDATE_SECRET).unwrap();
    let error = dynamic_writer(&bind, unknown)
        .publish(&publication(&[BACKUP]))
        .await
        .unwrap_err()
        .to_string();
    eprintln!("{error}");
    assert!(error.contains("TSIG BADKEY"), "{error}");

    let not_allowed = TsigKey::new("not-allowed", "hmac-sha256", OTHER_SECRET).unwrap();
    let error = dynamic_writer(&bind, not_allowed)
        .publish(&publication(&[BACKUP]))
        .await
        .unwrap_err()
        .to_string();
    eprintln!("{error}");
    assert!(error.contains("REFUSED"), "{error}");

    assert_eq!(bind.dig("www.test.ru", "A"), [MASTER]);
    assert_eq!(bind.dig("test.ru", "A"), [MASTER]);
    assert_eq!(bind.serial(), serial);
}
