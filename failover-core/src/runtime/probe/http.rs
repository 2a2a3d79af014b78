//! The `http` probe: a GET whose status (and optionally body) says whether the site is healthy.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use async_trait::async_trait;

use crate::health::{HealthCheck, Target};
use crate::model::{FailureClass, Outcome};

/// What an `http` check asks and expects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpOptions {
    /// Port to connect to.
    pub port: u16,
    /// Use HTTPS.
    pub tls: bool,
    /// Path and query to GET (`/`, `/health?db=1`).
    pub path: String,
    /// The `Host` (and TLS server name) to ask for; the node's address when unset.
    pub host: Option<String>,
    /// Status codes that mean healthy; empty means any 2xx or 3xx.
    pub expect_status: Vec<u16>,
    /// Text the body must contain (read up to 64 KiB).
    pub body_contains: Option<String>,
    /// Accept any TLS certificate (self-signed on a backend). Dangerous: anyone can answer.
    pub danger_accept_invalid_certs: bool,
}

impl HttpOptions {
    /// GET / over plain HTTP on `port`, any 2xx/3xx is healthy.
    pub fn new(port: u16) -> Self {
        Self {
            port,
            tls: false,
            path: "/".to_owned(),
            host: None,
            expect_status: Vec::new(),
            body_contains: None,
            danger_accept_invalid_certs: false,
        }
    }
}

/// An `http` check that cannot be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpCheckError {
    /// The path does not start with `/`.
    #[error("http check path {0:?} must start with \"/\"")]
    Path(String),
    /// An expected status is not an HTTP status code.
    #[error("http check expect_status {0} is not an HTTP status code (100-599)")]
    Status(u16),
}

/// Healthy when `GET path` on the node answers an expected status (and body).
///
/// Redirects are not followed (a 301 is an answer), proxies from the environment are ignored,
/// and connections are made to the node's address whatever `host` says.
#[derive(Debug)]
pub struct HttpCheck {
    options: HttpOptions,
    /// One client per node address, so that `host` resolves to that address (TLS SNI and
    /// certificate checks use `host`).
    clients: Mutex<HashMap<IpAddr, reqwest::Client>>,
}

/// Longest body read when looking for `body_contains`.
const MAX_BODY: usize = 64 * 1024;

impl HttpCheck {
    /// A check with `options`.
    pub fn new(options: HttpOptions) -> Result<Self, HttpCheckError> {
        if !options.path.starts_with('/') {
            return Err(HttpCheckError::Path(options.path));
        }
        if let Some(bad) = options
            .expect_status
            .iter()
            .find(|s| !(100..=599).contains(*s))
        {
            return Err(HttpCheckError::Status(*bad));
        }
        crate::runtime::crypto::install_crypto_provider();
        Ok(Self {
            options,
            clients: Mutex::new(HashMap::new()),
        })
    }

    fn url_host(&self, address: IpAddr) -> String {
        match (&self.options.host, address) {
            (Some(host), _) => host.clone(),
            (None, IpAddr::V6(v6)) => format!("[{v6}]"),
            (None, IpAddr::V4(v4)) => v4.to_string(),
        }
    }

    fn client(&self, target: &Target) -> Result<reqwest::Client, String> {
        let mut clients = self
            .clients
            .lock()
            .map_err(|_| "client cache lock poisoned".to_owned())?;
        if let Some(client) = clients.get(&target.address) {
            return Ok(client.clone());
        }
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("failoverd/", env!("CARGO_PKG_VERSION")))
            .tls_danger_accept_invalid_certs(self.options.danger_accept_invalid_certs);
        if let Some(host) = &self.options.host {
            builder = builder.resolve(host, SocketAddr::new(target.address, self.options.port));
        }
        let client = builder.build().map_err(|e| format!("http client: {e}"))?;
        clients.insert(target.address, client.clone());
        Ok(client)
    }

    async fn get(&self, target: &Target) -> Outcome {
        let client = match self.client(target) {
            Ok(client) => client,
            Err(e) => return Outcome::failed(FailureClass::Misconfigured, e),
        };
        let scheme = if self.options.tls { "https" } else { "http" };
        let url = format!(
            "{scheme}://{}:{}{}",
            self.url_host(target.address),
            self.options.port,
            self.options.path
        );
        let mut response = match client.get(&url).send().await {
            Ok(response) => response,
            Err(e) => {
                let class = if e.is_timeout() {
                    FailureClass::Timeout
                } else if e.is_builder() {
                    FailureClass::Misconfigured
                } else {
                    FailureClass::Unreachable
                };
                return Outcome::failed(class, format!("GET {url}: {}", error_chain(&e)));
            }
        };
        let status = response.status().as_u16();
        let expected = if self.options.expect_status.is_empty() {
            (200..400).contains(&status)
        } else {
            self.options.expect_status.contains(&status)
        };
        if !expected {
            return Outcome::failed(
                FailureClass::Unhealthy,
                format!(
                    "GET {url}: status {status} (expected {})",
                    self.expected_text()
                ),
            );
        }
        if let Some(needle) = &self.options.body_contains {
            let mut body = Vec::new();
            loop {
                match response.chunk().await {
                    Ok(Some(chunk)) => {
                        body.extend_from_slice(&chunk);
                        if body.len() >= MAX_BODY {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        return Outcome::failed(
                            FailureClass::Unreachable,
                            format!("GET {url}: reading body: {}", error_chain(&e)),
                        )
                    }
                }
            }
            if !String::from_utf8_lossy(&body).contains(needle.as_str()) {
                return Outcome::failed(
                    FailureClass::Unhealthy,
                    format!("GET {url}: status {status} but the body does not contain {needle:?}"),
                );
            }
        }
        Outcome::healthy(format!("HTTP {status}"))
    }

    fn expected_text(&self) -> String {
        if self.options.expect_status.is_empty() {
            "2xx or 3xx".to_owned()
        } else {
            self.options
                .expect_status
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(" or ")
        }
    }
}

/// reqwest's own message hides the cause behind layers ("error sending request for url (...):
/// client error (Connect): tcp connect error: ..."): say what kind of failure it was and the
/// root cause.
fn error_chain(error: &reqwest::Error) -> String {
    let mut root: &dyn std::error::Error = error;
    while let Some(cause) = root.source() {
        root = cause;
    }
    let kind = if error.is_connect() {
        "cannot connect"
    } else if error.is_timeout() {
        "timed out"
    } else if error.is_body() || error.is_decode() {
        "bad body"
    } else {
        "request failed"
    };
    if std::ptr::addr_eq(root, error) {
        format!("{kind}: {error}")
    } else {
        format!("{kind}: {root}")
    }
}

#[async_trait]
impl HealthCheck for HttpCheck {
    fn kind(&self) -> &'static str {
        "http"
    }

    async fn probe(&self, target: &Target) -> Outcome {
        match tokio::time::timeout(target.timeout, self.get(target)).await {
            Ok(outcome) => outcome,
            Err(_) => super::failure::timeout_failure(
                SocketAddr::new(target.address, self.options.port),
                "GET from",
                target.timeout,
            ),
        }
    }
}
