//! The `dns` health check against the in-process server: healthy, wrong rcode, missing answer,
//! nothing listening, nothing answering.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::net::SocketAddr;
use std::time::Duration;

use failover_core::{FailureClass, HealthCheck, Outcome, Target};
use failover_dns::{
    query, DnsCheck, DnsCheckOptions, DnsServer, ManagedName, ServedZone, ServerConfig, Transport,
    Zone,
};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};

const RICH: &str = include_str!("data/rich.zone");

/// The rich test zone served on a free loopback port.
async fn serve() -> (tempfile::TempDir, DnsServer) {
    let dir = tempfile::tempdir().unwrap();
    let zone = Zone::parse("rich.zone", RICH).unwrap();
    let served = ServedZone::new(zone, &[ManagedName::new("www", 10)], dir.path()).unwrap();
    let server = DnsServer::start(
        served,
        &ServerConfig::new(vec!["127.0.0.1:0".parse().unwrap()]),
    )
    .unwrap();
    (dir, server)
}

fn target() -> Target {
    Target {
        node: "master".into(),
        address: "127.0.0.1".parse().unwrap(),
        timeout: Duration::from_secs(2),
    }
}

async fn probe(port: u16, options: DnsCheckOptions) -> Outcome {
    DnsCheck::new(options.with_port(port))
        .unwrap()
        .probe(&target())
        .await
}

fn failure(outcome: Outcome) -> (FailureClass, String) {
    match outcome {
        Outcome::Failed { class, error } => (class, error),
        Outcome::Healthy { detail } => panic!("probed healthy: {detail}"),
    }
}

#[tokio::test]
async fn a_serving_name_server_is_healthy_over_udp_and_tcp() {
    let (_dir, server) = serve().await;
    let port = server.local_addrs()[0].port();
    let soa = probe(port, DnsCheckOptions::new("test.ru")).await;
    let Outcome::Healthy { detail } = soa else {
        panic!("{soa:?}");
    };
    assert!(
        detail.contains("NOERROR") && detail.contains("SOA"),
        "{detail}"
    );
    let www = DnsCheckOptions::new("WWW.test.ru.")
        .with_record_type("a")
        .with_expect_answer("10.1.0.1");
    assert!(probe(port, www.clone()).await.is_healthy());
    assert!(probe(port, www.with_transport(Transport::Tcp))
        .await
        .is_healthy());
    let mx = DnsCheckOptions::new("test.ru")
        .with_record_type("MX")
        .with_expect_answer("10 mail.test.ru");
    assert!(probe(port, mx).await.is_healthy());
    // 24 TXT records do not fit 1232 bytes: truncated over UDP, asked again over TCP.
    let big = DnsCheckOptions::new("big.test.ru")
        .with_record_type("TXT")
        .with_expect_answer("24-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    assert!(probe(port, big).await.is_healthy());
    let nx = DnsCheckOptions::new("nope.test.ru").with_expect_rcode("NXDOMAIN");
    assert!(probe(port, nx).await.is_healthy());
    server.shutdown().await;
}

#[tokio::test]
async fn a_wrong_rcode_is_unhealthy_and_says_what_came_back() {
    let (_dir, server) = serve().await;
    let port = server.local_addrs()[0].port();
    let (class, error) = failure(probe(port, DnsCheckOptions::new("nope.test.ru")).await);
    assert_eq!(class, FailureClass::Unhealthy);
    assert!(error.contains("with NXDOMAIN, expected NOERROR"), "{error}");
    let (_, refused) = failure(probe(port, DnsCheckOptions::new("example.org")).await);
    assert!(refused.contains("REFUSED"), "{refused}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_missing_expected_answer_is_unhealthy_and_lists_the_answer() {
    let (_dir, server) = serve().await;
    let port = server.local_addrs()[0].port();
    let options = DnsCheckOptions::new("www.test.ru")
        .with_record_type("A")
        .with_expect_answer("10.9.9.9");
    let (class, error) = failure(probe(port, options).await);
    assert_eq!(class, FailureClass::Unhealthy);
    assert!(
        error.contains("[A 10.1.0.1]") && error.contains("expected an answer holding 10.9.9.9"),
        "{error}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn nothing_listening_is_unreachable_over_udp_and_tcp() {
    let (_dir, server) = serve().await;
    let port = server.local_addrs()[0].port();
    server.shutdown().await;
    for transport in [Transport::Udp, Transport::Tcp] {
        let options = DnsCheckOptions::new("test.ru").with_transport(transport);
        let (class, error) = failure(probe(port, options).await);
        assert_eq!(class, FailureClass::Unreachable, "{transport:?}: {error}");
        assert!(error.contains("refused"), "{error}");
    }
}

#[tokio::test]
async fn a_silent_server_is_a_timeout() {
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let check = DnsCheck::new(DnsCheckOptions::new("test.ru").with_port(port)).unwrap();
    let target = Target {
        timeout: Duration::from_millis(300),
        ..target()
    };
    let (class, error) = failure(check.probe(&target).await);
    assert_eq!(class, FailureClass::Timeout, "{error}");
    assert!(error.contains("no answer within 300ms"), "{error}");
}

#[tokio::test]
async fn the_query_client_returns_the_response_whatever_its_rcode() {
    let (_dir, server) = serve().await;
    let addr: SocketAddr = server.local_addrs()[0];
    let name = Name::from_ascii("nope.test.ru.").unwrap();
    let response = query(
        addr,
        &name,
        RecordType::A,
        Transport::Udp,
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    assert_eq!(response.response_code, ResponseCode::NXDomain);
    assert_eq!(response.authorities[0].record_type(), RecordType::SOA);
    server.shutdown().await;
}
