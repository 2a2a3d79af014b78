//! The real `dig`, as an operator would ask a name server.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::process::Command;

use crate::program;

/// Runs `dig @server-ip -p server-port ARGS…` and returns what it printed, whatever its exit
/// status (a failed lookup is for the caller to judge). Panics with the `apt-get install` line
/// when dig is missing.
pub fn dig<S: AsRef<OsStr>>(server: SocketAddr, args: &[S]) -> String {
    let output = Command::new(program("dig", "bind9-dnsutils"))
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string()])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run dig: {e}"));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// [`dig`] on tokio's blocking pool, so that a server on the test's own runtime can answer.
pub async fn dig_async(server: SocketAddr, args: Vec<String>) -> String {
    tokio::task::spawn_blocking(move || dig(server, &args))
        .await
        .unwrap_or_else(|e| panic!("dig panicked: {e}"))
}
