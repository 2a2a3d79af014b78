//! A lab of network namespaces for end-to-end tests: `dc1`, `dc2`, `witness` and `client` on one bridge, each server running the real `failoverd` and a web server; faults by nftables.
//!
//! Everything lives in namespaces the lab creates (`fo<pid>-<role>`, addresses 10.88.0.0/24 on a
//! bridge in its own namespace with no uplink), so no packet leaves them. Dropping the lab kills
//! its processes and deletes its namespaces, also when a test panics; namespaces left behind by
//! a killed run are removed by the next one.
//!
//! Every server runs from one config file at one path (`etc/failoverd.toml`), as the same file
//! copied to real servers would be: each process gets its own mount namespace (`ip netns exec`
//! makes one) in which its own directory (`dc1/`: its key, state, web root, events) is mounted
//! on the path the file names (`server/`), and `--node` says which server it is.
#![allow(clippy::unwrap_used, dead_code)] // tests; not every test uses every helper

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Probe timing of a lab.
#[derive(Clone, Copy, Debug)]
pub struct Profile {
    /// Name in reports.
    pub name: &'static str,
    /// `[probe] interval`.
    pub interval: Duration,
    /// `[probe] timeout`.
    pub timeout: Duration,
    /// `[probe] jitter`.
    pub jitter: Duration,
    /// `[probe] fall`.
    pub fall: u32,
    /// `[cluster] observer_timeout`.
    pub observer_timeout: Duration,
}

impl Profile {
    /// The documented defaults.
    pub const DEFAULT: Profile = Profile {
        name: "default",
        interval: Duration::from_secs(2),
        timeout: Duration::from_secs(1),
        jitter: Duration::from_millis(200),
        fall: 3,
        observer_timeout: Duration::from_secs(10),
    };

    /// A fast profile: probes every 500 ms.
    pub const FAST: Profile = Profile {
        name: "fast",
        interval: Duration::from_millis(500),
        timeout: Duration::from_millis(300),
        jitter: Duration::from_millis(50),
        fall: 3,
        observer_timeout: Duration::from_secs(3),
    };

    /// The documented detection bound: fall × (interval + jitter) + timeout + one exchange
    /// (allowed 1 s, with the client's own polling).
    pub fn detection_bound(&self) -> Duration {
        (self.interval + self.jitter) * self.fall + self.timeout + Duration::from_secs(1)
    }
}

/// How the lab's observers are set up.
#[derive(Clone, Copy, Debug)]
pub struct Setup {
    /// Run a witness in its own namespace.
    pub witness: bool,
    /// Share observations (`[cluster]`, and the `[witness]` when there is one); without, each
    /// daemon decides alone (the classic two-server setup).
    pub shared: bool,
    /// `[cluster] on_partition`, when set explicitly.
    pub on_partition: Option<&'static str>,
    /// Probe timing.
    pub profile: Profile,
    /// Run the live mirror between dc1's and dc2's `www/`.
    pub mirror: bool,
}

/// The servers and their addresses.
pub const DC1: &str = "10.88.0.1";
/// dc2's address.
pub const DC2: &str = "10.88.0.2";
/// The witness's address.
pub const WITNESS: &str = "10.88.0.3";
/// The client's address.
pub const CLIENT: &str = "10.88.0.4";

const ROLES: [(&str, &str); 4] = [
    ("dc1", DC1),
    ("dc2", DC2),
    ("witness", WITNESS),
    ("client", CLIENT),
];

