//! The crate's error type, [`DnsError`].

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while loading a zone, publishing into it or serving it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DnsError {
    /// The zone file could not be read at all.
    #[error("cannot read zone file {path}: {source}")]
    ZoneRead {
        /// The zone file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },

    /// A line of the zone file is not valid RFC 1035 master-file syntax.
    #[error(
        "zone file {file} line {line}: {reason} (in `{text}`; expected `NAME [TTL] [CLASS] TYPE RDATA` \
         or a $ORIGIN, $TTL or $INCLUDE directive)"
    )]
    ZoneSyntax {
        /// The zone file (or the name given to the text).
        file: String,
        /// The 1-based line where the offending entry starts.
        line: usize,
        /// The offending line, trimmed and shortened.
        text: String,
        /// What the parser found wrong.
        reason: String,
    },

    /// The zone file parses but does not describe a zone this server can serve.
    #[error("zone file {file}: {reason}")]
    ZoneInvalid {
        /// The zone file (or the name given to the text).
        file: String,
        /// What is wrong and what is expected instead.
        reason: String,
    },

    /// A managed name cannot be managed in this zone.
    #[error("managed name {name:?}: {reason}")]
    ManagedName {
        /// The name as configured.
        name: String,
        /// Why it cannot be managed.
        reason: String,
    },

    /// A publication names something this zone does not manage, or is otherwise unusable.
    #[error("cannot publish {name:?}: {reason}")]
    Publication {
        /// The name in the publication.
        name: String,
        /// Why it was refused.
        reason: String,
    },

    /// The persisted SOA serial could not be read or written.
    #[error("serial state file {path}: {reason}")]
    State {
        /// The state file (or its directory).
        path: PathBuf,
        /// What went wrong and, where known, the fix.
        reason: String,
    },

    /// A listening socket could not be set up.
    #[error("cannot listen on {protocol} {addr}: {source}{hint}")]
    Bind {
        /// `udp` or `tcp`.
        protocol: &'static str,
        /// The address that was asked for.
        addr: SocketAddr,
        /// What the operating system said.
        source: io::Error,
        /// The likely fix, starting with `; ` (empty when there is no good guess).
        hint: String,
    },

    /// The server configuration is unusable.
    #[error("dns server config: {0}")]
    Config(String),

    /// The AF_XDP listener could not be set up (feature `xdp`).
    #[error("af_xdp listener on {interface}: {reason}")]
    Xdp {
        /// The network interface.
        interface: String,
        /// What failed and, where known, the fix.
        reason: String,
    },

    /// The TCP side of the server needs a tokio runtime and none was running.
    #[error(
        "the dns server must be started from inside a tokio runtime (its tcp listeners run on it)"
    )]
    NoRuntime,

    /// A thread could not be spawned.
    #[error("cannot spawn a dns server thread: {0}")]
    Spawn(io::Error),

    /// Encoding a precomputed answer failed: a record in the zone cannot be put on the wire.
    #[error("cannot encode the answers of zone {origin}: {reason}")]
    Encode {
        /// The zone.
        origin: String,
        /// hickory-proto's message.
        reason: String,
    },

    /// A `dns` health check is configured in a way that cannot work.
    #[error("dns check {key}: {reason}")]
    CheckConfig {
        /// The option at fault (`name`, `record_type`, `expect_rcode`, ...).
        key: &'static str,
        /// What is wrong and what is expected instead.
        reason: String,
    },

    /// A DNS query got no answer in time.
    #[error("dns query to {server} over {protocol}: no answer within {timeout:?}")]
    QueryTimeout {
        /// The name server asked.
        server: SocketAddr,
        /// `udp` or `tcp`.
        protocol: &'static str,
        /// How long it waited.
        timeout: Duration,
    },

    /// A DNS query failed on the socket (refused, unreachable, reset).
    #[error("dns query to {server} over {protocol}: {source}")]
    QueryIo {
        /// The name server asked.
        server: SocketAddr,
        /// `udp` or `tcp`.
        protocol: &'static str,
        /// What the operating system said.
        source: io::Error,
    },

    /// A name server answered with something that is not a response to the query.
    #[error("dns query to {server} over {protocol}: unusable response: {reason}")]
    QueryResponse {
        /// The name server asked.
        server: SocketAddr,
        /// `udp` or `tcp`.
        protocol: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// A TSIG key is unusable: bad name, unsupported algorithm, bad secret, unreadable key file.
    #[error("tsig key {source_name}: {reason}")]
    TsigKey {
        /// Where the key came from (a key file and line, or the key's name).
        source_name: String,
        /// What is wrong and the fix.
        reason: String,
    },

    /// A zone writer's settings are unusable (checked when it is built).
    #[error("{writer}: {reason}")]
    WriterConfig {
        /// The writer (`zone file /etc/bind/db.test.ru`, `dynamic update to 10.0.0.53:53`).
        writer: String,
        /// What is wrong and the fix.
        reason: String,
    },

    /// Writing the zone file failed; the previous file is still in place.
    #[error("zone file {path}: {reason}")]
    ZoneFileWrite {
        /// The zone file.
        path: PathBuf,
        /// What failed, with the operating system's message.
        reason: String,
    },

    /// The reload command failed or timed out; the previous zone file was put back.
    #[error("reload of zone {zone} failed: {reason}")]
    Reload {
        /// The zone.
        zone: String,
        /// The command, its exit status and its own output (BIND's message), and the fix.
        reason: String,
    },

    /// A dynamic update was not applied (or not confirmed) by the primary.
    #[error("dynamic update of zone {zone} at {primary}: {reason}")]
    Update {
        /// The zone.
        zone: String,
        /// The primary the update was sent to.
        primary: SocketAddr,
        /// The rcode / TSIG error or transport failure, and the fix.
        reason: String,
    },
}

impl DnsError {
    /// A bind error with the likely fix.
    pub(crate) fn bind(protocol: &'static str, addr: SocketAddr, source: io::Error) -> Self {
        let hint = match source.kind() {
            io::ErrorKind::AddrInUse => format!(
                "; another program already listens on {protocol} port {} (often systemd-resolved, \
                 bind9, dnsmasq or a second failoverd): stop it or choose another address",
                addr.port()
            ),
            io::ErrorKind::PermissionDenied if addr.port() < 1024 => format!(
                "; port {} is privileged: run as root, grant CAP_NET_BIND_SERVICE \
                 (setcap cap_net_bind_service=+ep on the binary), or listen on a port >= 1024",
                addr.port()
            ),
            io::ErrorKind::AddrNotAvailable => format!(
                "; {} is not an address of this host: check `ip addr`",
                addr.ip()
            ),
            _ => String::new(),
        };
        Self::Bind {
            protocol,
            addr,
            source,
            hint,
        }
    }
}
