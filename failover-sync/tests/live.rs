//! The live mirror end to end: two mirror services on loopback with two roots, the peer link
//! with pinned certificates, changes both ways, a cut link, strangers and hostile frames.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{attr, getfacl, read, set_attr, setfacl, snapshot, write, Snap};
use failover_core::peer::{Identity, PeerConfig, PeerListener};
use failover_core::FileMirror;
use failover_sync::live::{
    encode, Assembler, LiveConfig, LiveMirror, LiveOptions, Message, SERVICE,
};
use failover_sync::{Entry, RelPath, Request, XattrKinds};
use failover_testkit::{eventually, Wait};

struct Node {
    root: tempfile::TempDir,
    state: tempfile::TempDir,
    identity: Arc<Identity>,
}

impl Node {
    fn new(name: &str) -> Node {
        Node {
            root: tempfile::tempdir().unwrap(),
            state: tempfile::tempdir().unwrap(),
            identity: Arc::new(Identity::generate(name).unwrap()),
        }
    }

    fn root(&self) -> &Path {
        self.root.path()
    }

    fn config(&self, name: &str, peer_name: &str, peer: &Node, peer_addr: &str) -> LiveConfig {
        LiveConfig {
            root: self.root().to_path_buf(),
            node: name.to_owned(),
            peer_node: peer_name.to_owned(),
            listen: "127.0.0.1:0".parse().unwrap(),
            peer: peer_addr.parse().unwrap(),
            identity: self.identity.clone(),
            peer_fingerprint: peer.identity.fingerprint(),
            state_dir: self.state.path().to_path_buf(),
            excludes: vec!["*.log".to_owned()],
            coalesce: Duration::from_millis(100),
            rescan_interval: Duration::from_secs(3600),
            max_delete_share: 0.5,
            fsync: false,
        }
    }
}

/// How long the mirrors get to act on a change.
const WAIT: Wait = Wait::up_to(Duration::from_secs(15)).every(Duration::from_millis(20));

async fn converged(a: &Node, b: &Node) {
    eventually(WAIT, "both roots to be the same", || {
        snapshot(a.root()) == snapshot(b.root())
    })
    .await;
}

