//! The built-in notifiers: the log, a command hook, e-mail, webhook.

mod command;
mod email;
mod host;
mod log;
mod webhook;

pub use command::CommandNotifier;
pub use email::{
    EmailNotifier, EmailOptions, EmailSecurity, SubjectTemplate, DEFAULT_BATCH_WINDOW,
};
pub use host::host_name;
pub use log::LogNotifier;
pub use webhook::{WebhookNotifier, WebhookOptions};
