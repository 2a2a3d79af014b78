//! The outcomes the built-in probes share: a refused connection, no answer in time.

use crate::model::{FailureClass, Outcome};

/// Maps a connect error to an outcome that says what happened.
pub(super) fn connect_failure(address: std::net::SocketAddr, error: &std::io::Error) -> Outcome {
    Outcome::failed(
        FailureClass::Unreachable,
        format!("connect to {address}: {error}"),
    )
}

/// An outcome that says `what` got no answer from `address` within `timeout`.
pub(super) fn timeout_failure(
    address: std::net::SocketAddr,
    what: &str,
    timeout: std::time::Duration,
) -> Outcome {
    Outcome::failed(
        FailureClass::Timeout,
        format!(
            "{what} {address}: no answer within {}",
            humantime::format_duration(timeout)
        ),
    )
}
