//! The peer link against itself on loopback: pinning both ways, frames, limits, stalled strangers.
//!
//! Unit tests only: the parent declares this module under `#[cfg(test)]`.

#![allow(clippy::unwrap_used)] // tests

use super::*;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

fn pair() -> (Arc<Identity>, Arc<Identity>) {
    (
        Arc::new(Identity::generate("master").unwrap()),
        Arc::new(Identity::generate("slave").unwrap()),
    )
}

async fn listen(config: PeerConfig) -> (Arc<PeerListener>, SocketAddr) {
    let listener = Arc::new(
        PeerListener::bind("127.0.0.1:0".parse().unwrap(), config)
            .await
            .unwrap(),
    );
    let address = listener.local_addr().unwrap();
    (listener, address)
}

#[tokio::test]
async fn pinned_peers_talk_in_frames() {
    let (a, b) = pair();
    let (listener, address) = listen(PeerConfig::new(
        a.clone(),
        vec![b.fingerprint()],
        "mirror",
        "master",
    ))
    .await;
    let server = tokio::spawn(async move {
        let mut stream = listener.accept().await.unwrap();
        assert_eq!(stream.hello().node, "slave");
        let frame = stream.recv().await.unwrap().unwrap();
        stream.send(&frame.repeat(2)).await.unwrap();
    });
    let config = PeerConfig::new(b, vec![a.fingerprint()], "mirror", "slave");
    let mut stream = connect(address, &config).await.unwrap();
    assert_eq!(stream.hello().node, "master");
    stream.send(b"ping").await.unwrap();
    assert_eq!(stream.recv().await.unwrap().unwrap(), b"pingping");
    server.await.unwrap();
    assert_eq!(
        stream.recv().await.unwrap(),
        None,
        "a closed link reads as None"
    );
}

#[tokio::test]
async fn a_peer_with_another_certificate_is_refused_both_ways() {
    let (a, b) = pair();
    let stranger = Arc::new(Identity::generate("stranger").unwrap());
    let (listener, address) = listen(PeerConfig::new(
        a.clone(),
        vec![b.fingerprint()],
        "mirror",
        "master",
    ))
    .await;
    let server = tokio::spawn(async move { listener.accept().await });
    let config = PeerConfig::new(
        stranger.clone(),
        vec![a.fingerprint()],
        "mirror",
        "stranger",
    );
    let client = connect(address, &config).await;
    let accepted = server.await.unwrap();
    let err = accepted.unwrap_err().to_string();
    assert!(err.contains("is not pinned"), "{err}");
    assert!(err.contains(&stranger.fingerprint().to_string()), "{err}");
    assert!(client.is_err(), "the stranger gets no link either");

    // And a server whose certificate the client did not pin.
    let (listener, address) = listen(PeerConfig::new(
        stranger.clone(),
        vec![b.fingerprint()],
        "mirror",
        "stranger",
    ))
    .await;
    tokio::spawn(async move { listener.accept().await });
    let config = PeerConfig::new(b, vec![a.fingerprint()], "mirror", "slave");
    let err = connect(address, &config).await.unwrap_err().to_string();
    assert!(err.contains("is not pinned"), "{err}");
}

#[tokio::test]
async fn oversized_frames_and_wrong_services_are_refused() {
    let (a, b) = pair();
    let mut server_config = PeerConfig::new(a.clone(), vec![b.fingerprint()], "mirror", "master");
    server_config.max_frame = 1024;
    let (listener, address) = listen(server_config).await;
    let server = tokio::spawn(async move {
        let mut stream = listener.accept().await.unwrap();
        stream.recv().await
    });
    let config = PeerConfig::new(b.clone(), vec![a.fingerprint()], "mirror", "slave");
    let mut stream = connect(address, &config).await.unwrap();
    stream.send(&vec![0u8; 4096]).await.unwrap();
    let err = server.await.unwrap().unwrap_err().to_string();
    assert!(err.contains("frame of 4096 bytes (limit 1024)"), "{err}");

    let (listener, address) = listen(PeerConfig::new(
        a.clone(),
        vec![b.fingerprint()],
        "observations",
        "master",
    ))
    .await;
    tokio::spawn(async move { listener.accept().await });
    let err = connect(address, &config).await.unwrap_err().to_string();
    assert!(err.contains("wants service \"observations\""), "{err}");
}

