//! A master-master pair: both directions at a glance, and the classic mistakes.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::client::{Credentials, Session};
use crate::endpoint::Endpoint;
use crate::error::MysqlError;
use crate::status::ServerState;

/// One server of a pair: the node's name and where its MySQL listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairMember {
    /// The node's name (`master`).
    pub name: String,
    /// Its MySQL server.
    pub endpoint: Endpoint,
}

impl PairMember {
    /// A member.
    pub fn new(name: impl Into<String>, endpoint: Endpoint) -> Self {
        Self {
            name: name.into(),
            endpoint,
        }
    }
}

/// A classic mistake in a master-master pair.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "warning", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum PairWarning {
    /// Both servers have the same `server_id`: each ignores the other's events as its own.
    SameServerId {
        /// The id.
        server_id: u64,
    },
    /// Both servers have the same `auto_increment_offset`: inserts on both collide.
    SameOffset {
        /// The offset.
        offset: u64,
    },
    /// `auto_increment_increment` below 2: inserts on both collide.
    IncrementTooSmall {
        /// The server.
        node: String,
        /// Its increment.
        increment: u64,
    },
    /// Both servers accept writes (`read_only = OFF` on both): a split brain writes twice.
    BothWritable,
    /// A server does not replicate from its peer.
    NotFromPeer {
        /// The server.
        node: String,
        /// Where it replicates from, if anywhere.
        source: Option<String>,
        /// The peer.
        peer: String,
    },
    /// A server writes no binary log, so its peer cannot replicate from it.
    NoBinlog {
        /// The server.
        node: String,
    },
}

impl fmt::Display for PairWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PairWarning::SameServerId { server_id } => write!(f, "both servers have server_id {server_id}: each skips the other's changes as its own; set a distinct server_id in each my.cnf"),
            PairWarning::SameOffset { offset } => write!(f, "both servers have auto_increment_offset {offset}: AUTO_INCREMENT keys written on both collide; use offsets 1 and 2"),
            PairWarning::IncrementTooSmall { node, increment } => write!(f, "{node} has auto_increment_increment {increment}: with two writers it must be at least 2"),
            PairWarning::BothWritable => write!(f, "both servers are writable (read_only = OFF on both): if the site reaches both, the same rows change twice; set read_only = 1 on the standby"),
            PairWarning::NotFromPeer { node, source: Some(source), peer } => write!(f, "{node} replicates from {source}, not from its peer {peer}"),
            PairWarning::NotFromPeer { node, source: None, peer } => write!(f, "{node} does not replicate from {peer}: one direction of the pair is missing (failoverd mysql setup)"),
            PairWarning::NoBinlog { node } => write!(f, "{node} writes no binary log (log_bin = OFF): its peer cannot replicate from it"),
        }
    }
}

/// The warnings for a pair whose two states are known.
pub fn pair_warnings(
    a: (&PairMember, &ServerState),
    b: (&PairMember, &ServerState),
) -> Vec<PairWarning> {
    let mut warnings = Vec::new();
    let ((ma, sa), (mb, sb)) = (a, b);
    if sa.server_id == sb.server_id {
        warnings.push(PairWarning::SameServerId {
            server_id: sa.server_id,
        });
    }
    for (member, state) in [(ma, sa), (mb, sb)] {
        if state.auto_increment_increment < 2 {
            warnings.push(PairWarning::IncrementTooSmall {
                node: member.name.clone(),
                increment: state.auto_increment_increment,
            });
        }
        if !state.log_bin {
            warnings.push(PairWarning::NoBinlog {
                node: member.name.clone(),
            });
        }
    }
    if sa.auto_increment_offset == sb.auto_increment_offset {
        warnings.push(PairWarning::SameOffset {
            offset: sa.auto_increment_offset,
        });
    }
    if !sa.read_only && !sb.read_only {
        warnings.push(PairWarning::BothWritable);
    }
    for ((member, state), peer) in [((ma, sa), mb), ((mb, sb), ma)] {
        let from_peer = state.replica.as_ref().is_some_and(|r| {
            r.source_host == peer.endpoint.host && r.source_port == peer.endpoint.port
        });
        if !from_peer {
            warnings.push(PairWarning::NotFromPeer {
                node: member.name.clone(),
                source: state
                    .replica
                    .as_ref()
                    .map(|r| format!("{}:{}", r.source_host, r.source_port)),
                peer: format!("{} ({})", peer.name, peer.endpoint),
            });
        }
    }
    warnings
}

/// One server as `failoverd mysql status` shows it.
#[derive(Debug)]
pub struct ServerReport {
    /// The server.
    pub member: PairMember,
    /// What it said, or why it could not be asked.
    pub state: Result<ServerState, MysqlError>,
}

/// Both servers of a pair and the warnings: what `failoverd mysql status` prints.
#[derive(Debug)]
pub struct PairStatus {
    /// Each server, in the order given.
    pub servers: Vec<ServerReport>,
    /// The classic mistakes found (only when both servers answered).
    pub warnings: Vec<PairWarning>,
}

impl PairStatus {
    /// Asks both servers, each call within `timeout`.
    pub async fn fetch(
        a: &PairMember,
        b: &PairMember,
        credentials: &Credentials,
        timeout: Duration,
    ) -> Self {
        let (sa, sb) = tokio::join!(
            state_of(&a.endpoint, credentials, timeout),
            state_of(&b.endpoint, credentials, timeout)
        );
        let warnings = match (&sa, &sb) {
            (Ok(sa), Ok(sb)) => pair_warnings((a, sa), (b, sb)),
            _ => Vec::new(),
        };
        Self {
            servers: vec![
                ServerReport {
                    member: a.clone(),
                    state: sa,
                },
                ServerReport {
                    member: b.clone(),
                    state: sb,
                },
            ],
            warnings,
        }
    }

