//! Extended attributes and POSIX ACLs of files and directories, mirrored when asked (off by
//! default, as rsync's `-X` and `-A` are): `user.*` names with [`XattrKinds::user`], the ACLs
//! (`system.posix_acl_access`, `system.posix_acl_default`, whose ids cross as numbers) with
//! [`XattrKinds::acls`]. No other name is read or written, whatever a peer sends: `security.*`
//! (SELinux labels are each host's policy; `security.capability` would plant privileges, as
//! setuid would) and `trusted.*` stay each server's own. Symlinks carry none (Linux allows no
//! `user.*` on them). Everything goes through rustix's calls on descriptors opened without
//! following symlinks.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{AtFlags, Mode, OFlags, XattrFlags};
use serde::{Deserialize, Serialize};

/// The ACL of a file or directory.
pub const ACL_ACCESS: &str = "system.posix_acl_access";
/// The default ACL of a directory (what new entries in it inherit).
pub const ACL_DEFAULT: &str = "system.posix_acl_default";

/// Which extended attributes are mirrored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct XattrKinds {
    /// `user.*` attributes.
    pub user: bool,
    /// POSIX ACLs (access and default).
    pub acls: bool,
}

impl XattrKinds {
    /// None.
    pub const OFF: XattrKinds = XattrKinds {
        user: false,
        acls: false,
    };

    /// Whether none is mirrored.
    pub fn is_off(self) -> bool {
        self == Self::OFF
    }

    /// Whether `name` is one of the kinds mirrored.
    pub fn wants(self, name: &str) -> bool {
        (self.user && name.starts_with("user.") && name.len() > 5)
            || (self.acls && (name == ACL_ACCESS || name == ACL_DEFAULT))
    }

    /// What both `self` and `other` mirror.
    pub fn and(self, other: XattrKinds) -> XattrKinds {
        XattrKinds {
            user: self.user && other.user,
            acls: self.acls && other.acls,
        }
    }
}

/// The mirrored attributes of one file or directory: (name, value), sorted by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Xattrs(pub Vec<(String, Vec<u8>)>);

