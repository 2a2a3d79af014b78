//! `[admin]`: the admin listener (status, metrics, overrides), over HTTPS or, on loopback, HTTP.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::absolute;
use super::error::{Seg, Validator};
use super::Config;

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
    /// Serve HTTPS (TLS 1.3) with this server's `[identity]` key, or with `certificate` and
    /// `key`; `failoverd status` and `admin` pin the certificate.
    #[serde(default)]
    pub tls: bool,
    /// A certificate (PEM, may go on with its chain) to serve instead of the `[identity]` one,
    /// e.g. one a CA issued for a Prometheus scraper; needs `tls = true` and `key`.
    pub certificate: Option<PathBuf>,
    /// Its private key (PEM).
    pub key: Option<PathBuf>,
    /// Accept plain HTTP on an address that is not loopback: the token then crosses the network
    /// in clear text. The daemon warns at every start.
    #[serde(default)]
    pub danger_plain_http: bool,
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

    /// Plain HTTP off loopback, accepted with `danger_plain_http`: what the daemon warns about.
    pub fn plain_off_loopback(&self) -> bool {
        !self.tls && !self.listen.ip().is_loopback()
    }

    /// Makes the token file, certificate and key absolute, relative to `base`.
    pub(super) fn resolve(&mut self, base: &Path) {
        for file in [&mut self.token_file, &mut self.certificate, &mut self.key]
            .into_iter()
            .flatten()
        {
            absolute(base, file);
        }
    }
}

/// Checks `[admin]`: no token in clear text over a network, a certificate with its key.
pub(super) fn validate(config: &Config, v: &mut Validator<'_>) {
    let Some(admin) = &config.admin else {
        return;
    };
    let at = |key| [Seg::Key("admin"), Seg::Key(key)];
    if admin.plain_off_loopback() && !admin.danger_plain_http {
        v.fail(
            &at("listen"),
            format!(
                "{} is not a loopback address and tls is off: the bearer token would cross the network in clear text: set [admin] tls = true, or danger_plain_http = true to accept that",
                admin.listen
            ),
        );
    }
    match (&admin.certificate, &admin.key) {
        (Some(_), None) => v.fail(
            &at("certificate"),
            "has no key: set [admin] key to its private key's file",
        ),
        (None, Some(_)) => v.fail(
            &at("key"),
            "has no certificate: set [admin] certificate to its certificate's file",
        ),
        _ => {}
    }
    if !admin.tls {
        let given = [
            ("certificate", admin.certificate.is_some()),
            ("key", admin.key.is_some()),
        ];
        for (key, _) in given.into_iter().filter(|(_, given)| *given) {
            v.fail(
                &at(key),
                "is only used over HTTPS: set [admin] tls = true (or remove it)",
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::super::tests::{errors_of, parse, GOOD};

    fn with_admin(lines: &str) -> String {
        format!("{GOOD}\n[admin]\ntoken_file = \"admin.token\"\n{lines}")
    }

    #[test]
    fn plain_http_off_loopback_is_refused_naming_the_line_and_both_fixes() {
        let source = with_admin("listen = \"0.0.0.0:8053\"\n");
        let errors = errors_of(&source);
        let line = source
            .lines()
            .position(|l| l.starts_with("listen = \"0.0.0.0"))
            .map(|i| i + 1);
        assert_eq!(
            errors,
            vec![format!(
                "/etc/failoverd/failoverd.toml line {}: admin.listen: 0.0.0.0:8053 is not a loopback address and tls is off: the bearer token would cross the network in clear text: set [admin] tls = true, or danger_plain_http = true to accept that",
                line.unwrap_or_default()
            )]
        );
    }

    #[test]
    fn off_loopback_is_accepted_over_tls_or_with_danger_plain_http_and_the_danger_is_warned() {
        let tls = parse(&with_admin("listen = \"0.0.0.0:8053\"\ntls = true\n")).unwrap();
        let admin = tls.admin.as_ref().unwrap();
        assert!(admin.tls && !admin.plain_off_loopback());
        assert!(!tls.warnings().iter().any(|w| w.contains("clear text")));

        let danger = parse(&with_admin(
            "listen = \"192.0.2.1:8053\"\ndanger_plain_http = true\n",
        ))
        .unwrap();
        assert!(danger.admin.as_ref().unwrap().plain_off_loopback());
        let warnings = danger.warnings();
        assert!(
            warnings.iter().any(|w| w
                .contains("[admin] danger_plain_http: the bearer token crosses the network to 192.0.2.1:8053 in clear text")),
            "{warnings:?}"
        );

        let loopback = parse(&with_admin("listen = \"[::1]:8053\"\n")).unwrap();
        assert!(!loopback.admin.as_ref().unwrap().plain_off_loopback());
    }

    #[test]
    fn a_certificate_needs_its_key_and_tls() {
        let errors = errors_of(&with_admin("certificate = \"admin.crt\"\n"));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].ends_with(
                "admin.certificate: has no key: set [admin] key to its private key's file"
            ),
            "{errors:?}"
        );
        assert!(
            errors[1].ends_with(
                "admin.certificate: is only used over HTTPS: set [admin] tls = true (or remove it)"
            ),
            "{errors:?}"
        );

        let config = parse(&with_admin(
            "tls = true\ncertificate = \"admin.crt\"\nkey = \"/keys/admin.key\"\n",
        ))
        .unwrap();
        let admin = config.admin.as_ref().unwrap();
        assert_eq!(
            admin.certificate.as_deref(),
            Some(std::path::Path::new("/etc/failoverd/admin.crt"))
        );
        assert_eq!(
            admin.key.as_deref(),
            Some(std::path::Path::new("/keys/admin.key"))
        );
    }
}
