//! Built-in probes: `tcp` (connect), `http` (GET and expectations), `ssh` (banner).

mod failure;
mod http;
mod ssh;
mod tcp;

pub use http::{HttpCheck, HttpCheckError, HttpOptions};
pub use ssh::SshCheck;
pub use tcp::TcpCheck;
