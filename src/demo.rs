//! `failoverd demo`: two web nodes of its own on loopback, the zone served, one node taken
//! down and back, so that a newcomer sees the answer move.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use hickory_proto::rr::{Name, RData, RecordType};
use http_body_util::Full;
use hyper::body::Bytes;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::daemon::Daemon;

const ZONE: &str = "\
$ORIGIN test.ru.
$TTL 10
@    IN SOA ns1.test.ru. hostmaster.test.ru. ( 1 3600 600 86400 10 )
     IN NS  ns1.test.ru.
ns1  IN A   127.0.0.1
@    IN MX  10 mail.test.ru.
mail IN A   127.0.0.1
";

/// Options of the demo.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Where to serve the zone.
    pub listen: SocketAddr,
    /// Port of the two web nodes (on 127.0.0.2 and 127.0.0.3).
    pub web_port: u16,
    /// Stop after one failover and failback instead of serving until Ctrl-C.
    pub exit_after_cycle: bool,
}

/// A tiny web node: answers every GET with 200 and its name.
struct WebNode {
    name: &'static str,
    address: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl WebNode {
    fn new(name: &'static str, address: SocketAddr) -> Self {
        Self {
            name,
            address,
            task: None,
        }
    }

    async fn start(&mut self) -> anyhow::Result<()> {
        let listener = TcpListener::bind(self.address).await.with_context(|| {
            format!(
                "web node {} cannot listen on {} (is the port in use? try --web-port)",
                self.name, self.address
            )
        })?;
        let name = self.name;
        self.task = Some(tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |_request| async move {
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(format!(
                            "hello from {name}\n"
                        )))))
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        }));
        Ok(())
    }

    async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            // Aborting drops the listener and every open connection with it.
            task.abort();
            let _ = task.await;
        }
    }
}

/// A port free on both 127.0.0.2 and 127.0.0.3 (both web nodes use the same one).
fn free_web_port() -> anyhow::Result<u16> {
    for _ in 0..50 {
        let first = std::net::TcpListener::bind("127.0.0.2:0")?;
        let port = first.local_addr()?.port();
        if std::net::TcpListener::bind(("127.0.0.3", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("found no port free on both 127.0.0.2 and 127.0.0.3")
}

/// Asks the DNS server at `server` for the A records of `name`, the way `dig` would.
pub async fn query_a(server: SocketAddr, name: &str) -> anyhow::Result<Vec<IpAddr>> {
    let response = failover_dns::query(
        server,
        &Name::from_ascii(name)?,
        RecordType::A,
        failover_dns::Transport::Udp,
        Duration::from_secs(2),
    )
    .await?;
    Ok(response
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            _ => None,
        })
        .collect())
}

fn show(addresses: &[IpAddr]) -> String {
    let names: Vec<String> = addresses
        .iter()
        .map(|a| match a.to_string().as_str() {
            "127.0.0.2" => "127.0.0.2 (master)".to_owned(),
            "127.0.0.3" => "127.0.0.3 (slave)".to_owned(),
            other => other.to_owned(),
        })
        .collect();
    if names.is_empty() {
        "no address".to_owned()
    } else {
        names.join(", ")
    }
}

/// Polls the server until the answer for `test.ru` is `want` (bounded by `limit`).
async fn wait_for_answer(
    server: SocketAddr,
    want: &[IpAddr],
    limit: Duration,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Ok(answer) = query_a(server, "test.ru.").await {
            if answer == want {
                return Ok(started.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!(
        "the answer did not become {} within {}",
        show(want),
        humantime::format_duration(limit)
    )
}

fn config_text(dir: &Path, options: &DemoOptions) -> String {
    format!(
        r#"
[zone]
name = "test.ru"
file = "db.test.ru"
listen = ["{listen}"]
state_dir = "{state}"
records = [{{ name = "@", ttl = 10 }}, {{ name = "www", ttl = 10 }}]

[probe]
interval = "1s"
timeout = "500ms"
jitter = "0s"
fall = 3
rise = 1

[[node]]
name = "master"
address = "127.0.0.2"

[[node]]
name = "slave"
address = "127.0.0.3"

[[check]]
name = "http"
kind = "http"
port = {port}
critical = true

[policy]
kind = "active-passive"
order = ["master", "slave"]
failback = "auto"
failback_after = "5s"
all_down = "keep-last"
"#,
        listen = options.listen,
        state = dir.join("state").display(),
        port = options.web_port,
    )
}

/// Runs the demo.
pub async fn run(mut options: DemoOptions) -> anyhow::Result<()> {
    if options.web_port == 0 {
        options.web_port = free_web_port()?;
    }
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    std::fs::write(dir.path().join("db.test.ru"), ZONE)?;
    let config_path = dir.path().join("failoverd.toml");
    let text = config_text(dir.path(), &options);
    std::fs::write(&config_path, &text)?;
    let config = Config::parse(&text, &config_path).map_err(|errors| {
        anyhow::anyhow!(errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n"))
    })?;

    let master_ip: IpAddr = "127.0.0.2".parse()?;
    let slave_ip: IpAddr = "127.0.0.3".parse()?;
    let mut master = WebNode::new("master", SocketAddr::new(master_ip, options.web_port));
    let mut slave = WebNode::new("slave", SocketAddr::new(slave_ip, options.web_port));
    master.start().await?;
    slave.start().await?;
    println!(
        "web nodes: master on {}, slave on {}",
        master.address, slave.address
    );

    let daemon = Daemon::start(&config).await?;
    // With port 0 the server picked one: ask it.
    let server = daemon
        .dns_addresses()
        .first()
        .copied()
        .unwrap_or(options.listen);
    println!(
        "serving zone test.ru on {server}; probing http every 1s, down after 3 failures, failback after 5s"
    );
    println!("try: dig @{} -p {} test.ru", server.ip(), server.port());

    let result = cycle(server, &mut master, master_ip, slave_ip, &daemon).await;
    if result.is_ok() && !options.exit_after_cycle {
        println!("still serving test.ru on {server}; stop with Ctrl-C");
        crate::shutdown_signal().await;
    }
    daemon.shutdown().await;
    master.stop().await;
    slave.stop().await;
    result
}

async fn cycle(
    server: SocketAddr,
    master: &mut WebNode,
    master_ip: IpAddr,
    slave_ip: IpAddr,
    daemon: &Daemon,
) -> anyhow::Result<()> {
    wait_for_answer(server, &[master_ip], Duration::from_secs(10)).await?;
    let serial = daemon.zone().serial();
    println!("answer: test.ru A {} (serial {serial})", show(&[master_ip]));

    tokio::time::sleep(Duration::from_secs(2)).await;
    println!("stopping the web server on master ...");
    master.stop().await;
    let took = wait_for_answer(server, &[slave_ip], Duration::from_secs(20)).await?;
    println!(
        "answer: test.ru A {} after {:.1} s (serial {})",
        show(&[slave_ip]),
        took.as_secs_f64(),
        daemon.zone().serial()
    );

    tokio::time::sleep(Duration::from_secs(2)).await;
    println!("starting the web server on master again ...");
    master.start().await?;
    let took = wait_for_answer(server, &[master_ip], Duration::from_secs(30)).await?;
    println!(
        "answer: test.ru A {} after {:.1} s, once master had been up for failback_after (serial {})",
        show(&[master_ip]),
        took.as_secs_f64(),
        daemon.zone().serial()
    );
    let status = daemon.status().borrow().clone();
    println!("events:");
    for event in &status.recent_events {
        println!("  {} {event}", humantime::format_rfc3339_seconds(event.at));
    }
    Ok(())
}
