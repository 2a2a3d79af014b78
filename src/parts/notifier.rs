//! `[[notify]]` into notifiers: the log always, then a command, mail or webhook per section.

use std::sync::Arc;
use std::time::Duration;

use failover_core::{
    CommandNotifier, EmailNotifier, EmailOptions, EmailSecurity, Filtered, LogNotifier, Notifier,
    SubjectTemplate, WebhookNotifier, WebhookOptions,
};

use super::DaemonError;
use crate::config::{
    CommandSettings, Config, EmailSettings, NotifierConfig, NotifierKind, SecurityConfig,
    WebhookSettings,
};

/// The notifiers: the log, and every `[[notify]]`.
pub fn notifiers(config: &Config) -> Result<Vec<Arc<dyn Notifier>>, DaemonError> {
    let mut notifiers: Vec<Arc<dyn Notifier>> = vec![Arc::new(LogNotifier)];
    for (index, notify) in config.notifiers.iter().enumerate() {
        let built = build(config, index, notify).map_err(|message| DaemonError::Notifier {
            path: config.path.clone(),
            index: index + 1,
            message,
        })?;
        notifiers.push(built);
    }
    Ok(notifiers)
}

/// One `[[notify]]`, behind its `events` filter.
fn build(
    config: &Config,
    index: usize,
    notify: &NotifierConfig,
) -> Result<Arc<dyn Notifier>, String> {
    let timeout = notify.common.timeout;
    match &notify.kind {
        NotifierKind::Plugin(settings) => {
            let nodes = node_names(config);
            let name = format!("notify[{}]", index + 1);
            let context = crate::plugins::PluginContext {
                config,
                name: &name,
                nodes: &nodes,
            };
            let built = config
                .plugins
                .build_notifier(&settings.kind, &settings.table, &context)?;
            filtered(Shared(built), notify)
        }
        NotifierKind::Command(settings) => filtered(command(settings, timeout)?, notify),
        NotifierKind::Email(settings) => filtered(email(settings, timeout)?, notify),
        NotifierKind::Webhook(settings) => filtered(webhook(settings, timeout)?, notify),
    }
    .map_err(|e| e.to_string())
}

fn command(settings: &CommandSettings, timeout: Duration) -> Result<CommandNotifier, String> {
    let command = settings.command.clone().unwrap_or_default();
    let (program, args) = command
        .split_first()
        .ok_or_else(|| "empty command".to_owned())?;
    Ok(CommandNotifier::new(program, args.to_vec(), timeout))
}

fn email(settings: &EmailSettings, timeout: Duration) -> Result<EmailNotifier, String> {
    let security = match settings.security {
        None | Some(SecurityConfig::None) => EmailSecurity::None,
        Some(SecurityConfig::Starttls) => EmailSecurity::StartTls,
        Some(SecurityConfig::Tls) => EmailSecurity::Tls,
    };
    let port = settings.relay_port();
    let credentials = match (&settings.username, &settings.password_file) {
        (Some(user), Some(file)) => {
            let password = std::fs::read_to_string(file)
                .map_err(|e| format!("password_file {}: {e}", file.display()))?;
            Some((user.clone(), password.trim_end().to_owned()))
        }
        _ => None,
    };
    let subject = match &settings.subject {
        Some(template) => SubjectTemplate::new(template).map_err(|e| e.to_string())?,
        None => SubjectTemplate::default(),
    };
    let email = EmailNotifier::new(EmailOptions {
        host: settings.host.clone().unwrap_or_default(),
        port,
        security,
        credentials,
        from: settings.from.clone().unwrap_or_default(),
        to: settings.to.clone().unwrap_or_default(),
        subject,
        timeout,
        batch_window: settings
            .batch_window
            .unwrap_or(failover_core::DEFAULT_BATCH_WINDOW),
    })
    .map_err(|e| e.to_string())?;
    Ok(email)
}

fn webhook(settings: &WebhookSettings, timeout: Duration) -> Result<WebhookNotifier, String> {
    WebhookNotifier::new(WebhookOptions {
        url: settings.url.clone().unwrap_or_default(),
        headers: settings
            .headers
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        timeout,
    })
    .map_err(|e| e.to_string())
}

/// Wraps `notifier` in the `events` filter when there is one.
/// The names of every node, in config order.
pub(crate) fn node_names(config: &Config) -> Vec<failover_core::NodeName> {
    config
        .nodes
        .iter()
        .map(|n| failover_core::NodeName::new(&n.name))
        .collect()
}

/// A plugin's notifier behind the `events` filter.
struct Shared(Arc<dyn Notifier>);

#[async_trait::async_trait]
impl Notifier for Shared {
    fn name(&self) -> &str {
        self.0.name()
    }
    async fn notify(&self, event: &failover_core::Event) -> Result<(), failover_core::NotifyError> {
        self.0.notify(event).await
    }
    async fn notify_batch(
        &self,
        events: &[failover_core::Event],
    ) -> Result<(), failover_core::NotifyError> {
        self.0.notify_batch(events).await
    }
    fn batch_window(&self) -> std::time::Duration {
        self.0.batch_window()
    }
}

fn filtered<N: Notifier>(
    notifier: N,
    config: &NotifierConfig,
) -> Result<Arc<dyn Notifier>, failover_core::NotifyError> {
    Ok(match &config.common.events {
        Some(events) => Arc::new(Filtered::new(notifier, events)?),
        None => Arc::new(notifier),
    })
}
