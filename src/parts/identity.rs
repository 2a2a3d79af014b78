//! This server's key for the peer link (`[identity]`), loaded and checked against the
//! fingerprint the file pins for the node or witness this process is.

use std::sync::Arc;

use failover_core::peer::{Fingerprint, Identity};

use super::DaemonError;
use crate::config::Config;

/// What `failoverd check` found of this server's key.
#[derive(Debug)]
pub enum Found {
    /// The process needs no key (no `[cluster]`, no `[mirror]`, or no role in them).
    NotNeeded,
    /// The key is here and is the one pinned for this node.
    Here(Arc<Identity>),
    /// No key here: this is not the node's server, or its key is still to be made (the text
    /// says which file and how).
    Absent(String),
    /// The key here is another observer's (named): this is that one's server.
    Elsewhere(String),
}

/// This server's key, which must be the one the file pins for the chosen node or witness
/// (what `failoverd run` and `failoverd witness` start with). `Ok(None)`: no key is needed.
pub fn load(config: &Config) -> Result<Option<Arc<Identity>>, DaemonError> {
    match find(config)? {
        Found::NotNeeded => Ok(None),
        Found::Here(identity) => Ok(Some(identity)),
        Found::Absent(message) => Err(error(config, message)),
        Found::Elsewhere(owner) => Err(error(config, elsewhere(config, &owner))),
    }
}

/// Why the key here is not the chosen observer's, and the fix.
pub fn elsewhere(config: &Config, owner: &str) -> String {
    format!(
        "{} is {owner}'s key, not {}'s: this server is {owner} (start it with --node {owner})",
        config.identity.certificate.display(),
        config.local.as_deref().unwrap_or_default()
    )
}

/// This server's key, if it is here and the chosen observer's; whose it is when it is another's;
/// an error when it is unusable or pinned for nobody (what `failoverd check` reports).
pub fn find(config: &Config) -> Result<Found, DaemonError> {
    if !config.needs_local() {
        return Ok(Found::NotNeeded);
    }
    let Some(local) = config.local.clone() else {
        return Err(error(config, "which node is this? None was chosen (failoverd: --node NAME; the library: Config::choose and Config::select)".to_owned()));
    };
    let Some(pinned) = config.local_fingerprint() else {
        // A node outside [cluster] and outside the mirror's pair has no link to make.
        return Ok(Found::NotNeeded);
    };
    let paths = &config.identity;
    let keygen = format!(
        "failoverd keygen --dir {} --name {local}",
        paths
            .certificate
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."))
            .display()
    );
    if !paths.certificate.exists() && !paths.key.exists() {
        return Ok(Found::Absent(format!(
            "no key for {local} here ({} and {} are missing): on {local}'s server, make them with `{keygen}` and pin the printed fingerprint in the file",
            paths.certificate.display(),
            paths.key.display()
        )));
    }
    let identity = Identity::load(&paths.certificate, &paths.key)
        .map_err(|e| error(config, format!("{e} (make them with `{keygen}`)")))?;
    let here = identity.fingerprint();
    if here == pinned {
        return Ok(Found::Here(Arc::new(identity)));
    }
    let owner = config
        .nodes
        .iter()
        .filter_map(|n| Some((n.name.as_str(), n.fingerprint?)))
        .chain(
            config
                .witness
                .iter()
                .map(|w| (w.name.as_str(), w.fingerprint)),
        )
        .find(|(_, f)| *f == here);
    match owner {
        Some((name, _)) => Ok(Found::Elsewhere(name.to_owned())),
        None => Err(error(config, unpinned(config, &local, here, pinned))),
    }
}

/// Why a key pinned for nobody is refused, and the fix.
fn unpinned(config: &Config, local: &str, here: Fingerprint, pinned: Fingerprint) -> String {
    format!(
        "{} holds the key {here}, but the file pins {pinned} for {local}: if this is {local}'s server and its key was made again, put fingerprint = \"{here}\" in its table of the file on every server",
        config.identity.certificate.display()
    )
}

fn error(config: &Config, message: String) -> DaemonError {
    DaemonError::Identity {
        path: config.path.clone(),
        message,
    }
}
