//! Extended attributes and POSIX ACLs end to end on a file system that holds them (ext4 or a
//! recent tmpfs under the temp directory): they cross when asked, a change of them alone
//! crosses, no other namespace does, and nothing crosses by default. ACLs are set and read
//! with Debian's `setfacl`/`getfacl`, as an operator would.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::{attr, getfacl, set_attr, setfacl, write, Pair};
use failover_sync::XattrKinds;

const BOTH: XattrKinds = XattrKinds {
    user: true,
    acls: true,
};

#[test]
fn attributes_and_acls_cross_and_a_change_of_them_alone_crosses_too() {
    let mut pair = Pair::new();
    pair.config.xattrs = BOTH;
    write(pair.a(), "page.html", "<p>hello</p>");
    write(pair.a(), "uploads/photo.jpg", "jpg");
    let (page_a, page_b) = (pair.a().join("page.html"), pair.b().join("page.html"));
    set_attr(&page_a, "user.mime_type", b"text/html");
    let photo = "uploads/photo.jpg";
    set_attr(&pair.a().join(photo), "user.origin", b"camera");
    set_attr(&page_a, "trusted.local_only", b"stays here");
    setfacl(&["-m", "u:12345:r,g:23456:rw"], &page_a);
    setfacl(&["-d", "-m", "u:12345:rwx"], &pair.a().join("uploads"));
    let first = pair.sync_converged();
    assert!(first.warnings.is_empty(), "{:?}", first.warnings);
    assert_eq!(attr(&page_b, "user.mime_type").unwrap(), b"text/html");
    assert_eq!(attr(&page_b, "trusted.local_only"), None);
    assert!(
        getfacl(&page_b).contains("user:12345:r--"),
        "{}",
        getfacl(&page_b)
    );
    assert_eq!(getfacl(&page_b), getfacl(&page_a));
    let uploads_b = pair.b().join("uploads");
    assert!(getfacl(&uploads_b).contains("default:user:12345:rwx"));
    assert_eq!(getfacl(&uploads_b), getfacl(&pair.a().join("uploads")));

    assert_eq!(
        attr(&pair.b().join(photo), "user.origin").unwrap(),
        b"camera"
    );

    // A change of an ACL alone on b crosses to a, and an attribute removed on a is removed.
    setfacl(&["-m", "u:12345:rw"], &page_b);
    rustix::fs::lremovexattr(pair.a().join(photo), "user.origin").unwrap();
    let second = pair.sync_converged();
    assert_eq!(second.report.copied, 2, "{:?}", second.changes);
    assert!(
        getfacl(&page_a).contains("user:12345:rw-"),
        "{}",
        getfacl(&page_a)
    );
    assert_eq!(getfacl(&page_a), getfacl(&page_b));
    assert_eq!(attr(&pair.b().join(photo), "user.origin"), None);
    assert_eq!(attr(&page_a, "user.mime_type").unwrap(), b"text/html");
    // Nothing was resent for it: no literal data crossed.
    assert_eq!(second.literal_bytes, 0);
}

#[test]
fn by_default_no_attribute_crosses() {
    let pair = Pair::new();
    write(pair.a(), "page.html", "<p>hello</p>");
    set_attr(&pair.a().join("page.html"), "user.mime_type", b"text/html");
    setfacl(&["-m", "u:12345:r"], &pair.a().join("page.html"));
    pair.sync_converged();
    let page_b = pair.b().join("page.html");
    assert_eq!(attr(&page_b, "user.mime_type"), None);
    assert!(!getfacl(&page_b).contains("12345"), "{}", getfacl(&page_b));
}

#[test]
fn a_restored_version_brings_its_acl_back_on_both_sides() {
    let mut pair = Pair::new();
    pair.config.xattrs = BOTH;
    write(pair.a(), "secret.html", "for one user");
    let (page_a, page_b) = (pair.a().join("secret.html"), pair.b().join("secret.html"));
    setfacl(&["-m", "u:12345:r"], &page_a);
    pair.sync_converged();
    // A bad deploy on a: other content, the ACL gone.
    write(pair.a(), "secret.html", "for everyone");
    setfacl(&["-b"], &page_a);
    common::set_mtime(pair.a(), "secret.html", 2_000_000_000);
    pair.sync_converged();
    assert!(!getfacl(&page_b).contains("12345"));

    let versions =
        failover_sync::Versions::new(pair.state.path(), "b", pair.config.versions.unwrap());
    let kept = versions.list(None).unwrap();
    assert_eq!(kept.len(), 1, "{kept:?}");
    versions.restore(pair.b(), &kept[0]).unwrap();
    pair.sync_converged();
    for page in [&page_a, &page_b] {
        assert_eq!(std::fs::read_to_string(page).unwrap(), "for one user");
        assert!(
            getfacl(page).contains("user:12345:r--"),
            "{}",
            getfacl(page)
        );
    }
}
