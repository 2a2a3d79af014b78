//! Built-in probes: `tcp` (connect), `http` (GET and expectations), `ssh` (banner).

mod http;
mod ssh;
mod tcp;

pub use http::{HttpCheck, HttpCheckError, HttpOptions};
pub use ssh::SshCheck;
pub use tcp::TcpCheck;

use crate::model::{FailureClass, Outcome};

/// Maps a connect error to an outcome that says what happened.
fn connect_failure(address: std::net::SocketAddr, error: &std::io::Error) -> Outcome {
    Outcome::failed(
        FailureClass::Unreachable,
        format!("connect to {address}: {error}"),
    )
}

fn timeout_failure(
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
