//! The client side of the admin listener, for `failoverd status` and `failoverd admin`: HTTPS
//! with the listener's certificate pinned when `[admin] tls` is on, plain HTTP otherwise (which
//! the config allows off loopback only with `danger_plain_http`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use failover_core::peer::{Fingerprint, Identity};

use crate::config::{AdminConfig, Config, Naming, Role};

/// The admin listener a command talks to, and how.
#[derive(Debug)]
pub struct Listener {
    /// `https://192.0.2.10:8053` or `http://127.0.0.1:8053`.
    pub base_url: String,
    /// Over HTTPS: the certificate pinned, and whose it is (for error messages).
    pub pinned: Option<(Fingerprint, String)>,
}

impl Listener {
    /// The listener of `config`'s `[admin]`, of the node `naming` names (`--node`,
    /// `FAILOVERD_NODE`, else the host name).
    ///
    /// `--node NAME` with `listen` on every address (`0.0.0.0`, `::`) addresses NAME's
    /// `address`; otherwise the address is `listen` (every address: loopback). Over HTTPS the
    /// pinned certificate is the `[admin] certificate` file's when one is configured, else the
    /// named node's `fingerprint`, else this server's `[identity]` certificate (its own
    /// listener's).
    pub fn of(config: &Config, naming: &Naming<'_>) -> Result<Self, String> {
        let admin = config.admin.as_ref().ok_or_else(|| {
            format!(
                "{} has no [admin] section: add one (listen = \"127.0.0.1:8053\") and restart the daemon",
                config.path.display()
            )
        })?;
        let told = naming.flag.or(naming.env).is_some();
        let node = if told {
            config
                .choose(Role::Daemon, naming)
                .map_err(|e| e.to_string())?
        } else {
            // The host name is a hint only: no match means this server's own key below.
            config.choose(Role::Daemon, naming).ok().flatten()
        };
        let node = node.and_then(|name| config.nodes.iter().find(|n| n.name == name));
        let mut address = admin.listen;
        if address.ip().is_unspecified() {
            let ip = match (naming.flag.and(node), address.ip()) {
                (Some(node), _) => node.address,
                (None, IpAddr::V4(_)) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                (None, IpAddr::V6(_)) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            };
            address = SocketAddr::new(ip, address.port());
        }
        if !admin.tls {
            return Ok(Self {
                base_url: format!("http://{address}"),
                pinned: None,
            });
        }
        let pinned = match (&admin.certificate, node) {
            (Some(certificate), _) => (
                first_certificate(certificate)?,
                format!(
                    "the certificate of [admin] certificate {}",
                    certificate.display()
                ),
            ),
            (None, Some(node)) if node.fingerprint.is_some() || naming.flag.is_some() => {
                let fingerprint = node.fingerprint.ok_or_else(|| format!(
                    "[admin] tls: [[node]] {:?} has no fingerprint to pin: add fingerprint = \"sha256:...\" to its table (failoverd keygen --show prints it on that server)",
                    node.name
                ))?;
                (
                    fingerprint,
                    format!("[[node]] {:?}'s fingerprint", node.name),
                )
            }
            (None, _) => own_certificate(config)?,
        };
        Ok(Self {
            base_url: format!("https://{address}"),
            pinned: Some(pinned),
        })
    }

    fn client(&self) -> Result<reqwest::Client, String> {
        failover_core::install_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .timeout(std::time::Duration::from_secs(5));
        if let Some((fingerprint, _)) = &self.pinned {
            let tls = failover_core::peer::pinned_https_client(vec![*fingerprint])
                .map_err(|e| format!("TLS client: {e}"))?;
            builder = builder.tls_backend_preconfigured(tls).https_only(true);
        }
        builder.build().map_err(|e| e.to_string())
    }

    fn unreachable(&self, url: &str, error: &reqwest::Error) -> String {
        let mut root: &dyn std::error::Error = error;
        while let Some(cause) = root.source() {
            root = cause;
        }
        match &self.pinned {
            Some((fingerprint, whose)) => format!(
                "cannot reach the daemon at {url}: {root} (over HTTPS, pinning {fingerprint}: {whose}; a listener with another certificate is refused; is failoverd running with this config?)"
            ),
            None => format!(
                "cannot reach the daemon at {url}: {root} (is failoverd running with this config?)"
            ),
        }
    }
}

/// The fingerprint of the first certificate in a PEM file.
fn first_certificate(path: &std::path::Path) -> Result<Fingerprint, String> {
    let certificates =
        Identity::load_certificates(path).map_err(|e| format!("[admin] tls: {e}"))?;
    certificates
        .first()
        .map(|c| Fingerprint::of(c))
        .ok_or_else(|| format!("[admin] tls: no certificate in {}", path.display()))
}

/// This server's `[identity]` certificate: what its own listener serves.
fn own_certificate(config: &Config) -> Result<(Fingerprint, String), String> {
    let path = &config.identity.certificate;
    let fingerprint = first_certificate(path).map_err(|e| {
        format!("{e}; nothing else to pin: name the node with --node NAME (its [[node]] fingerprint is pinned), or run this on the server, beside its [identity] certificate")
    })?;
    Ok((fingerprint, format!("this server's key {}", path.display())))
}