/// Whether two entries' attributes agree: `None` is "not known" (not mirrored, or an index from
/// before attributes were), which agrees with any, as with owners.
pub fn xattrs_agree(a: Option<&Xattrs>, b: Option<&Xattrs>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

/// The attributes of `kinds` on the open file or directory `fd`.
pub(crate) fn read(fd: BorrowedFd<'_>, kinds: XattrKinds) -> io::Result<Xattrs> {
    let mut found = Vec::new();
    for name in list(fd)? {
        if !kinds.wants(&name) {
            continue;
        }
        if let Some(value) = get(fd, &name)? {
            found.push((name, value));
        }
    }
    found.sort();
    Ok(Xattrs(found))
}

/// Makes the attributes of `kinds` on `fd` exactly `wanted`'s (names of other kinds in it are
/// ignored: a peer cannot set them).
pub(crate) fn apply(fd: BorrowedFd<'_>, kinds: XattrKinds, wanted: &Xattrs) -> io::Result<()> {
    let now = read(fd, kinds)?;
    for (name, _) in &now.0 {
        if !wanted.0.iter().any(|(n, _)| n == name) {
            match rustix::fs::fremovexattr(fd, name.as_str()) {
                Ok(()) | Err(rustix::io::Errno::NODATA) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    for (name, value) in &wanted.0 {
        if !kinds.wants(name) || now.0.iter().any(|(n, v)| n == name && v == value) {
            continue;
        }
        rustix::fs::fsetxattr(fd, name.as_str(), value, XattrFlags::empty())?;
    }
    Ok(())
}

/// Opens `name` in `dir` (a file or directory, never through a symlink) to read or set its
/// attributes.
pub(crate) fn open(dir: BorrowedFd<'_>, name: &str) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// What of `kinds` the file system beneath `root` can hold: a probe file is made there (a temp
/// name, which scans and watchers ignore) and tried. Returns the kinds it holds and, when some
/// are missing, why.
pub(crate) fn probe(root: BorrowedFd<'_>, kinds: XattrKinds) -> (XattrKinds, Option<String>) {
    if kinds.is_off() {
        return (kinds, None);
    }
    let temp = crate::replica::temp_name();
    let made = rustix::fs::openat(
        root,
        temp.as_str(),
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    );
    let fd = match made {
        Ok(fd) => fd,
        Err(e) => {
            return (
                XattrKinds::OFF,
                Some(format!("a probe file could not be made there ({e})")),
            )
        }
    };
    let mut held = kinds;
    let mut why = Vec::new();
    if kinds.user {
        if let Err(e) = rustix::fs::fsetxattr(&fd, "user.failover-probe", b"1", XattrFlags::empty())
        {
            held.user = false;
            why.push(format!("user.* extended attributes: {e}"));
        }
    }
    if kinds.acls {
        match get(fd.as_fd(), ACL_ACCESS) {
            Ok(_) => {}
            Err(e) => {
                held.acls = false;
                why.push(format!("POSIX ACLs: {e}"));
            }
        }
    }
    let _ = rustix::fs::unlinkat(root, temp.as_str(), AtFlags::empty());
    (held, (!why.is_empty()).then(|| why.join("; ")))
}

/// The names of every attribute of `fd`.
fn list(fd: BorrowedFd<'_>) -> io::Result<Vec<String>> {
    for _ in 0..4 {
        let size = rustix::fs::flistxattr_query(fd)?;
        if size == 0 {
            return Ok(Vec::new());
        }
        let mut buffer = vec![0u8; size];
        match rustix::fs::flistxattr(fd, &mut buffer) {
            Ok(len) => {
                buffer.truncate(len);
                return Ok(buffer
                    .split(|b| *b == 0)
                    .filter(|n| !n.is_empty())
                    .filter_map(|n| String::from_utf8(n.to_vec()).ok())
                    .collect());
            }
            // Grown since the size was asked: ask again.
            Err(rustix::io::Errno::RANGE) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(io::Error::other(
        "extended attributes kept changing while read",
    ))
}

/// The value of `name` on `fd`; `None` when it has none.
fn get(fd: BorrowedFd<'_>, name: &str) -> io::Result<Option<Vec<u8>>> {
    for _ in 0..4 {
        let size = match rustix::fs::fgetxattr_query(fd, name) {
            Ok(size) => size,
            Err(rustix::io::Errno::NODATA) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut value = vec![0u8; size];
        match rustix::fs::fgetxattr(fd, name, &mut value) {
            Ok(len) => {
                value.truncate(len);
                return Ok(Some(value));
            }
            Err(rustix::io::Errno::NODATA) => return Ok(None),
            Err(rustix::io::Errno::RANGE) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(io::Error::other(format!("{name} kept changing while read")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_chosen_kinds_are_wanted_and_never_security_or_trusted() {
        let both = XattrKinds {
            user: true,
            acls: true,
        };
        for name in ["user.mime_type", ACL_ACCESS, ACL_DEFAULT] {
            assert!(both.wants(name), "{name}");
        }
        for name in [
            "security.capability",
            "security.selinux",
            "trusted.overlay.opaque",
            "system.nfs4_acl",
            "user.",
        ] {
            assert!(!both.wants(name), "{name}");
        }
        let user = XattrKinds {
            user: true,
            acls: false,
        };
        assert!(!user.wants(ACL_ACCESS) && user.wants("user.a"));
        assert!(XattrKinds::OFF.is_off() && !XattrKinds::OFF.wants("user.a"));
    }

    #[test]
    fn unknown_attributes_agree_with_any() {
        let some = Xattrs(vec![("user.a".into(), b"1".to_vec())]);
        assert!(xattrs_agree(None, Some(&some)));
        assert!(xattrs_agree(Some(&some), Some(&some.clone())));
        assert!(!xattrs_agree(Some(&some), Some(&Xattrs::default())));
    }
}

#[cfg(test)]
mod on_disk {
    use super::*;

    #[test]
    fn attributes_are_read_and_applied_on_this_file_system() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("f");
        std::fs::write(&path, "x").expect("a file");
        let fd = std::fs::File::open(&path).expect("opened");
        let kinds = XattrKinds {
            user: true,
            acls: true,
        };
        let wanted = Xattrs(vec![("user.a".to_owned(), b"1".to_vec())]);
        apply(fd.as_fd(), kinds, &wanted).expect("applied");
        assert_eq!(read(fd.as_fd(), kinds).expect("read"), wanted);
        apply(fd.as_fd(), kinds, &Xattrs::default()).expect("removed");
        assert_eq!(read(fd.as_fd(), kinds).expect("read"), Xattrs::default());
    }
}