/// `b` serves (its name sorts last), `a` drives.
async fn start_pair(a: &Node, b: &Node) -> (LiveMirror, LiveMirror) {
    let served = LiveMirror::start(b.config("b", "a", a, "127.0.0.1:1"))
        .await
        .unwrap();
    let address = served.local_addr().unwrap().to_string();
    let driver = LiveMirror::start(a.config("a", "b", b, &address))
        .await
        .unwrap();
    eventually(WAIT, "the first run", || {
        driver.status().last_sync.is_some() && served.status().last_sync.is_some()
    })
    .await;
    (driver, served)
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_change_crosses_both_ways() {
    let (a, b) = (Node::new("a"), Node::new("b"));
    write(a.root(), "before/start.html", "there before the start");
    write(b.root(), "only-on-b.txt", "b had this");
    let (driver, served) = start_pair(&a, &b).await;
    converged(&a, &b).await;
    assert_eq!(read(a.root(), "only-on-b.txt"), "b had this");

    for (from, to) in [(&a, &b), (&b, &a)] {
        let side = if std::ptr::eq(from, &a) { "a" } else { "b" };
        // Create: a file, a new directory with a file made right away, a symlink.
        write(from.root(), &format!("{side}-new.html"), "new");
        std::fs::create_dir(from.root().join(format!("{side}-dir"))).unwrap();
        write(from.root(), &format!("{side}-dir/inner/deep.css"), "deep");
        std::os::unix::fs::symlink(
            format!("{side}-new.html"),
            from.root().join(format!("{side}-link")),
        )
        .unwrap();
        converged(&a, &b).await;
        assert_eq!(
            read(to.root(), &format!("{side}-dir/inner/deep.css")),
            "deep"
        );
        assert_eq!(
            snapshot(to.root())[&format!("{side}-link")],
            Snap::Link(format!("{side}-new.html"))
        );
        // Edit, chmod, rename, delete.
        write(from.root(), &format!("{side}-new.html"), "edited");
        chmod(
            &from.root().join(format!("{side}-dir/inner/deep.css")),
            0o600,
        );
        std::fs::rename(
            from.root().join(format!("{side}-dir/inner")),
            from.root().join(format!("{side}-dir/moved")),
        )
        .unwrap();
        std::fs::remove_file(from.root().join(format!("{side}-link"))).unwrap();
        converged(&a, &b).await;
        assert_eq!(read(to.root(), &format!("{side}-new.html")), "edited");
        assert!(!to.root().join(format!("{side}-link")).exists());
        assert!(!to.root().join(format!("{side}-dir/inner")).exists());
        match &snapshot(to.root())[&format!("{side}-dir/moved/deep.css")] {
            Snap::File { content, mode } => {
                assert_eq!(content, b"deep");
                assert_eq!(*mode, 0o600);
            }
            other => panic!("{other:?}"),
        }
    }
    // Excluded files stay where they are.
    write(a.root(), "debug.log", "local only");
    write(a.root(), "after-log.txt", "goes");
    eventually(WAIT, "after-log.txt on b", || {
        b.root().join("after-log.txt").exists()
    })
    .await;
    assert!(!b.root().join("debug.log").exists());

    // Nothing bounced back: once quiet, nothing is waiting and no conflict was made.
    eventually(WAIT, "an empty backlog", || {
        driver.status().backlog_files == 0
    })
    .await;
    let status = driver.status();
    assert!(status.peer_connected);
    assert_eq!(status.conflicts, 0);
    assert_eq!(served.status().conflicts, 0);
    driver.shutdown().await;
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_link_heals_with_a_conflict_copy_and_nothing_lost() {
    let (a, b) = (Node::new("a"), Node::new("b"));
    write(a.root(), "index.php", "original");
    write(a.root(), "keep.txt", "kept");
    let (driver, served) = start_pair(&a, &b).await;
    // What the daemon notifies: every run's conflicts.
    let reported = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = reported.clone();
    driver.on_report(std::sync::Arc::new(move |report| {
        sink.lock().unwrap().extend(report.conflicts.clone());
    }));
    converged(&a, &b).await;
    let listen = served.local_addr().unwrap().to_string();

    // The link is cut: the serving node stops.
    served.shutdown().await;
    eventually(WAIT, "the driver to notice", || {
        !driver.status().peer_connected
    })
    .await;
    write(a.root(), "index.php", "edited on a");
    write(a.root(), "from-a.txt", "made on a while cut");
    std::thread::sleep(Duration::from_millis(50));
    write(b.root(), "index.php", "edited on b");
    write(b.root(), "from-b.txt", "made on b while cut");
    std::fs::remove_file(b.root().join("keep.txt")).unwrap();

    // It comes back on the same address.
    let mut config = b.config("b", "a", &a, "127.0.0.1:1");
    config.listen = listen.parse().unwrap();
    let served = LiveMirror::start(config).await.unwrap();
    converged(&a, &b).await;
    let tree = snapshot(a.root());
    assert_eq!(read(a.root(), "from-a.txt"), "made on a while cut");
    assert_eq!(read(a.root(), "from-b.txt"), "made on b while cut");
    assert!(!a.root().join("keep.txt").exists(), "the deletion crossed");
    // Both edits of index.php survive: the newer under its name, the other as a copy.
    assert_eq!(read(a.root(), "index.php"), "edited on b");
    let copies: Vec<&Snap> = tree
        .iter()
        .filter(|(path, _)| path.starts_with("index.conflict-a-"))
        .map(|(_, snap)| snap)
        .collect();
    assert_eq!(copies.len(), 1, "{tree:?}");
    assert!(matches!(copies[0], Snap::File { content, .. } if content == b"edited on a"));
    eventually(WAIT, "the conflict in the status", || {
        driver.status().conflicts == 1
    })
    .await;
    let reported = reported.lock().unwrap().clone();
    assert_eq!(reported.len(), 1, "{reported:?}");
    assert_eq!(reported[0].path, std::path::Path::new("index.php"));
    assert!(reported[0]
        .kept_as
        .to_string_lossy()
        .starts_with("index.conflict-a-"));
    driver.shutdown().await;
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_does_not_wait_for_a_peer_that_never_answers() {
    let (a, b) = (Node::new("a"), Node::new("b"));
    write(a.root(), "site.html", "a's");
    // A peer with b's certificate that takes the driver's requests and never answers; its
    // pings keep the link alive, so only the shutdown can end the wait.
    let listener = PeerListener::bind(
        "127.0.0.1:0".parse().unwrap(),
        PeerConfig::new(
            b.identity.clone(),
            vec![a.identity.fingerprint()],
            SERVICE,
            "b",
        ),
    )
    .await
    .unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let called = Arc::new(AtomicBool::new(false));
    let silent = {
        let called = called.clone();
        tokio::spawn(async move {
            let mut stream = listener.accept().await.unwrap();
            let ping = encode(&Message::Ping).unwrap().remove(0);
            loop {
                match tokio::time::timeout(Duration::from_millis(500), stream.recv()).await {
                    Ok(Ok(Some(frame))) => {
                        if let Ok(Some(Message::Call(_))) = Assembler::default().push(&frame) {
                            called.store(true, Ordering::SeqCst);
                        }
                    }
                    Ok(_) => return,
                    Err(_) => {}
                }
                if stream.send(&ping).await.is_err() {
                    return;
                }
            }
        })
    };
    let driver = LiveMirror::start(a.config("a", "b", &b, &address))
        .await
        .unwrap();
    eventually(WAIT, "the driver's first request", || {
        called.load(Ordering::SeqCst)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = Instant::now();
    driver.shutdown().await;
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "shutdown took {:?}",
        start.elapsed()
    );
    silent.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_with_the_wrong_certificate_gets_nothing_in() {
    let (a, b) = (Node::new("a"), Node::new("b"));
    write(b.root(), "site.html", "b's");
    let served = LiveMirror::start(b.config("b", "a", &a, "127.0.0.1:1"))
        .await
        .unwrap();
    let address = served.local_addr().unwrap().to_string();
    // A stranger calling itself "a", with a certificate b did not pin.
    let stranger = Node::new("a");
    write(stranger.root(), "planted.php", "evil");
    let intruder = LiveMirror::start(stranger.config("a", "b", &b, &address))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!intruder.status().peer_connected);
    assert!(!served.status().peer_connected);
    assert!(!b.root().join("planted.php").exists());
    assert!(!stranger.root().join("site.html").exists());
    intruder.shutdown().await;
    served.shutdown().await;
}

/// A frame for `message` whose path `honest` is replaced by `hostile` (same length).
fn forged(message: &Message, honest: &str, hostile: &str) -> Vec<u8> {
    assert_eq!(honest.len(), hostile.len());
    let mut frame = encode(message).unwrap().remove(0);
    let at = frame
        .windows(honest.len())
        .position(|w| w == honest.as_bytes())
        .unwrap();
    frame[at..at + honest.len()].copy_from_slice(hostile.as_bytes());
    frame
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_frames_are_rejected_and_nothing_is_written() {
    let (a, b) = (Node::new("a"), Node::new("b"));
    write(b.root(), "site.html", "b's");
    let outside = tempfile::tempdir().unwrap();
    let served = LiveMirror::start(b.config("b", "a", &a, "127.0.0.1:1"))
        .await
        .unwrap();
    let address = served.local_addr().unwrap();
    // A peer with the right certificate that sends what no honest peer sends.
    let config = PeerConfig::new(
        a.identity.clone(),
        vec![b.identity.fingerprint()],
        SERVICE,
        "a",
    );
    let escape = outside.path().file_name().unwrap().to_str().unwrap();
    let mkdir = |path: &str| {
        Message::Call(Request::Mkdir {
            path: RelPath::new(path).unwrap(),
            mode: 0o755,
            owner: None,
            replace: None,
            xattrs: None,
        })
    };
    let traversal = forged(&mkdir(&format!("xx/{escape}/escaped")), "xx", "..");
    let absolute_path = format!("{}/abs", outside.path().display());
    let absolute = forged(
        &mkdir(&format!("x{}", &absolute_path[1..])),
        &format!("x{}", &absolute_path[1..]),
        &absolute_path,
    );
    let delete = Message::Call(Request::Delete {
        path: RelPath::new("xx/site.html").unwrap(),
        expect: Entry {
            kind: failover_sync::Kind::Dir,
            mode: 0,
            owner: None,
            mtime_ns: 0,
            stat: Default::default(),
            xattrs: None,
        },
    });
    let delete = forged(&delete, "xx/site.html", "../site.html");
    let oversized = vec![0u8; 17 << 20];
    for (what, frame) in [
        ("a `..` path", traversal),
        ("an absolute path", absolute),
        ("a `..` delete", delete),
        ("an oversized frame", oversized),
    ] {
        let mut stream = failover_core::peer::connect(address, &config)
            .await
            .unwrap();
        eventually(WAIT, "the link to come up", || {
            served.status().peer_connected
        })
        .await;
        let _ = stream.send(&frame).await;
        loop {
            let answer = tokio::time::timeout(Duration::from_secs(10), stream.recv()).await;
            match answer {
                Ok(Ok(None)) | Ok(Err(_)) => break,
                Ok(Ok(Some(frame))) => match Assembler::default().push(&frame) {
                    Ok(Some(Message::Ping)) => continue,
                    other => panic!("{what}: got an answer {other:?}"),
                },
                Err(_) => panic!("{what}: the link was not dropped"),
            }
        }
        eventually(WAIT, "the link to be dropped", || {
            !served.status().peer_connected
        })
        .await;
    }
    assert!(!outside.path().join("escaped").exists());
    assert!(!outside.path().join("abs").exists());
    assert_eq!(read(b.root(), "site.html"), "b's");
    assert_eq!(snapshot(b.root()).len(), 1);
    served.shutdown().await;
}

/// The owner and group of `root/rel` (a symlink's own).
fn owner(root: &Path, rel: &str) -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(root.join(rel)).unwrap();
    (meta.uid(), meta.gid())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_and_a_chown_alone_cross_the_live_link() {
    assert!(
        failover_sync::can_keep_owners(),
        "this test needs root: it gives files to other users (it runs as root in scripts/test.sh)"
    );
    let (a, b) = (Node::new("a"), Node::new("b"));
    write(a.root(), "site/index.html", "hello");
    std::os::unix::fs::lchown(a.root().join("site/index.html"), Some(4242), Some(4343)).unwrap();
    let (driver, served) = start_pair(&a, &b).await;
    converged(&a, &b).await;
    assert_eq!(owner(b.root(), "site/index.html"), (4242, 4343));
    // A chown alone, on either side, is a change the watcher reports and the run carries.
    std::os::unix::fs::lchown(a.root().join("site"), Some(4343), Some(4242)).unwrap();
    eventually(WAIT, "the chown on a to reach b", || {
        owner(b.root(), "site") == (4343, 4242)
    })
    .await;
    std::os::unix::fs::symlink("index.html", b.root().join("site/home.html")).unwrap();
    std::os::unix::fs::lchown(b.root().join("site/home.html"), Some(4242), Some(4242)).unwrap();
    std::os::unix::fs::lchown(b.root().join("site/index.html"), Some(5000), Some(5000)).unwrap();
    eventually(WAIT, "the link and the chown on b to reach a", || {
        a.root().join("site/home.html").is_symlink()
            && owner(a.root(), "site/home.html") == (4242, 4242)
            && owner(a.root(), "site/index.html") == (5000, 5000)
    })
    .await;
    eventually(WAIT, "an empty backlog", || {
        driver.status().backlog_files == 0
    })
    .await;
    assert_eq!(driver.status().conflicts, 0);
    driver.shutdown().await;
    served.shutdown().await;
}

/// `len` bytes that do not compress (xorshift), different for each `seed`.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Bytes both nodes have put on the link, once nothing more is being sent.
async fn settled_bytes(driver: &LiveMirror, served: &LiveMirror) -> u64 {
    let sent = || driver.status().link_bytes_sent + served.status().link_bytes_sent;
    let last = std::sync::Mutex::new(u64::MAX);
    let quiet = Wait::up_to(Duration::from_secs(30)).every(Duration::from_millis(400));
    eventually(quiet, "the link to fall quiet", || {
        let now = sent();
        let mut last = last.lock().unwrap();
        let still = *last == now && driver.status().backlog_files == 0;
        *last = now;
        still
    })
    .await;
    sent()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_large_file_and_a_renamed_directory_cross_as_renames_in_a_few_bytes() {
    let (a, b) = (Node::new("a"), Node::new("b"));
    let big = noise(100 << 20, 1);
    let small: Vec<Vec<u8>> = (0..1000).map(|i| noise(4096, i + 2)).collect();
    for node in [&a, &b] {
        std::fs::write(node.root().join("big.bin"), &big).unwrap();
        std::fs::create_dir(node.root().join("photos")).unwrap();
        for (i, data) in small.iter().enumerate() {
            std::fs::write(node.root().join(format!("photos/{i:04}.jpg")), data).unwrap();
        }
    }
    let (driver, served) = start_pair(&a, &b).await;
    let start = settled_bytes(&driver, &served).await;

    // A renamed 100 MiB file.
    std::fs::rename(a.root().join("big.bin"), a.root().join("renamed.bin")).unwrap();
    eventually(WAIT, "the rename on b", || {
        b.root().join("renamed.bin").exists() && !b.root().join("big.bin").exists()
    })
    .await;
    let after_file = settled_bytes(&driver, &served).await;
    let file_bytes = after_file - start;
    eprintln!("renamed 100 MiB file: {file_bytes} B on the link");
    assert!(
        file_bytes < 1 << 20,
        "{file_bytes} bytes for a renamed file"
    );
    assert!(std::fs::read(b.root().join("renamed.bin")).unwrap() == big);

    // A renamed directory of 1,000 files (4 KiB each: 4 MiB that do not compress), the whole
    // tree but one file: no deletion for the mass-deletion rule.
    std::fs::rename(a.root().join("photos"), a.root().join("albums")).unwrap();
    eventually(WAIT, "the directory renamed on b", || {
        !b.root().join("photos").exists()
            && std::fs::read_dir(b.root().join("albums")).is_ok_and(|d| d.count() == 1000)
    })
    .await;
    let dir_bytes = settled_bytes(&driver, &served).await - after_file;
    converged(&a, &b).await;
    for (i, data) in small.iter().enumerate() {
        assert!(&std::fs::read(b.root().join(format!("albums/{i:04}.jpg"))).unwrap() == data);
    }
    eprintln!("renamed directory of 1,000 files: {dir_bytes} B on the link");
    assert!(
        dir_bytes < 1 << 20,
        "{dir_bytes} bytes for a renamed directory"
    );
    // Nothing was deleted on b, so nothing went to its versions area.
    assert!(!b.state.path().join("versions").exists());
    driver.shutdown().await;
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attributes_and_acls_cross_the_live_link_both_ways_when_asked() {
    let (a, b) = (Node::new("a"), Node::new("b"));
    let options = LiveOptions {
        xattrs: XattrKinds {
            user: true,
            acls: true,
        },
        ..LiveOptions::default()
    };
    let served = LiveMirror::start_with(b.config("b", "a", &a, "127.0.0.1:1"), options.clone())
        .await
        .unwrap();
    let address = served.local_addr().unwrap().to_string();
    let driver = LiveMirror::start_with(a.config("a", "b", &b, &address), options)
        .await
        .unwrap();
    eventually(WAIT, "the first run", || {
        driver.status().last_sync.is_some() && served.status().last_sync.is_some()
    })
    .await;
    // A new file with an attribute and an ACL, made aside and moved in (as a deploy does).
    let staging = tempfile::tempdir_in(a.root().parent().unwrap()).unwrap();
    let made = staging.path().join("page.html");
    std::fs::write(&made, "<p>hello</p>").unwrap();
    set_attr(&made, "user.mime_type", b"text/html");
    setfacl(&["-m", "u:12345:r"], &made);
    std::fs::rename(&made, a.root().join("page.html")).unwrap();
    let (page_a, page_b) = (a.root().join("page.html"), b.root().join("page.html"));
    eventually(WAIT, "the page with its attribute and ACL on b", || {
        page_b.exists()
            && attr(&page_b, "user.mime_type").as_deref() == Some(&b"text/html"[..])
            && getfacl(&page_b) == getfacl(&page_a)
    })
    .await;
    assert!(getfacl(&page_b).contains("user:12345:r--"));
    // An ACL changed alone on b crosses back.
    setfacl(&["-m", "u:12345:rw"], &page_b);
    eventually(WAIT, "the ACL change on a", || {
        getfacl(&page_a).contains("user:12345:rw-")
    })
    .await;
    assert_eq!(read(a.root(), "page.html"), "<p>hello</p>");
    driver.shutdown().await;
    served.shutdown().await;
}