#[tokio::test]
async fn a_stalled_stranger_does_not_keep_a_peer_out() {
    let (a, b) = pair();
    let mut server_config = PeerConfig::new(a.clone(), vec![b.fingerprint()], "mirror", "master");
    server_config.handshake_timeout = Duration::from_secs(30);
    let (listener, address) = listen(server_config).await;
    // A connection that never says anything.
    let _stalled = TcpStream::connect(address).await.unwrap();
    let config = PeerConfig::new(b, vec![a.fingerprint()], "mirror", "slave");
    let client = tokio::spawn(async move { connect(address, &config).await });
    let accepted = tokio::time::timeout(Duration::from_secs(5), listener.accept())
        .await
        .expect("the real peer is accepted while the stalled one waits")
        .unwrap();
    assert_eq!(accepted.hello().node, "slave");
    assert!(client.await.unwrap().is_ok());
}

#[test]
fn keys_round_trip_through_files_and_fingerprints_through_text() {
    let dir = tempfile::tempdir().unwrap();
    let identity = Identity::generate("master").unwrap();
    let (certificate, key) = identity.write(dir.path()).unwrap();
    let loaded = Identity::load(&certificate, &key).unwrap();
    assert_eq!(loaded.fingerprint(), identity.fingerprint());
    let text = identity.fingerprint().to_string();
    assert_eq!(text.len(), 7 + 64);
    assert_eq!(text.parse::<Fingerprint>().unwrap(), identity.fingerprint());
    assert!(identity
        .write(dir.path())
        .unwrap_err()
        .to_string()
        .contains("exists already"));
    assert!("sha256:xyz".parse::<Fingerprint>().is_err());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

/// One HTTPS handshake with `server` from a client pinning `pinned`: the certificates the
/// server sent, or the client's error.
async fn https_handshake(
    server: &Identity,
    pinned: Fingerprint,
) -> Result<Vec<Fingerprint>, std::io::Error> {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server.https_server().unwrap()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let accepting = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let _ = acceptor.accept(stream).await;
    });
    let connector =
        tokio_rustls::TlsConnector::from(Arc::new(pinned_https_client(vec![pinned]).unwrap()));
    let stream = TcpStream::connect(address).await.unwrap();
    let name = rustls::pki_types::ServerName::from(address.ip());
    let result = tokio::time::timeout(Duration::from_secs(10), connector.connect(name, stream))
        .await
        .unwrap()
        .map(|tls| {
            tls.get_ref()
                .1
                .peer_certificates()
                .unwrap_or_default()
                .iter()
                .map(|c| Fingerprint::of(c))
                .collect()
        });
    accepting.await.unwrap();
    result
}

#[tokio::test]
async fn https_serves_the_certificate_with_its_chain_to_a_client_that_pins_it_and_no_other() {
    // A certificate file that goes on with another certificate, as a CA's chain does.
    let dir = tempfile::tempdir().unwrap();
    let (leaf, intermediate) = pair();
    leaf.write(&dir.path().join("leaf")).unwrap();
    intermediate.write(&dir.path().join("ca")).unwrap();
    let chain = dir.path().join("chain.pem");
    let text =
        |part: &str| std::fs::read_to_string(dir.path().join(part).join("node.crt")).unwrap();
    std::fs::write(&chain, text("leaf") + &text("ca")).unwrap();
    let served = Identity::load(&chain, &dir.path().join("leaf/node.key")).unwrap();
    assert_eq!(served.fingerprint(), leaf.fingerprint());

    let sent = https_handshake(&served, leaf.fingerprint()).await.unwrap();
    assert_eq!(sent, vec![leaf.fingerprint(), intermediate.fingerprint()]);

    let refused = https_handshake(&served, intermediate.fingerprint())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains(&format!(
            "certificate {} is not pinned (pinned: {})",
            leaf.fingerprint(),
            intermediate.fingerprint()
        )),
        "{refused}"
    );
}