/// Runs a command; panics with its output when it fails.
pub fn run(args: &[&str]) -> Output {
    let output = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (apt-get install iproute2 nftables)", args[0]));
    assert!(
        output.status.success(),
        "{} failed: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Whether this machine can run the lab (root, `ip netns`, `nft`); the reason when not.
pub fn unavailable() -> Option<String> {
    let probe = format!("fo{}-probe", std::process::id());
    let added = Command::new("ip").args(["netns", "add", &probe]).output();
    match added {
        Ok(output) if output.status.success() => {
            let nft = Command::new("ip")
                .args(["netns", "exec", &probe, "nft", "list", "ruleset"])
                .output();
            let _ = Command::new("ip").args(["netns", "del", &probe]).output();
            match nft {
                Ok(output) if output.status.success() => None,
                _ => Some("nft does not run (apt-get install nftables)".to_owned()),
            }
        }
        Ok(output) => Some(format!(
            "ip netns add failed ({}); the lab needs root",
            String::from_utf8_lossy(&output.stderr).trim()
        )),
        Err(e) => Some(format!("ip: {e} (apt-get install iproute2)")),
    }
}

/// Removes namespaces of earlier runs whose process is gone (a run killed by a timeout).
pub fn remove_stale() {
    let Ok(entries) = std::fs::read_dir("/var/run/netns") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("fo")
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("ip").args(["netns", "del", &name]).output();
        }
    }
}

/// A lab: namespaces, keys, configs, the daemons, the witness and the web servers.
pub struct Lab {
    prefix: String,
    dir: tempfile::TempDir,
    namespaces: Vec<String>,
    processes: Vec<(String, Child)>,
    web: Vec<(String, Child)>,
    /// The setup it runs.
    pub setup: Setup,
    started: Instant,
}

