//! `[admin]`: the admin listener (status, metrics, overrides).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::absolute;

/// `[admin]`: the admin listener.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Where to listen (keep it off the public interface).
    #[serde(default = "default_admin_listen")]
    pub listen: SocketAddr,
    /// File holding the token that overrides need (`Authorization: Bearer ...`); without it,
    /// overrides are refused.
    pub token_file: Option<PathBuf>,
}

fn default_admin_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8053))
}

impl AdminConfig {
    /// Reads the token (trimmed); `None` when no token file is configured.
    pub fn token(&self) -> Result<Option<String>, String> {
        let Some(path) = &self.token_file else {
            return Ok(None);
        };
        let token = std::fs::read_to_string(path)
            .map_err(|e| format!("[admin] token_file {}: {e}", path.display()))?;
        let token = token.trim().to_owned();
        if token.len() < 16 {
            return Err(format!(
                "[admin] token_file {}: the token is shorter than 16 characters (e.g. `openssl rand -hex 32 > {}`)",
                path.display(),
                path.display()
            ));
        }
        Ok(Some(token))
    }

    /// Makes the token file absolute, relative to `base`.
    pub(super) fn resolve(&mut self, base: &Path) {
        if let Some(file) = &mut self.token_file {
            absolute(base, file);
        }
    }
}
