//! The client side of the admin listener, for `failoverd status` and `failoverd admin`.

use crate::config::Config;

fn base_url(config: &Config) -> Result<String, String> {
    let admin = config.admin.as_ref().ok_or_else(|| {
        format!(
            "{} has no [admin] section: add one (listen = \"127.0.0.1:8053\") and restart the daemon",
            config.path.display()
        )
    })?;
    Ok(format!("http://{}", admin.listen))
}

fn client() -> Result<reqwest::Client, String> {
    failover_core::install_crypto_provider();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())
}

fn unreachable(url: &str, error: &reqwest::Error) -> String {
    let mut root: &dyn std::error::Error = error;
    while let Some(cause) = root.source() {
        root = cause;
    }
    format!("cannot reach the daemon at {url}: {root} (is failoverd running with this config?)")
}

/// GETs `path` from the admin listener.
pub async fn get(config: &Config, path: &str) -> Result<String, String> {
    let url = format!("{}{path}", base_url(config)?);
    let response = client()?
        .get(&url)
        .send()
        .await
        .map_err(|e| unreachable(&url, &e))?;
    let status = response.status();
    let text = response.text().await.map_err(|e| e.to_string())?;
    if status.is_success() {
        Ok(text)
    } else {
        Err(format!("{url}: {status}: {text}"))
    }
}

/// POSTs an admin command (`drain/master`) with the token from `[admin] token_file`.
pub async fn admin(config: &Config, command: &str) -> Result<String, String> {
    let url = format!("{}/admin/{command}", base_url(config)?);
    let token = config
        .admin
        .as_ref()
        .map(|a| a.token())
        .transpose()?
        .flatten()
        .ok_or_else(|| "[admin] has no token_file: overrides are refused".to_owned())?;
    let response = client()?
        .post(&url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| unreachable(&url, &e))?;
    let status = response.status();
    let text = response.text().await.map_err(|e| e.to_string())?;
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    if status.is_success() {
        Ok(json["done"].as_str().unwrap_or(&text).to_owned())
    } else {
        Err(json["error"].as_str().unwrap_or(&text).to_owned())
    }
}
