//! The webhook notifier: each event as a JSON POST.

use std::time::Duration;

use async_trait::async_trait;

use super::host::host_name;
use crate::event::Event;
use crate::notifier::{Notifier, NotifyError};

/// Where to POST and how.
#[derive(Clone, Debug)]
pub struct WebhookOptions {
    /// The URL (`https://hooks.example.com/failover`).
    pub url: String,
    /// Extra headers (`Authorization: Bearer ...`).
    pub headers: Vec<(String, String)>,
    /// Budget of one POST.
    pub timeout: Duration,
}

/// POSTs every event as one JSON object: the event's fields (as the command hook gets them),
/// plus `host` (this machine) and `summary` (the one-line text). Any 2xx is a delivery.
#[derive(Debug)]
pub struct WebhookNotifier {
    name: String,
    url: reqwest::Url,
    headers: reqwest::header::HeaderMap,
    client: reqwest::Client,
    host: String,
}

impl WebhookNotifier {
    /// A notifier for `options`; the URL and headers are checked here.
    pub fn new(options: WebhookOptions) -> Result<Self, NotifyError> {
        let url = reqwest::Url::parse(&options.url)
            .map_err(|e| NotifyError::new(format!("webhook url {:?}: {e}", options.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(NotifyError::new(format!(
                "webhook url {:?}: expected an http:// or https:// URL",
                options.url
            )));
        }
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in &options.headers {
            let header_name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| NotifyError::new(format!("webhook header {name:?}: {e}")))?;
            let header_value = reqwest::header::HeaderValue::from_str(value)
                .map_err(|e| NotifyError::new(format!("webhook header {name:?} value: {e}")))?;
            headers.insert(header_name, header_value);
        }
        crate::runtime::crypto::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(options.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("failoverd/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| NotifyError::new(format!("webhook client: {e}")))?;
        Ok(Self {
            name: format!("webhook {}", url.host_str().unwrap_or("?")),
            url,
            headers,
            client,
            host: host_name(),
        })
    }

    /// The JSON body for `event`.
    pub fn body(&self, event: &Event) -> serde_json::Value {
        let mut value = serde_json::to_value(event).unwrap_or(serde_json::Value::Null);
        if let Some(object) = value.as_object_mut() {
            object.insert("host".into(), self.host.clone().into());
            object.insert("summary".into(), event.to_string().into());
            object.insert("subject".into(), event.subject().into());
        }
        value
    }
}

#[async_trait]
impl Notifier for WebhookNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    async fn notify(&self, event: &Event) -> Result<(), NotifyError> {
        let response = self
            .client
            .post(self.url.clone())
            .headers(self.headers.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(self.body(event).to_string())
            .send()
            .await
            .map_err(|e| {
                let mut root: &dyn std::error::Error = &e;
                while let Some(cause) = root.source() {
                    root = cause;
                }
                NotifyError::new(format!("POST {}: {root}", self.url))
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        let excerpt: String = text.chars().take(200).collect();
        Err(NotifyError::new(format!(
            "POST {}: status {status}: {excerpt}",
            self.url
        )))
    }
}
