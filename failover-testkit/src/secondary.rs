//! Real name servers run in a temp dir (Knot, NSD), and secondaries that transfer a zone from a
//! primary under test, optionally signing with a TSIG key.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{program, ChildGuard};

/// Which secondary to run.
#[derive(Clone, Copy, Debug)]
pub enum SecondaryKind {
    /// NLnet Labs' NSD.
    Nsd,
    /// CZ.NIC's Knot DNS.
    Knot,
}

/// A TSIG key a secondary signs its requests to the primary with (the testkit knows no
/// workspace type, so the test passes the key's parts).
#[derive(Clone, Debug)]
pub struct SecondaryKey {
    /// The key's name.
    pub name: String,
    /// `hmac-sha256`, `hmac-sha384` or `hmac-sha512`.
    pub algorithm: String,
    /// The secret, base64.
    pub secret: String,
}

/// A name server run by a test in `dir` (its stdout and stderr written there, its own log
/// expected there as `log`), in its own process group, stopped (the whole group) when dropped,
/// whatever happens.
#[derive(Debug)]
pub struct ServerInDir {
    _child: ChildGuard,
    dir: PathBuf,
}

impl ServerInDir {
    /// Starts program `name` (from Debian's `package`) with `args` in `dir`; panics with the
    /// `apt-get install` line when it is missing.
    pub fn start(name: &str, package: &str, args: &[&OsStr], dir: &Path) -> Self {
        let binary = program(name, package);
        let created = |file: &str| {
            std::fs::File::create(dir.join(file))
                .unwrap_or_else(|e| panic!("cannot create {file} in {}: {e}", dir.display()))
        };
        let child = ChildGuard::spawn_group(
            Command::new(&binary)
                .args(args)
                .stdin(Stdio::null())
                .stdout(created("stdout"))
                .stderr(created("stderr")),
            package,
        );
        Self {
            _child: child,
            dir: dir.to_path_buf(),
        }
    }

    /// The server's log, stdout and stderr, for failure messages.
    pub fn log(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        format!(
            "--- log\n{}--- stdout\n{}--- stderr\n{}",
            read("log"),
            read("stdout"),
            read("stderr")
        )
    }
}

impl ServerInDir {
    /// Starts `kind` on 127.0.0.1:`port` in `dir` as a secondary of `primary` for `zone`,
    /// taking NOTIFY from the primary's address. It does not wait: ask it until it answers.
    pub fn secondary(
        kind: SecondaryKind,
        zone: &str,
        dir: &Path,
        port: u16,
        primary: SocketAddr,
    ) -> Self {
        Self::secondary_with_key(kind, zone, dir, port, primary, None)
    }

    /// [`ServerInDir::secondary`] signing its requests to the primary (SOA queries, transfers)
    /// with `key`.
    pub fn secondary_with_key(
        kind: SecondaryKind,
        zone: &str,
        dir: &Path,
        port: u16,
        primary: SocketAddr,
        key: Option<&SecondaryKey>,
    ) -> Self {
        std::fs::create_dir_all(dir.join("xfr")).expect("the secondary's directory created");
        let config_path = dir.join("secondary.conf");
        let config = match kind {
            SecondaryKind::Nsd => nsd_config(zone, dir, port, primary, key),
            SecondaryKind::Knot => knot_config(zone, dir, port, primary, key),
        };
        std::fs::write(&config_path, config).expect("the secondary's config written");
        match kind {
            SecondaryKind::Nsd => Self::start(
                "nsd",
                "nsd",
                &["-d".as_ref(), "-c".as_ref(), config_path.as_os_str()],
                dir,
            ),
            SecondaryKind::Knot => Self::start(
                "knotd",
                "knot",
                &["-c".as_ref(), config_path.as_os_str()],
                dir,
            ),
        }
    }
}

fn nsd_config(
    zone: &str,
    dir: &Path,
    port: u16,
    primary: SocketAddr,
    key: Option<&SecondaryKey>,
) -> String {
    let d = dir.display();
    let (key_clause, key_name) = match key {
        Some(key) => (
            format!(
                "key:\n    name: \"{}\"\n    algorithm: {}\n    secret: \"{}\"\n",
                key.name, key.algorithm, key.secret
            ),
            key.name.clone(),
        ),
        None => (String::new(), "NOKEY".to_owned()),
    };
    format!(
        r#"{key_clause}server:
    ip-address: 127.0.0.1@{port}
    do-ip6: no
    username: ""
    chroot: ""
    zonesdir: "{d}"
    database: ""
    zonelistfile: "{d}/zone.list"
    xfrdfile: "{d}/xfrd.state"
    xfrdir: "{d}/xfr"
    pidfile: "{d}/nsd.pid"
    logfile: "{d}/log"
    verbosity: 2
    server-count: 1
    xfrd-reload-timeout: 0
remote-control:
    control-enable: no
zone:
    name: {zone}
    zonefile: "{zone}.zone"
    allow-notify: 127.0.0.1 NOKEY
    request-xfr: {ip}@{primary_port} {key_name}
"#,
        ip = primary.ip(),
        primary_port = primary.port(),
    )
}

fn knot_config(
    zone: &str,
    dir: &Path,
    port: u16,
    primary: SocketAddr,
    key: Option<&SecondaryKey>,
) -> String {
    let d = dir.display();
    let (key_section, remote_key) = match key {
        Some(key) => (
            format!(
                "key:\n  - id: {}\n    algorithm: {}\n    secret: {}\n",
                key.name, key.algorithm, key.secret
            ),
            format!("\n    key: {}", key.name),
        ),
        None => (String::new(), String::new()),
    };
    format!(
        r#"{key_section}server:
    rundir: "{d}"
    listen: 127.0.0.1@{port}
control:
    listen: "{d}/knot.sock"
log:
  - target: "{d}/log"
    any: info
database:
    storage: "{d}"
remote:
  - id: primary
    address: {ip}@{primary_port}{remote_key}
acl:
  - id: notify-from-primary
    address: {ip}
    action: notify
zone:
  - domain: {zone}
    storage: "{d}"
    file: "{zone}.zone"
    master: primary
    acl: notify-from-primary
"#,
        ip = primary.ip(),
        primary_port = primary.port(),
    )
}
