//! The e-mail notifier: one message per burst of events, over SMTP with lettre.

use std::fmt::Write as _;
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::host::host_name;
use crate::event::{Event, EventKind};
use crate::notifier::{Notifier, NotifyError};

/// How the connection to the mail relay is protected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EmailSecurity {
    /// Plain SMTP (a relay on a private network, port 25).
    #[default]
    None,
    /// Plain connection upgraded with STARTTLS (port 587); refused if the server cannot.
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// A subject line with placeholders: `{summary}` (the most important event in one line),
/// `{event}` (its name), `{subject}` (what it is about), `{host}` (this machine), `{count}`
/// (events in the message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubjectTemplate(String);

impl SubjectTemplate {
    const PLACEHOLDERS: &'static [&'static str] = &["summary", "event", "subject", "host", "count"];

    /// Checks that every `{...}` in `template` is a known placeholder.
    pub fn new(template: &str) -> Result<Self, NotifyError> {
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else {
                return Err(NotifyError::new(format!(
                    "subject {template:?}: unclosed \"{{\""
                )));
            };
            let name = &after[..close];
            if !Self::PLACEHOLDERS.contains(&name) {
                return Err(NotifyError::new(format!(
                    "subject {template:?}: unknown placeholder {{{name}}} (expected one of: {})",
                    Self::PLACEHOLDERS
                        .iter()
                        .map(|p| format!("{{{p}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            rest = &after[close + 1..];
        }
        Ok(Self(template.to_owned()))
    }

    fn render(&self, headline: &Event, count: usize, host: &str) -> String {
        self.0
            .replace("{summary}", &headline.to_string())
            .replace("{event}", headline.name())
            .replace("{subject}", &headline.subject())
            .replace("{host}", host)
            .replace("{count}", &count.to_string())
    }
}

impl Default for SubjectTemplate {
    fn default() -> Self {
        Self("[failover {host}] {summary}".to_owned())
    }
}

/// How long events are gathered into one message, unless configured otherwise.
pub const DEFAULT_BATCH_WINDOW: Duration = Duration::from_secs(2);

/// Where and how to send mail.
#[derive(Clone, Debug)]
pub struct EmailOptions {
    /// The relay's host name or address.
    pub host: String,
    /// Its port (25, 587, 465).
    pub port: u16,
    /// Connection security.
    pub security: EmailSecurity,
    /// User name and password, if the relay wants them.
    pub credentials: Option<(String, String)>,
    /// The sender.
    pub from: String,
    /// The recipients.
    pub to: Vec<String>,
    /// The subject line.
    pub subject: SubjectTemplate,
    /// Budget of one delivery (connect, talk, quit).
    pub timeout: Duration,
    /// Events arriving within this window after the first go into one message.
    pub batch_window: Duration,
}

/// Sends one plain-text message per burst of events: what happened, on which node and check,
/// since when, the probe's error, and what the daemon did about it.
pub struct EmailNotifier {
    name: String,
    options: EmailOptions,
    from: Mailbox,
    to: Vec<Mailbox>,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    host: String,
}

impl std::fmt::Debug for EmailNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailNotifier")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl EmailNotifier {
    /// A notifier for `options`; addresses and the relay are checked here, not at the first event.
    pub fn new(options: EmailOptions) -> Result<Self, NotifyError> {
        let from: Mailbox = options.from.parse().map_err(|e| {
            NotifyError::new(format!(
                "from {:?} is not a mail address: {e}",
                options.from
            ))
        })?;
        if options.to.is_empty() {
            return Err(NotifyError::new(
                "no recipient: set to = [\"admin@example.com\"]",
            ));
        }
        let to = options
            .to
            .iter()
            .map(|address| {
                address.parse::<Mailbox>().map_err(|e| {
                    NotifyError::new(format!("to {address:?} is not a mail address: {e}"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        crate::runtime::crypto::install_crypto_provider();
        let relay_error = |e: lettre::transport::smtp::Error| {
            NotifyError::new(format!("mail relay {}: {e}", options.host))
        };
        let builder = match options.security {
            EmailSecurity::None => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&options.host)
            }
            EmailSecurity::StartTls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&options.host)
                    .map_err(relay_error)?
            }
            EmailSecurity::Tls => {
                AsyncSmtpTransport::<Tokio1Executor>::relay(&options.host).map_err(relay_error)?
            }
        };
        let mut builder = builder.port(options.port).timeout(Some(options.timeout));
        if let Some((user, password)) = &options.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Self {
            name: format!("email to {}", options.to.join(", ")),
            transport: builder.build(),
            from,
            to,
            host: host_name(),
            options,
        })
    }

    /// The subject and body of the message for `events`.
    pub fn compose(&self, events: &[Event]) -> Option<(String, String)> {
        let headline = events.iter().max_by_key(|e| importance(e))?;
        let subject = self
            .options
            .subject
            .render(headline, events.len(), &self.host);
        let mut body = String::new();
        let _ = writeln!(
            body,
            "failoverd on {} reports {}:\n",
            self.host,
            if events.len() == 1 {
                "one event".to_owned()
            } else {
                format!("{} events", events.len())
            }
        );
        for event in events {
            let _ = writeln!(
                body,
                "{}  {event}",
                humantime::format_rfc3339_seconds(event.at)
            );
            if let EventKind::CheckDown {
                failing_since,
                consecutive_failures,
                ..
            } = &event.kind
            {
                let _ = writeln!(
                    body,
                    "    failing since {} ({consecutive_failures} probes in a row)",
                    humantime::format_rfc3339_seconds(*failing_since)
                );
            }
        }
        let actions: Vec<String> = events.iter().filter_map(action_taken).collect();
        let _ = writeln!(body);
        if actions.is_empty() {
            let _ = writeln!(body, "The published answer did not change.");
        } else {
            for action in actions {
                let _ = writeln!(body, "What the daemon did: {action}");
            }
        }
        Some((subject, body))
    }

    async fn send(&self, subject: String, body: String) -> Result<(), NotifyError> {
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        let message = builder
            .body(body)
            .map_err(|e| NotifyError::new(format!("building the message: {e}")))?;
        let sent = tokio::time::timeout(self.options.timeout, self.transport.send(message)).await;
        match sent {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(NotifyError::new(format!(
                "mail relay {}:{}: {e}",
                self.options.host, self.options.port
            ))),
            Err(_) => Err(NotifyError::new(format!(
                "mail relay {}:{} did not take the message within {}",
                self.options.host,
                self.options.port,
                humantime::format_duration(self.options.timeout)
            ))),
        }
    }
}

/// Which event of a burst makes the subject: what changed the answer first, then nodes, then checks.
fn importance(event: &Event) -> u8 {
    match event.kind {
        EventKind::AllDown { .. } => 9,
        EventKind::Failover { .. } => 8,
        EventKind::Failback { .. } => 7,
        EventKind::PublishFailed { .. } => 6,
        EventKind::AnswerChanged { .. } => 5,
        EventKind::NodeDown { .. } => 4,
        EventKind::NodeUp { .. } => 3,
        EventKind::CheckDown { .. } | EventKind::Flapping { .. } => 2,
        EventKind::CheckUp { .. } | EventKind::Settled { .. } => 1,
        EventKind::PublishRecovered { .. } => 0,
        EventKind::Override { .. } => 5,
        EventKind::MirrorConflicts { .. } | EventKind::MirrorFailed { .. } => 2,
        EventKind::PublishVetoed { .. } => 8,
        EventKind::FenceStep { .. } => 6,
    }
}

/// What the daemon did in response, in words, for events that are actions.
fn action_taken(event: &Event) -> Option<String> {
    let addresses = |list: &[std::net::IpAddr]| {
        if list.is_empty() {
            "nothing".to_owned()
        } else {
            list.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    match &event.kind {
        EventKind::Failover {
            from_addresses,
            to_addresses,
            ..
        }
        | EventKind::Failback {
            from_addresses,
            to_addresses,
            ..
        }
        | EventKind::AnswerChanged {
            from_addresses,
            to_addresses,
            ..
        } => Some(format!(
            "the answer moved from {} to {}.",
            addresses(from_addresses),
            addresses(to_addresses)
        )),
        EventKind::AllDown { rule, .. } => Some(format!(
            "every node is down; the answer follows the all_down rule {rule}."
        )),
        EventKind::PublishFailed { writer, .. } => Some(format!(
            "publishing to {writer} failed; it is being retried with backoff."
        )),
        EventKind::PublishVetoed { kept, .. } => Some(format!(
            "the answer was not moved; it stays on {}.",
            kept.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )),
        _ => None,
    }
}

#[async_trait]
impl Notifier for EmailNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    async fn notify(&self, event: &Event) -> Result<(), NotifyError> {
        self.notify_batch(std::slice::from_ref(event)).await
    }

    async fn notify_batch(&self, events: &[Event]) -> Result<(), NotifyError> {
        match self.compose(events) {
            Some((subject, body)) => self.send(subject, body).await,
            None => Ok(()),
        }
    }

    fn batch_window(&self) -> Duration {
        self.options.batch_window
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;

    #[test]
    fn subject_templates_are_checked() {
        assert!(SubjectTemplate::new("[{host}] {summary} ({count})").is_ok());
        let err = SubjectTemplate::new("{sumary}").unwrap_err().to_string();
        assert!(err.contains("unknown placeholder {sumary}"), "{err}");
        assert!(SubjectTemplate::new("{summary").is_err());
    }

    #[test]
    fn bad_addresses_are_refused_with_the_address() {
        let options = EmailOptions {
            host: "127.0.0.1".into(),
            port: 25,
            security: EmailSecurity::None,
            credentials: None,
            from: "not an address".into(),
            to: vec!["admin@test.ru".into()],
            subject: SubjectTemplate::default(),
            timeout: Duration::from_secs(5),
            batch_window: Duration::ZERO,
        };
        let err = EmailNotifier::new(options).unwrap_err().to_string();
        assert!(err.contains("from \"not an address\""), "{err}");
    }
}
