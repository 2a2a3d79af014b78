//! `failoverd mysql setup`: two servers made a master-master pair, idempotently.

use std::time::Duration;

use crate::client::{literal, Credentials, Session};
use crate::error::MysqlError;
use crate::pair::{pair_warnings, PairMember, PairWarning};
use crate::status::{Flavor, ServerState};

/// What [`setup_pair`] needs.
#[derive(Clone, Debug)]
pub struct SetupOptions {
    /// The two servers.
    pub servers: [PairMember; 2],
    /// An administrator on both (creates users, `CHANGE MASTER TO`, `START SLAVE`).
    pub admin: Credentials,
    /// The replication user to create on both (`'user'@'%'`, `REPLICATION SLAVE`).
    pub replication: Credentials,
    /// Budget of each call.
    pub timeout: Duration,
    /// How long to wait for both IO threads to connect at the end.
    pub wait_running: Duration,
}

/// What [`setup_pair`] did.
#[derive(Clone, Debug, Default)]
pub struct SetupReport {
    /// Each step, in words (`slave: CHANGE MASTER TO master (10.1.0.1:3306) at mysql-bin.000002:342`).
    pub steps: Vec<String>,
    /// The classic mistakes still present afterwards (e.g. both servers writable).
    pub warnings: Vec<PairWarning>,
}

/// Makes `servers` replicate from each other: the replication user on both (not written to the
/// binary log), then on each server that does not yet replicate from its peer `CHANGE MASTER TO`
/// the peer's current binary log position, and `START SLAVE` where a thread is stopped.
///
/// Refuses (changing nothing) when a server already replicates from another server, when both
/// have the same `server_id`, or when one writes no binary log. Running it again on a working
/// pair changes nothing but the replication user's password.
pub async fn setup_pair(options: &SetupOptions) -> Result<SetupReport, MysqlError> {
    let [a, b] = &options.servers;
    let mut sessions = [
        Session::connect(&a.endpoint, &options.admin, options.timeout).await?,
        Session::connect(&b.endpoint, &options.admin, options.timeout).await?,
    ];
    let result = run(options, &mut sessions).await;
    let [sa, sb] = sessions;
    sa.close().await;
    sb.close().await;
    result
}

/// The steps of [`setup_pair`] on the open sessions, in order.
async fn run(
    options: &SetupOptions,
    sessions: &mut [Session; 2],
) -> Result<SetupReport, MysqlError> {
    let members = &options.servers;
    let mut report = SetupReport::default();
    let mut states = Vec::with_capacity(2);
    for session in sessions.iter_mut() {
        // Literals below escape with backslashes; make sure the server reads them that way.
        session.exec("SET SESSION sql_mode = ''").await?;
        states.push(ServerState::fetch(session).await?);
    }
    // Everything that makes us refuse is checked before anything is changed.
    check_pair(members, &states)?;
    create_replication_user(options, sessions, &mut report).await?;
    start_replication(options, sessions, &states, &mut report).await?;
    let final_states = wait_running(options, sessions, &mut report).await?;
    report.warnings = pair_warnings(
        (&members[0], &final_states[0]),
        (&members[1], &final_states[1]),
    );
    Ok(report)
}

/// A refusal about `member`.
fn refuse(member: &PairMember, message: String) -> MysqlError {
    MysqlError::Refused {
        endpoint: member.endpoint.clone(),
        message: format!("{}: {message}", member.name),
    }
}

/// Refuses a server that replicates from another server or writes no binary log, and a pair
/// with one `server_id`.
fn check_pair(members: &[PairMember; 2], states: &[ServerState]) -> Result<(), MysqlError> {
    for i in 0..2 {
        let (member, state, peer) = (&members[i], &states[i], &members[1 - i]);
        if let Some(replica) = &state.replica {
            let from_peer = replica.source_host == peer.endpoint.host
                && replica.source_port == peer.endpoint.port;
            if !from_peer {
                return Err(refuse(member, format!(
                    "already replicates from {}:{}, not from {} ({}); failoverd will not take it over (run RESET SLAVE ALL on it first if that is what you want)",
                    replica.source_host, replica.source_port, peer.name, peer.endpoint
                )));
            }
        }
        if !state.log_bin {
            return Err(refuse(member, "writes no binary log (log_bin = OFF), so its peer cannot replicate from it: set log_bin in its my.cnf and restart it".to_owned()));
        }
    }
    if states[0].server_id == states[1].server_id {
        return Err(refuse(
            &members[1],
            format!(
                "has server_id {} like {}: set a distinct server_id in each my.cnf and restart",
                states[1].server_id, members[0].name
            ),
        ));
    }
    Ok(())
}

/// The replication user on both servers, with the configured password.
async fn create_replication_user(
    options: &SetupOptions,
    sessions: &mut [Session; 2],
    report: &mut SetupReport,
) -> Result<(), MysqlError> {
    let user = format!("{}@'%'", literal(&options.replication.user));
    for (session, member) in sessions.iter_mut().zip(&options.servers) {
        // The user is made on each side by hand, not replicated: each server's binary log must
        // not carry it to a peer that already has it.
        session.exec("SET SESSION sql_log_bin = 0").await?;
        let password = literal(&options.replication.password);
        session
            .exec(&format!(
                "CREATE USER IF NOT EXISTS {user} IDENTIFIED BY {password}"
            ))
            .await?;
        session
            .exec(&format!("ALTER USER {user} IDENTIFIED BY {password}"))
            .await?;
        session
            .exec(&format!("GRANT REPLICATION SLAVE ON *.* TO {user}"))
            .await?;
        session.exec("SET SESSION sql_log_bin = 1").await?;
        report.steps.push(format!(
            "{}: replication user {} ready",
            member.name, options.replication.user
        ));
    }
    Ok(())
}

