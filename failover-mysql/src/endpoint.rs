//! [`Endpoint`]: where a MySQL or MariaDB server listens.

use std::fmt;

/// Where a server listens: an address or host name and a TCP port.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    /// Address or host name (`10.1.0.1`).
    pub host: String,
    /// TCP port (3306).
    pub port: u16,
}

impl Endpoint {
    /// An endpoint.
    pub fn new(host: impl fmt::Display, port: u16) -> Self {
        Self {
            host: host.to_string(),
            port,
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}
