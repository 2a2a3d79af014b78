//! A real BIND 9 (`named`) serving one primary zone from a file, with an rndc control channel.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{dig, free_port, program, ChildGuard};

/// What provides named, rndc and dig.
const PACKAGES: &str = "bind9 bind9-dnsutils";

/// The secret of the rndc key named.conf and the default rndc.conf share.
pub const RNDC_SECRET: &str = "srtdrM421VuE31JNJ9Oskjy2rZqgnPCKsSdVbRbAYds=";

/// How long named may take to load the zone and answer.
const START_LIMIT: Duration = Duration::from_secs(15);

/// A TSIG key statement for named.conf.
#[derive(Clone, Debug)]
pub struct BindKey {
    /// The key's name.
    pub name: String,
    /// Its algorithm as BIND spells it (`hmac-sha256`).
    pub algorithm: String,
    /// The secret, base64.
    pub secret: String,
}

/// A `named` running in the foreground in a temp dir on free ports of 127.0.0.1; killed when
/// dropped, whatever happens.
#[derive(Debug)]
pub struct Bind {
    child: ChildGuard,
    dir: tempfile::TempDir,
    zone: String,
    /// The DNS port (UDP and TCP).
    pub port: u16,
    /// The rndc control port.
    pub control_port: u16,
}

impl Bind {
    /// Starts BIND serving `zone_text` as the primary of `zone` (file `db.<zone>` in its
    /// directory); `zone_options` go into the zone statement (e.g. `allow-update { key "k"; };`),
    /// `keys` into named.conf. Returns once it answers the zone's SOA; an `rndc.conf` for it is
    /// written in its directory.
    pub fn start(zone: &str, zone_text: &str, zone_options: &str, keys: &[BindKey]) -> Self {
        let named = program("named", PACKAGES);
        let dir = crate::temp_dir();
        let (port, control_port) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
        let path = |name: &str| dir.path().join(name).display().to_string();
        let zone_file = path(&format!("db.{zone}"));
        std::fs::write(&zone_file, zone_text).expect("the zone file written");
        let mut keys_text =
            format!("key \"rndc-key\" {{ algorithm hmac-sha256; secret \"{RNDC_SECRET}\"; }};\n");
        for key in keys {
            keys_text.push_str(&format!(
                "key \"{}\" {{ algorithm {}; secret \"{}\"; }};\n",
                key.name, key.algorithm, key.secret
            ));
        }
        let conf = format!(
            "options {{\n  directory \"{dir}\";\n  listen-on port {port} {{ 127.0.0.1; }};\n  listen-on-v6 {{ none; }};\n  \
             pid-file \"{pid}\";\n  session-keyfile \"{session}\";\n  recursion no;\n  dnssec-validation no;\n  notify no;\n}};\n\
             {keys_text}\
             controls {{ inet 127.0.0.1 port {control_port} allow {{ 127.0.0.1; }} keys {{ \"rndc-key\"; }}; }};\n\
             zone \"{zone}\" {{ type primary; file \"{zone_file}\"; {zone_options} }};\n",
            dir = dir.path().display(),
            pid = path("named.pid"),
            session = path("session.key"),
        );
        std::fs::write(path("named.conf"), conf).expect("named.conf written");
        let log = std::fs::File::create(path("named.log")).expect("named.log created");
        let child = ChildGuard::spawn(
            Command::new(&named)
                .args(["-g", "-u", "root", "-c", &path("named.conf")])
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("named.log opened twice"))
                .stderr(log),
            PACKAGES,
        );
        let mut bind = Self {
            child,
            dir,
            zone: zone.to_owned(),
            port,
            control_port,
        };
        bind.write_rndc_conf("rndc.conf", RNDC_SECRET, control_port);
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if let Ok(Some(status)) = bind.child.try_wait() {
                panic!("named exited with {status} at start:\n{}", bind.log());
            }
            if !bind.dig(zone, "SOA").is_empty() {
                return bind;
            }
            assert!(
                Instant::now() < deadline,
                "named did not answer within {START_LIMIT:?}:\n{}",
                bind.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `name` in its directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Where it answers DNS.
    pub fn address(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    /// Its log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("named.log")).unwrap_or_default()
    }

    /// Writes an rndc.conf `name` for this server with the given secret and control port (a
    /// wrong one for broken reloads); its path.
    pub fn write_rndc_conf(&self, name: &str, secret: &str, port: u16) -> PathBuf {
        let path = self.path(name);
        std::fs::write(
            &path,
            format!(
                "key \"rndc-key\" {{ algorithm hmac-sha256; secret \"{secret}\"; }};\n\
                 options {{ default-key \"rndc-key\"; default-server 127.0.0.1; default-port {port}; }};\n"
            ),
        )
        .expect("rndc.conf written");
        path
    }

    /// `rndc -c <rndc_conf> reload <zone>`, as a zone file writer's reload command.
    pub fn reload_command(&self, rndc_conf: &Path) -> Vec<String> {
        vec![
            program("rndc", PACKAGES).display().to_string(),
            "-c".into(),
            rndc_conf.display().to_string(),
            "reload".into(),
            self.zone.clone(),
        ]
    }

    /// `dig +short` against this BIND, lines sorted.
    pub fn dig(&self, name: &str, rtype: &str) -> Vec<String> {
        let output = dig(
            self.address(),
            &[name, rtype, "+short", "+time=1", "+tries=2"],
        );
        let mut lines: Vec<String> = output
            .lines()
            .filter(|line| !line.starts_with(';') && !line.is_empty())
            .map(str::to_owned)
            .collect();
        lines.sort();
        lines
    }

    /// The zone's serial as BIND serves it.
    pub fn serial(&self) -> u32 {
        let soa = self.dig(&self.zone, "SOA");
        let line = soa
            .first()
            .unwrap_or_else(|| panic!("no SOA:\n{}", self.log()));
        line.split_whitespace()
            .nth(2)
            .and_then(|serial| serial.parse().ok())
            .unwrap_or_else(|| panic!("not a +short SOA: {line:?}"))
    }
}
