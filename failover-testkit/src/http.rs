//! A real HTTP server: Python's `http.server` serving a temporary directory.

use std::net::IpAddr;
use std::process::Command;
use std::time::Duration;

use crate::TcpServer;

/// `python3 -m http.server` on one address and port, serving files the test wrote; killed on
/// drop. It can be stopped and started again (a web server that dies and comes back).
#[derive(Debug)]
pub struct HttpServer {
    address: IpAddr,
    /// The port it listens on.
    pub port: u16,
    limit: Duration,
    root: tempfile::TempDir,
    server: Option<TcpServer>,
}

impl HttpServer {
    /// Serves `files` (name, content) from a new temporary directory on `address:port`;
    /// returns once it accepts connections, panics if that takes longer than `limit`.
    pub fn serve(address: &str, port: u16, files: &[(&str, &str)], limit: Duration) -> Self {
        let root = crate::temp_dir();
        for (name, content) in files {
            std::fs::write(root.path().join(name), content)
                .unwrap_or_else(|e| panic!("cannot write {name} to serve: {e}"));
        }
        let mut server = Self {
            address: address
                .parse()
                .unwrap_or_else(|e| panic!("not an IP address: {address:?}: {e}")),
            port,
            limit,
            root,
            server: None,
        };
        server.start();
        server
    }

    /// (Re)starts it and waits until it accepts connections.
    pub fn start(&mut self) {
        let mut command = Command::new("python3");
        command
            .args(["-m", "http.server", &self.port.to_string(), "--bind"])
            .arg(self.address.to_string())
            .arg("--directory")
            .arg(self.root.path());
        self.server = Some(TcpServer::start(
            &mut command,
            self.address,
            self.port,
            self.limit,
            "python3",
        ));
    }

    /// Kills it.
    pub fn stop(&mut self) {
        self.server = None;
    }
}
