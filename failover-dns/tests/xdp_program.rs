//! The committed XDP program (`xdp/redirect.o`, what the feature `xdp` loads) is what
//! `xdp/build.sh` makes of `xdp/redirect.c`: the source in the repository is the program shipped.
//!
//! Needs clang (scripts/test.sh installs it); without it the test fails with the apt-get line.
#![allow(clippy::unwrap_used)] // tests

use std::path::Path;
use std::process::Command;

#[test]
fn the_committed_xdp_object_is_built_from_its_source() {
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("xdp");
    let out = tempfile::tempdir().unwrap();
    let built = out.path().join("redirect.o");
    let output = Command::new(here.join("build.sh"))
        .arg(&built)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "xdp/build.sh failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let committed = std::fs::read(here.join("redirect.o")).unwrap();
    let fresh = std::fs::read(&built).unwrap();
    assert!(
        committed == fresh,
        "failover-dns/xdp/redirect.o is not what xdp/build.sh makes of redirect.c \
         ({} bytes committed, {} built): run failover-dns/xdp/build.sh and commit redirect.o",
        committed.len(),
        fresh.len()
    );
}
