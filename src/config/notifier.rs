//! `[[notify]]`: where events go besides the log; the keys every kind takes, and each kind's own.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::error::{Seg, Validator};
use super::kinded::{Kinded, PluginKind};
use super::plugin::{PluginSettings, Section};
use super::{absolute, Config};

/// `[[notify]]`: somewhere events go (the log always gets them).
pub type NotifierConfig = Kinded<NotifierCommon, NotifierKind>;

/// The keys of `[[notify]]` every kind takes.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifierCommon {
    /// Only these events (names as in `FAILOVER_EVENT`); all when unset.
    pub events: Option<Vec<String>>,
    /// How long one delivery may take.
    #[serde(default = "default_delivery_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_delivery_timeout() -> Duration {
    super::defaults::DEFAULT_DELIVERY_TIMEOUT
}

/// The kinds of notifier, each with its own keys.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum NotifierKind {
    /// Run a program per event.
    Command(CommandSettings),
    /// Send mail through an SMTP relay.
    Email(EmailSettings),
    /// POST each event as JSON.
    Webhook(WebhookSettings),
    /// A kind a program registered ([`crate::plugins::Plugins::notifier`]).
    #[serde(skip)]
    Plugin(PluginSettings),
}

impl PluginKind for NotifierKind {
    const SECTION: Section = Section::Notify;
    fn plugin(settings: PluginSettings) -> Self {
        NotifierKind::Plugin(settings)
    }
}

/// `kind = "command"`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandSettings {
    /// The program and its arguments.
    pub command: Option<Vec<String>>,
}

/// `kind = "email"`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSettings {
    /// The relay's host name or address.
    pub host: Option<String>,
    /// The relay's port (default 25, 587 with starttls, 465 with tls).
    pub port: Option<u16>,
    /// `none`, `starttls` or `tls` (default `none`).
    pub security: Option<SecurityConfig>,
    /// User name for SMTP authentication.
    pub username: Option<String>,
    /// File holding the SMTP password (kept out of the config).
    pub password_file: Option<PathBuf>,
    /// The sender address.
    pub from: Option<String>,
    /// The recipients.
    pub to: Option<Vec<String>>,
    /// The subject template.
    pub subject: Option<String>,
    /// Events arriving within this window go into one message (default 2s).
    #[serde(default, with = "humantime_serde")]
    pub batch_window: Option<Duration>,
}

/// `kind = "webhook"`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// The URL to POST to.
    pub url: Option<String>,
    /// Extra headers.
    pub headers: Option<BTreeMap<String, String>>,
}

/// SMTP connection security.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecurityConfig {
    /// Plain SMTP.
    None,
    /// STARTTLS, required.
    Starttls,
    /// TLS from the start.
    Tls,
}

impl EmailSettings {
    /// The relay's port: `port`, or the one `security` implies (25; 587 with starttls; 465
    /// with tls).
    pub fn relay_port(&self) -> u16 {
        self.port.unwrap_or(match self.security {
            Some(SecurityConfig::Starttls) => 587,
            Some(SecurityConfig::Tls) => 465,
            None | Some(SecurityConfig::None) => 25,
        })
    }
}

impl NotifierKind {
    /// The kind's name, as in the config.
    pub fn name(&self) -> &str {
        match self {
            NotifierKind::Plugin(settings) => &settings.kind,
            NotifierKind::Command(_) => "command",
            NotifierKind::Email(_) => "email",
            NotifierKind::Webhook(_) => "webhook",
        }
    }
}

impl std::fmt::Display for NotifierKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl NotifierConfig {
    /// Makes its password file absolute, relative to `base`.
    pub(super) fn resolve(&mut self, base: &Path) {
        if let NotifierKind::Email(EmailSettings {
            password_file: Some(file),
            ..
        }) = &mut self.kind
        {
            absolute(base, file);
        }
    }
}

/// Checks `[[notify]]`: what each kind needs, the event names, the subject template.
pub(super) fn validate(config: &Config, v: &mut Validator<'_>) {
    use Seg::{Index, Key};
    for (i, notify) in config.notifiers.iter().enumerate() {
        let at = |key| [Key("notify"), Index(i), Key(key)];
        let kind = &notify.kind;
        let required: &[(&str, bool)] = match kind {
            NotifierKind::Command(s) => &[(
                "command",
                s.command
                    .as_ref()
                    .and_then(|c| c.first())
                    .is_some_and(|c| !c.is_empty()),
            )],
            NotifierKind::Email(s) => &[
                ("host", s.host.is_some()),
                ("from", s.from.is_some()),
                ("to", s.to.as_ref().is_some_and(|t| !t.is_empty())),
            ],
            NotifierKind::Webhook(s) => &[("url", s.url.is_some())],
            // Checked by its settings type while parsing.
            NotifierKind::Plugin(_) => &[],
        };
        for (key, present) in required {
            if !present {
                let example = match *key {
                    "command" => "[\"/usr/local/bin/page-admin\", \"--urgent\"]",
                    "host" => "\"10.6.6.6\"",
                    "from" => "\"failoverd@example.com\"",
                    "to" => "[\"admin@example.com\"]",
                    _ => "\"https://hooks.example.com/failover\"",
                };
                v.fail(
                    &[Key("notify"), Index(i)],
                    format!("kind = \"{kind}\" needs {key} (e.g. {key} = {example})"),
                );
            }
        }
        if let NotifierKind::Email(email) = kind {
            if email.username.is_some() != email.password_file.is_some() {
                v.fail(&at("username"), "username and password_file go together");
            }
            if let Some(subject) = &email.subject {
                if let Err(e) = failover_core::SubjectTemplate::new(subject) {
                    v.fail(&at("subject"), e.to_string());
                }
            }
        }
        for (j, name) in notify.common.events.iter().flatten().enumerate() {
            if !failover_core::EVENT_NAMES.contains(&name.as_str()) {
                v.fail(
                    &[Key("notify"), Index(i), Key("events"), Index(j)],
                    format!(
                        "unknown event {name:?} (expected one of: {})",
                        failover_core::EVENT_NAMES.join(", ")
                    ),
                );
            }
        }
    }
}