    /// Every server answered, both directions run, and there is nothing to warn about.
    pub fn is_healthy(&self) -> bool {
        self.warnings.is_empty()
            && self.servers.iter().all(|s| {
                s.state
                    .as_ref()
                    .is_ok_and(|st| st.replica.as_ref().is_some_and(|r| r.running()))
            })
    }

    fn name_of(&self, host: &str, port: u16) -> Option<&str> {
        self.servers
            .iter()
            .find(|s| s.member.endpoint.host == host && s.member.endpoint.port == port)
            .map(|s| s.member.name.as_str())
    }
}

/// Reads one server's state over a fresh connection, closed afterwards.
pub(crate) async fn state_of(
    endpoint: &Endpoint,
    credentials: &Credentials,
    timeout: Duration,
) -> Result<ServerState, MysqlError> {
    let mut session = Session::connect(endpoint, credentials, timeout).await?;
    let state = ServerState::fetch(&mut session).await;
    session.close().await;
    state
}

fn on_off(on: bool) -> &'static str {
    if on {
        "ON"
    } else {
        "OFF"
    }
}

impl fmt::Display for PairStatus {
    /// Both directions, in a form an admin reads at a glance.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for server in &self.servers {
            let member = &server.member;
            let state = match &server.state {
                Ok(state) => state,
                Err(e) => {
                    writeln!(f, "{} ({}): UNREACHABLE: {e}", member.name, member.endpoint)?;
                    continue;
                }
            };
            writeln!(
                f,
                "{} ({}): {}, server_id {}, read_only {}{}, gtid {}",
                member.name,
                member.endpoint,
                state.version,
                state.server_id,
                on_off(state.read_only),
                state
                    .super_read_only
                    .map(|s| format!(", super_read_only {}", on_off(s)))
                    .unwrap_or_default(),
                state.gtid_position.as_deref().unwrap_or("-"),
            )?;
            let Some(replica) = &state.replica else {
                writeln!(f, "  replicates from nobody")?;
                continue;
            };
            let source = match self.name_of(&replica.source_host, replica.source_port) {
                Some(name) => format!("{name} ({}:{})", replica.source_host, replica.source_port),
                None => format!("{}:{}", replica.source_host, replica.source_port),
            };
            writeln!(
                f,
                "  {} from {source}: {}{}",
                if replica.running() { "OK" } else { "BROKEN" },
                replica.summary(),
                if replica.unapplied_relay_log() {
                    ", relay log not yet applied"
                } else {
                    ""
                }
            )?;
            if let (Some((file, read)), Some((exec_file, exec))) =
                (&replica.read_position, &replica.exec_position)
            {
                writeln!(f, "    read {file}:{read}, applied {exec_file}:{exec}")?;
            }
            if let Some(gtid) = &replica.gtid_received {
                writeln!(f, "    gtid received {gtid}")?;
            }
            if let Some(e) = &replica.last_io_error {
                writeln!(f, "    Last_IO_Error: {e}")?;
            }
            if let Some(e) = &replica.last_sql_error {
                writeln!(f, "    Last_SQL_Error: {e}")?;
            }
        }
        for warning in &self.warnings {
            writeln!(f, "warning: {warning}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{Flavor, ReplicaStatus};

    fn state(server_id: u64, offset: u64, read_only: bool, source: Option<&str>) -> ServerState {
        ServerState {
            version: "10.11.19-MariaDB".into(),
            flavor: Flavor::MariaDb,
            server_id,
            read_only,
            super_read_only: None,
            auto_increment_increment: 2,
            auto_increment_offset: offset,
            log_bin: true,
            gtid_position: None,
            replica: source.map(|host| ReplicaStatus {
                source_host: host.into(),
                source_port: 3306,
                io_running: "Yes".into(),
                sql_running: "Yes".into(),
                seconds_behind: Some(0),
                last_io_error: None,
                last_sql_error: None,
                read_position: None,
                exec_position: None,
                gtid_received: None,
                io_state: None,
            }),
        }
    }

    #[test]
    fn a_good_pair_has_no_warnings_and_the_classic_mistakes_are_named() {
        let a = PairMember::new("master", Endpoint::new("10.1.0.1", 3306));
        let b = PairMember::new("slave", Endpoint::new("10.2.0.2", 3306));
        let good = pair_warnings(
            (&a, &state(1, 1, false, Some("10.2.0.2"))),
            (&b, &state(2, 2, true, Some("10.1.0.1"))),
        );
        assert!(good.is_empty(), "{good:?}");
        let bad = pair_warnings(
            (&a, &state(1, 1, false, Some("10.2.0.2"))),
            (&b, &state(1, 1, false, None)),
        );
        let text: Vec<String> = bad.iter().map(ToString::to_string).collect();
        assert!(
            text[0].starts_with("both servers have server_id 1"),
            "{text:?}"
        );
        assert!(text.iter().any(|t| t.contains("auto_increment_offset 1")));
        assert!(text
            .iter()
            .any(|t| t.starts_with("both servers are writable")));
        assert!(text
            .iter()
            .any(|t| t == "slave does not replicate from master (10.1.0.1:3306): one direction of the pair is missing (failoverd mysql setup)"));
    }
}