/// GETs `path` from the admin listener.
pub async fn get(config: &Config, naming: &Naming<'_>, path: &str) -> Result<String, ClientError> {
    let listener = Listener::of(config, naming).map_err(ClientError::Config)?;
    let url = format!("{}{path}", listener.base_url);
    let response = listener
        .client()
        .map_err(ClientError::Config)?
        .get(&url)
        .send()
        .await
        .map_err(|e| ClientError::Unavailable(listener.unreachable(&url, &e)))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| ClientError::Unavailable(listener.unreachable(&url, &e)))?;
    if status.is_success() {
        Ok(text)
    } else {
        Err(ClientError::Refused(format!("{url}: {status}: {text}")))
    }
}

/// POSTs the override `command` (`drain/NODE`, ...) with the token; returns what the daemon
/// says it did.
pub async fn admin(
    config: &Config,
    naming: &Naming<'_>,
    command: &str,
) -> Result<String, ClientError> {
    let listener = Listener::of(config, naming).map_err(ClientError::Config)?;
    let url = format!("{}/admin/{command}", listener.base_url);
    let token = config
        .admin
        .as_ref()
        .map(AdminConfig::token)
        .transpose()
        .map_err(ClientError::Config)?
        .flatten()
        .ok_or_else(|| {
            ClientError::Config(format!(
                "{}: [admin] has no token_file: overrides are refused (add token_file = \"PATH\" with a token of 16 or more characters, and restart the daemon)",
                config.path.display()
            ))
        })?;
    let response = listener
        .client()
        .map_err(ClientError::Config)?
        .post(&url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| ClientError::Unavailable(listener.unreachable(&url, &e)))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| ClientError::Unavailable(listener.unreachable(&url, &e)))?;
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    if status.is_success() {
        Ok(json["done"].as_str().unwrap_or(&text).to_owned())
    } else {
        Err(ClientError::Refused(
            json["error"].as_str().unwrap_or(&text).to_owned(),
        ))
    }
}

/// Why `failoverd status` or `admin` could not do what it was asked; each kind has its exit
/// code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// The config cannot say where or how to reach the daemon, or with what token (exit 78).
    Config(String),
    /// The daemon could not be reached, or did not show the pinned certificate (exit 69).
    Unavailable(String),
    /// The daemon answered and refused (a wrong token, an override that does not fit; exit 1).
    Refused(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Config(message) | Self::Unavailable(message) | Self::Refused(message) => {
                f.write_str(message)
            }
        }
    }
}

impl std::error::Error for ClientError {}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;

    const FP_MASTER: &str =
        "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const FP_SLAVE: &str =
        "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    /// Two nodes, master's fingerprint pinned, `[admin]` with `admin`.
    fn with_admin(admin: &str) -> Config {
        let source = format!(
            r#"
[zone]
name = "test.ru"
file = "db.test.ru"
listen = ["127.0.0.1:5353"]
state_dir = "state"
records = [{{ name = "@", ttl = 10 }}]

[[node]]
name = "master"
address = "192.0.2.1"
fingerprint = "{FP_MASTER}"

[[node]]
name = "slave"
address = "198.51.100.2"

[[check]]
name = "web"
kind = "tcp"
port = 80
critical = true

[policy]
kind = "active-passive"

[admin]
{admin}
"#
        );
        Config::parse(&source, std::path::Path::new("/nonexistent/failoverd.toml")).unwrap()
    }

    fn naming(flag: Option<&str>) -> Naming<'_> {
        Naming {
            flag,
            env: None,
            host: Some("some-laptop"),
        }
    }

    #[test]
    fn a_named_node_on_a_listener_on_every_address_is_asked_at_its_address_pinning_its_fingerprint()
    {
        let config = with_admin("listen = \"0.0.0.0:8053\"\ntls = true");
        let listener = Listener::of(&config, &naming(Some("master"))).unwrap();
        assert_eq!(listener.base_url, "https://192.0.2.1:8053");
        let (pinned, whose) = listener.pinned.unwrap();
        assert_eq!(pinned.to_string(), FP_MASTER);
        assert_eq!(whose, "[[node]] \"master\"'s fingerprint");
    }

    #[test]
    fn a_named_node_without_a_fingerprint_is_an_error_not_another_pin() {
        let config = with_admin("listen = \"[::]:8053\"\ntls = true");
        let error = Listener::of(&config, &naming(Some("slave"))).unwrap_err();
        assert!(
            error.contains("[[node]] \"slave\" has no fingerprint to pin"),
            "{error}"
        );
        assert!(!error.contains(FP_SLAVE));
    }

    #[test]
    fn unnamed_it_asks_loopback_and_pins_this_servers_own_certificate_or_says_what_is_missing() {
        let config = with_admin("listen = \"[::]:8053\"\ntls = true");
        let error = Listener::of(&config, &naming(None)).unwrap_err();
        assert!(error.contains("/nonexistent/node.crt"), "{error}");
        assert!(error.contains("--node NAME"), "{error}");

        let plain = with_admin("listen = \"127.0.0.1:8053\"");
        let listener = Listener::of(&plain, &naming(None)).unwrap();
        assert_eq!(listener.base_url, "http://127.0.0.1:8053");
        assert!(listener.pinned.is_none());
    }
}