/// On each server: `CHANGE MASTER TO` its peer's current binary log position unless it already
/// replicates from the peer, and `START SLAVE` where a thread is stopped.
async fn start_replication(
    options: &SetupOptions,
    sessions: &mut [Session; 2],
    states: &[ServerState],
    report: &mut SetupReport,
) -> Result<(), MysqlError> {
    let members = &options.servers;
    // Each side starts from where its peer's binary log is now.
    let mut positions = Vec::with_capacity(2);
    for session in sessions.iter_mut() {
        positions.push(binlog_position(session).await?);
    }
    for i in 0..2 {
        let (member, state, peer) = (&members[i], &states[i], &members[1 - i]);
        let session = &mut sessions[i];
        match &state.replica {
            Some(replica) => {
                report.steps.push(format!(
                    "{}: already replicates from {} ({}); position kept",
                    member.name, peer.name, peer.endpoint
                ));
                if !replica.running() {
                    session.exec(state.flavor.start_replica()).await?;
                    report.steps.push(format!(
                        "{}: {} (IO was {}, SQL was {})",
                        member.name,
                        state.flavor.start_replica(),
                        replica.io_running,
                        replica.sql_running
                    ));
                }
            }
            None => {
                let (file, position) = &positions[1 - i];
                let change =
                    change_source(state.flavor, peer, &options.replication, file, *position);
                session.exec(&change).await?;
                session.exec(state.flavor.start_replica()).await?;
                report.steps.push(format!(
                    "{}: replicates from {} ({}) from {file}:{position}, started",
                    member.name, peer.name, peer.endpoint
                ));
            }
        }
    }
    Ok(())
}

/// Waits (bounded by `wait_running`) for both IO threads to connect; reports the threads still
/// not running and returns the servers' last states.
async fn wait_running(
    options: &SetupOptions,
    sessions: &mut [Session; 2],
    report: &mut SetupReport,
) -> Result<Vec<ServerState>, MysqlError> {
    let deadline = tokio::time::Instant::now() + options.wait_running;
    let final_states = loop {
        let mut now_states = Vec::with_capacity(2);
        for session in sessions.iter_mut() {
            now_states.push(ServerState::fetch(session).await?);
        }
        let running = now_states
            .iter()
            .all(|s| s.replica.as_ref().is_some_and(|r| r.running()));
        if running || tokio::time::Instant::now() >= deadline {
            break now_states;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for (member, state) in options.servers.iter().zip(&final_states) {
        if let Some(replica) = state.replica.as_ref().filter(|r| !r.running()) {
            report.steps.push(format!(
                "{}: not running yet: {}",
                member.name,
                replica.describe()
            ));
        }
    }
    Ok(final_states)
}

/// The server's own binary log file and position (`SHOW BINARY LOG STATUS` on MySQL 8.4,
/// `SHOW MASTER STATUS` elsewhere).
async fn binlog_position(session: &mut Session) -> Result<(String, u64), MysqlError> {
    let rows = match session.rows("SHOW MASTER STATUS").await {
        Err(MysqlError::Server { code: 1064, .. }) => {
            session.rows("SHOW BINARY LOG STATUS").await?
        }
        other => other?,
    };
    let row = rows.first();
    let file = row.and_then(|r| r.get("File").cloned().flatten());
    let position = row
        .and_then(|r| r.get("Position").cloned().flatten())
        .and_then(|p| p.parse::<u64>().ok());
    match file.zip(position) {
        Some(found) => Ok(found),
        None => Err(MysqlError::Refused {
            endpoint: session.endpoint().clone(),
            message: "SHOW MASTER STATUS is empty: the binary log is off (set log_bin in my.cnf)"
                .to_owned(),
        }),
    }
}

fn change_source(
    flavor: Flavor,
    peer: &PairMember,
    replication: &Credentials,
    file: &str,
    position: u64,
) -> String {
    let (host, port) = (literal(&peer.endpoint.host), peer.endpoint.port);
    let (user, password, file) = (
        literal(&replication.user),
        literal(&replication.password),
        literal(file),
    );
    match flavor {
        Flavor::MySqlReplica => format!(
            "CHANGE REPLICATION SOURCE TO SOURCE_HOST = {host}, SOURCE_PORT = {port}, SOURCE_USER = {user}, \
             SOURCE_PASSWORD = {password}, SOURCE_LOG_FILE = {file}, SOURCE_LOG_POS = {position}"
        ),
        Flavor::MariaDb | Flavor::MySqlLegacy => format!(
            "CHANGE MASTER TO MASTER_HOST = {host}, MASTER_PORT = {port}, MASTER_USER = {user}, \
             MASTER_PASSWORD = {password}, MASTER_LOG_FILE = {file}, MASTER_LOG_POS = {position}"
        ),
    }
}
