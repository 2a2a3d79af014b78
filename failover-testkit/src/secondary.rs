//! Real secondary name servers (NSD, Knot) that transfer a zone from a primary under test.

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

/// A secondary name server started in its own process group, and stopped (the whole group)
/// when dropped, whatever happens.
#[derive(Debug)]
pub struct Secondary {
    _child: ChildGuard,
    dir: PathBuf,
}

impl Secondary {
    /// Starts `kind` on 127.0.0.1:`port` in `dir` as a secondary of `primary` for `zone`,
    /// taking NOTIFY from the primary's address. It does not wait: ask it until it answers.
    pub fn start(
        kind: SecondaryKind,
        zone: &str,
        dir: &Path,
        port: u16,
        primary: SocketAddr,
    ) -> Self {
        let binary = match kind {
            SecondaryKind::Nsd => program("nsd", "nsd"),
            SecondaryKind::Knot => program("knotd", "knot"),
        };
        let created = |name: &str| {
            std::fs::File::create(dir.join(name))
                .unwrap_or_else(|e| panic!("cannot create {name} in {}: {e}", dir.display()))
        };
        std::fs::create_dir_all(dir.join("xfr")).expect("the secondary's directory created");
        let config_path = dir.join("secondary.conf");
        let config = match kind {
            SecondaryKind::Nsd => nsd_config(zone, dir, port, primary),
            SecondaryKind::Knot => knot_config(zone, dir, port, primary),
        };
        std::fs::write(&config_path, config).expect("the secondary's config written");
        let args: Vec<&OsStr> = match kind {
            SecondaryKind::Nsd => vec!["-d".as_ref(), "-c".as_ref(), config_path.as_os_str()],
            SecondaryKind::Knot => vec!["-c".as_ref(), config_path.as_os_str()],
        };
        let package = match kind {
            SecondaryKind::Nsd => "nsd",
            SecondaryKind::Knot => "knot",
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

    /// The secondary's log, stdout and stderr, for failure messages.
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

fn nsd_config(zone: &str, dir: &Path, port: u16, primary: SocketAddr) -> String {
    let d = dir.display();
    format!(
        r#"server:
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
    request-xfr: {ip}@{primary_port} NOKEY
"#,
        ip = primary.ip(),
        primary_port = primary.port(),
    )
}

fn knot_config(zone: &str, dir: &Path, port: u16, primary: SocketAddr) -> String {
    let d = dir.display();
    format!(
        r#"server:
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
    address: {ip}@{primary_port}
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