impl Lab {
    /// Builds the network and starts everything; returns once both name servers answer.
    pub fn start(setup: Setup) -> Lab {
        remove_stale();
        let prefix = format!("fo{}-{}", std::process::id(), unique());
        let mut lab = Lab {
            prefix,
            dir: tempfile::tempdir().unwrap(),
            namespaces: Vec::new(),
            processes: Vec::new(),
            web: Vec::new(),
            setup,
            started: Instant::now(),
        };
        lab.network();
        lab.configure();
        for node in ["dc1", "dc2"] {
            lab.start_web(node);
        }
        for node in ["dc1", "dc2"] {
            lab.spawn_failoverd(node, "run");
        }
        if setup.witness {
            lab.spawn_failoverd("witness", "witness");
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while lab.answer(DC1).as_deref() != Some(&[DC1.parse().unwrap()][..])
            || lab.answer(DC2).as_deref() != Some(&[DC1.parse().unwrap()][..])
        {
            lab.assert_alive();
            assert!(
                Instant::now() < deadline,
                "the name servers did not answer dc1 within 20 s{}",
                lab.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        lab
    }

    fn ns(&self, role: &str) -> String {
        format!("{}-{role}", self.prefix)
    }

    fn network(&mut self) {
        let bridge = self.ns("br");
        run(&["ip", "netns", "add", &bridge]);
        self.namespaces.push(bridge.clone());
        run(&["ip", "-n", &bridge, "link", "add", "br0", "type", "bridge"]);
        run(&["ip", "-n", &bridge, "link", "set", "br0", "up"]);
        for (index, (role, address)) in ROLES.iter().enumerate() {
            let ns = self.ns(role);
            run(&["ip", "netns", "add", &ns]);
            self.namespaces.push(ns.clone());
            let port = format!("p{index}");
            run(&[
                "ip", "-n", &bridge, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
                "netns", &ns,
            ]);
            run(&["ip", "-n", &bridge, "link", "set", &port, "master", "br0"]);
            run(&["ip", "-n", &bridge, "link", "set", &port, "up"]);
            run(&[
                "ip",
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{address}/24"),
                "dev",
                "eth0",
            ]);
            run(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
            run(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        }
    }

    /// The one config file every server runs from.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("etc").join("failoverd.toml")
    }

    /// Where each server finds its own directory (its mount point).
    fn server_dir(&self) -> PathBuf {
        self.dir.path().join("server")
    }

    /// `role`'s own directory, seen from outside: its key, state, web root and events.
    pub fn own_dir(&self, role: &str) -> PathBuf {
        self.dir.path().join(role)
    }

    // Long: one config file, written as one piece so that it reads like the one on the servers.
    fn configure(&self) {
        use failover::core::peer::Identity;
        let observers: Vec<&str> = if self.setup.witness {
            vec!["dc1", "dc2", "witness"]
        } else {
            vec!["dc1", "dc2"]
        };
        let mut fingerprints = Vec::new();
        for name in &observers {
            let dir = self.own_dir(name);
            let identity = Identity::generate(name).unwrap();
            identity.write(&dir).unwrap();
            fingerprints.push(identity.fingerprint().to_string());
            if self.setup.mirror && *name != "witness" {
                std::fs::create_dir_all(dir.join("www")).unwrap();
            }
        }
        let etc = self.dir.path().join("etc");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::create_dir_all(self.server_dir()).unwrap();
        std::fs::write(
            etc.join("db.test.ru"),
            format!(
                "$ORIGIN test.ru.\n$TTL 10\n@ IN SOA ns1.test.ru. admin.test.ru. ( 1 10 10 10 10 )\n  IN NS ns1.test.ru.\n  IN NS ns2.test.ru.\nns1 IN A {DC1}\nns2 IN A {DC2}\n@ IN A 192.0.2.1\n"
            ),
        )
        .unwrap();
        let p = self.setup.profile;
        let server = self.server_dir();
        let mut config = format!(
            r#"[zone]
name = "test.ru"
file = "db.test.ru"
listen = ["0.0.0.0:53"]
state_dir = "{server}/state"
records = [{{ name = "@", ttl = 10 }}]

[probe]
interval = "{}"
timeout = "{}"
jitter = "{}"
fall = {}

[[node]]
name = "dc1"
address = "{DC1}"
peer_address = "{DC1}:8054"
fingerprint = "{}"

[[node]]
name = "dc2"
address = "{DC2}"
peer_address = "{DC2}:8054"
fingerprint = "{}"

[[check]]
name = "http"
kind = "http"
port = 80
critical = true

[policy]
kind = "active-passive"
order = ["dc1", "dc2"]
failback_after = "5s"

[[notify]]
kind = "command"
command = ["/bin/sh", "-c", "cat >> {events} && echo >> {events}"]

[admin]
listen = "127.0.0.1:8053"

[identity]
certificate = "{server}/node.crt"
key = "{server}/node.key"
"#,
            humantime::format_duration(p.interval),
            humantime::format_duration(p.timeout),
            humantime::format_duration(p.jitter),
            p.fall,
            fingerprints[0],
            fingerprints[1],
            server = server.display(),
            events = server.join("events.jsonl").display(),
        );
        if self.setup.shared {
            let _ = write!(
                config,
                "\n[cluster]\nobserver_timeout = \"{}\"\n",
                humantime::format_duration(p.observer_timeout),
            );
            if let Some(rule) = self.setup.on_partition {
                let _ = writeln!(config, "on_partition = \"{rule}\"");
            }
        }
        if self.setup.shared && self.setup.witness {
            let _ = write!(
                config,
                "\n[witness]\nname = \"witness\"\npeer_address = \"{WITNESS}:8054\"\nfingerprint = \"{}\"\n",
                fingerprints[2]
            );
        }
        if self.setup.mirror {
            let _ = write!(
                config,
                "\n[mirror]\nroot = \"{}\"\n",
                server.join("www").display()
            );
        }
        std::fs::write(self.config_path(), config).unwrap();
    }

    /// `failoverd ARGS` as `role`'s server runs it: in its namespace, its own directory mounted
    /// where the config file expects it.
    fn on_server(&self, role: &str) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.ns(role)])
            .args([
                "sh",
                "-c",
                "mount --bind \"$1\" \"$2\" && shift 2 && exec \"$@\"",
                "sh",
            ])
            .arg(self.own_dir(role))
            .arg(self.server_dir())
            .arg(env!("CARGO_BIN_EXE_failoverd"));
        command
    }

    /// Runs `failoverd ARGS` on `role`'s server (see [`Lab::on_server`]) and waits for it.
    pub fn failoverd(&self, role: &str, args: &[&str]) -> Output {
        self.on_server(role).args(args).output().unwrap()
    }

    /// Starts `failoverd COMMAND` on `role`'s server from the one config file; the daemons are
    /// told their node with `--node`, the witness finds the file's `[witness]` by itself.
    fn spawn_failoverd(&mut self, role: &str, command: &str) {
        // Appended to: a restarted daemon's log follows the earlier run's.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("{role}.log")))
            .unwrap();
        let mut failoverd = self.on_server(role);
        failoverd
            .args([command, "--config"])
            .arg(self.config_path());
        if command == "run" {
            failoverd.args(["--node", role]);
        }
        let child = failoverd
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.processes.push((role.to_owned(), child));
    }

    /// Sends `signal` (`HUP`, `TERM`, `KILL`) to `role`'s failoverd.
    pub fn signal(&self, role: &str, signal: &str) {
        let (_, child) = self.processes.iter().find(|(r, _)| r == role).unwrap();
        run(&["kill", &format!("-{signal}"), &child.id().to_string()]);
    }

    /// Stops `role`'s daemon with `signal` (`TERM`: a clean stop; `KILL`: a crash), waits for
    /// it to exit, and starts it again from the same config file.
    pub fn restart(&mut self, role: &str, signal: &str) {
        self.signal(role, signal);
        let index = self.processes.iter().position(|(r, _)| r == role).unwrap();
        let (_, mut child) = self.processes.remove(index);
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "failoverd in {role} did not stop within 10 s of SIG{signal}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.spawn_failoverd(role, "run");
    }

    /// Starts (again) the web server of `node`.
    pub fn start_web(&mut self, node: &str) {
        let address = ROLES.iter().find(|(r, _)| *r == node).unwrap().1;
        let root = self.dir.path().join(format!("www-{node}"));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("index.html"), format!("{node}\n")).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(node)])
            .args([
                "python3",
                "-m",
                "http.server",
                "80",
                "--bind",
                address,
                "--directory",
            ])
            .arg(&root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.web.push((node.to_owned(), child));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let up = Command::new("ip")
                .args(["netns", "exec", &self.ns(node)])
                .args(["python3", "-c"])
                .arg(format!(
                    "import socket; socket.create_connection(('{address}', 80), 0.5)"
                ))
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if up {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "web server on {node} did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills the web server of `node`.
    pub fn stop_web(&mut self, node: &str) {
        for (_, child) in self.web.iter_mut().filter(|(n, _)| n == node) {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.web.retain(|(n, _)| n != node);
    }

    /// Loads nftables rules (the body of `table inet fault`) into `role`'s namespace, replacing
    /// earlier faults there.
    pub fn fault(&self, role: &str, rules: &str) {
        self.clear(role);
        let ruleset = format!("table inet fault {{\n{rules}\n}}\n");
        let path = self.dir.path().join(format!("fault-{role}.nft"));
        std::fs::write(&path, ruleset).unwrap();
        run(&[
            "ip",
            "netns",
            "exec",
            &self.ns(role),
            "nft",
            "-f",
            path.to_str().unwrap(),
        ]);
    }

    /// Removes the faults of `role`'s namespace.
    pub fn clear(&self, role: &str) {
        let _ = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns(role),
                "nft",
                "delete",
                "table",
                "inet",
                "fault",
            ])
            .stderr(Stdio::null())
            .status();
    }

    /// Drops everything between `a` and `b` (both ways, in both namespaces).
    pub fn cut(&self, a: &str, b: &str) {
        let address = |role: &str| ROLES.iter().find(|(r, _)| *r == role).unwrap().1;
        for (here, there) in [(a, b), (b, a)] {
            self.fault(
                here,
                &format!(
                    "chain input {{ type filter hook input priority 0; ip saddr {} drop; }}\n chain output {{ type filter hook output priority 0; ip daddr {} drop; }}",
                    address(there),
                    address(there)
                ),
            );
        }
    }

    /// Cuts `role` from everyone (all traffic on its interface dropped).
    pub fn isolate(&self, role: &str) {
        self.fault(
            role,
            "chain input { type filter hook input priority 0; iifname \"eth0\" drop; }\n chain output { type filter hook output priority 0; oifname \"eth0\" drop; }",
        );
    }

    /// Drops `percent` % of the packets arriving in every namespace, at random.
    pub fn loss(&self, percent: u32) {
        for (role, _) in ROLES {
            self.fault(
                role,
                &format!(
                    "chain input {{ type filter hook input priority 0; iifname \"eth0\" numgen random mod 100 < {percent} drop; }}"
                ),
            );
        }
    }

    /// What `dig` in the client namespace gets for test.ru A from `server`; `None` when it got
    /// no answer.
    pub fn answer(&self, server: &str) -> Option<Vec<IpAddr>> {
        let output = Command::new("ip")
            .args(["netns", "exec", &self.ns("client")])
            .args(["dig", "+short", "+time=1", "+tries=3"])
            .arg(format!("@{server}"))
            .args(["test.ru", "A"])
            .output()
            .ok()?;
        if !output.status.success() {
            return None;
        }
        let mut addresses: Vec<IpAddr> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        addresses.sort();
        (!addresses.is_empty()).then_some(addresses)
    }

    /// Waits until `server` answers `want`; the time it took.
    pub fn wait_for(&self, server: &str, want: &str, limit: Duration) -> Duration {
        let started = Instant::now();
        let want: IpAddr = want.parse().unwrap();
        loop {
            if self.answer(server).as_deref() == Some(&[want][..]) {
                return started.elapsed();
            }
            self.assert_alive();
            assert!(
                started.elapsed() < limit,
                "{server} did not answer {want} within {limit:?} (answers {:?}){}",
                self.answer(server),
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Watches both name servers for `period`; panics if either answers anything but
    /// `dc1_answers` (from dc1) and `dc2_answers` (from dc2). No answer (loss) is not a change.
    pub fn hold_steady(&self, period: Duration, dc1_answers: &str, dc2_answers: &str) {
        let started = Instant::now();
        while started.elapsed() < period {
            for (server, want) in [(DC1, dc1_answers), (DC2, dc2_answers)] {
                if let Some(answer) = self.answer(server) {
                    assert_eq!(
                        answer,
                        [want.parse::<IpAddr>().unwrap()],
                        "{server} changed its answer after {:?}{}",
                        started.elapsed(),
                        self.logs()
                    );
                }
            }
            self.assert_alive();
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// The events `role`'s notifier received, as JSON objects.
    pub fn events(&self, role: &str) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.own_dir(role).join("events.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The names of `role`'s notified events.
    pub fn event_names(&self, role: &str) -> Vec<String> {
        self.events(role)
            .iter()
            .map(|e| e["event"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    fn assert_alive(&self) {
        for (role, child) in &self.processes {
            // `try_wait` needs `&mut`; /proc tells as well without reaping.
            let alive = Path::new(&format!("/proc/{}", child.id())).exists()
                && !std::fs::read_to_string(format!("/proc/{}/stat", child.id()))
                    .unwrap_or_default()
                    .contains(") Z ");
            assert!(alive, "failoverd in {role} exited{}", self.logs());
        }
    }

    /// The tail of every log, for a failure message.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for (role, _) in &self.processes {
            let text = std::fs::read_to_string(self.dir.path().join(format!("{role}.log")))
                .unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let _ = write!(out, "\n--- {role} log (last 25 lines):\n");
            for line in &lines[lines.len().saturating_sub(25)..] {
                let _ = writeln!(out, "{line}");
            }
        }
        out
    }

    /// The process ids of the lab's `failoverd`s.
    pub fn pids(&self) -> Vec<u32> {
        self.processes.iter().map(|(_, child)| child.id()).collect()
    }

    /// Everything `role`'s `failoverd` logged so far.
    pub fn log(&self, role: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{role}.log"))).unwrap_or_default()
    }

    /// Where the lab keeps its files.
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    /// How long the lab has run.
    pub fn age(&self) -> Duration {
        self.started.elapsed()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for (_, child) in self.processes.iter_mut().chain(self.web.iter_mut()) {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

fn unique() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    NEXT.fetch_add(1, Ordering::SeqCst)
}
