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

    /// Writes (or replaces) the file `name` it serves.
    pub fn write(&self, name: &str, content: &str) {
        std::fs::write(self.root.path().join(name), content)
            .unwrap_or_else(|e| panic!("cannot write {name} to serve: {e}"));
    }

    /// Kills it.
    pub fn stop(&mut self) {
        self.server = None;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    use super::*;

    fn get(port: u16, path: &str) -> std::io::Result<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", port))?;
        write!(stream, "GET {path} HTTP/1.0\r\n\r\n")?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        Ok(response)
    }

    #[test]
    fn it_serves_its_files_and_stops_and_starts_again() {
        let port = crate::free_port("127.0.0.1");
        let mut server = HttpServer::serve(
            "127.0.0.1",
            port,
            &[("health", "ok\n")],
            Duration::from_secs(10),
        );
        let response = get(port, "/health").unwrap();
        assert!(response.starts_with("HTTP/1.0 200"), "{response}");
        assert!(response.ends_with("\r\n\r\nok\n"), "{response}");
        server.stop();
        assert!(get(port, "/health").is_err(), "a stopped server is refused");
        server.start();
        assert!(get(port, "/health").unwrap().ends_with("ok\n"));
    }
}
