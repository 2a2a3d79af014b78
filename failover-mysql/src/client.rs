//! One connection to one server, every call under a timeout, closed explicitly.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Row, Value};

use crate::endpoint::Endpoint;
use crate::error::MysqlError;

/// A user and its password. The password never appears in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub user: String,
    /// The password (empty for none).
    pub password: String,
}

impl Credentials {
    /// A user with a password.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            user: user.into(),
            password: password.into(),
        }
    }

    /// Reads the password from `path` (trailing newline removed), so it stays out of configs.
    pub fn with_password_file(
        user: impl Into<String>,
        path: &std::path::Path,
    ) -> Result<Self, MysqlError> {
        let password = std::fs::read_to_string(path).map_err(|e| MysqlError::PasswordFile {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        Ok(Self::new(user, password.trim_end_matches(['\r', '\n'])))
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// One row as column name → text (`None` for SQL NULL).
pub(crate) type TextRow = BTreeMap<String, Option<String>>;

/// A connection whose every call is bounded by `budget` (mysql_async has no timeouts of its
/// own). Close it with [`Session::close`]; dropping it leaves mysql_async to close it in the
/// background.
pub(crate) struct Session {
    conn: Conn,
    endpoint: Endpoint,
    budget: Duration,
}

impl Session {
    /// Connects and authenticates within `budget`.
    pub(crate) async fn connect(
        endpoint: &Endpoint,
        credentials: &Credentials,
        budget: Duration,
    ) -> Result<Self, MysqlError> {
        let opts = OptsBuilder::default()
            .ip_or_hostname(endpoint.host.clone())
            .tcp_port(endpoint.port)
            .user(Some(credentials.user.clone()))
            .pass(Some(credentials.password.clone()))
            // Stay on TCP: the server probed is the one at this address, not a local socket.
            .prefer_socket(false)
            .stmt_cache_size(0);
        let conn = match tokio::time::timeout(budget, Conn::new(opts)).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return Err(MysqlError::from_driver(endpoint, &credentials.user, e)),
            Err(_) => {
                return Err(MysqlError::Timeout {
                    endpoint: endpoint.clone(),
                    what: "connect".to_owned(),
                    after: budget,
                })
            }
        };
        Ok(Self {
            conn,
            endpoint: endpoint.clone(),
            budget,
        })
    }

    /// Runs a statement that returns no rows.
    pub(crate) async fn exec(&mut self, sql: &str) -> Result<(), MysqlError> {
        let what = statement_name(sql);
        match tokio::time::timeout(self.budget, self.conn.query_drop(sql)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(MysqlError::from_driver(&self.endpoint, "", e)),
            Err(_) => Err(MysqlError::Timeout {
                endpoint: self.endpoint.clone(),
                what,
                after: self.budget,
            }),
        }
    }

    /// Runs a query and returns its rows as text.
    pub(crate) async fn rows(&mut self, sql: &str) -> Result<Vec<TextRow>, MysqlError> {
        let what = statement_name(sql);
        let rows: Vec<Row> = match tokio::time::timeout(self.budget, self.conn.query(sql)).await {
            Ok(Ok(rows)) => rows,
            Ok(Err(e)) => return Err(MysqlError::from_driver(&self.endpoint, "", e)),
            Err(_) => {
                return Err(MysqlError::Timeout {
                    endpoint: self.endpoint.clone(),
                    what,
                    after: self.budget,
                })
            }
        };
        Ok(rows.iter().map(text_row).collect())
    }

    /// The endpoint this session talks to.
    pub(crate) fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Closes the connection (COM_QUIT), within the budget; a failure to say goodbye is not an
    /// error worth reporting.
    pub(crate) async fn close(self) {
        let endpoint = self.endpoint;
        if tokio::time::timeout(self.budget, self.conn.disconnect())
            .await
            .is_err()
        {
            tracing::debug!(%endpoint, "closing the MySQL connection timed out");
        }
    }
}

fn text_row(row: &Row) -> TextRow {
    row.columns_ref()
        .iter()
        .enumerate()
        .map(|(i, column)| {
            let value = match row.as_ref(i) {
                None | Some(Value::NULL) => None,
                Some(Value::Bytes(bytes)) => Some(String::from_utf8_lossy(bytes).into_owned()),
                Some(Value::Int(n)) => Some(n.to_string()),
                Some(Value::UInt(n)) => Some(n.to_string()),
                Some(other) => Some(other.as_sql(true).trim_matches('\'').to_owned()),
            };
            (column.name_str().into_owned(), value)
        })
        .collect()
}

/// The first words of a statement, for timeout messages (`SHOW SLAVE STATUS`).
fn statement_name(sql: &str) -> String {
    sql.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// `text` as an SQL string literal. Sessions that send literals set `sql_mode = ''` first, so
/// backslashes escape in every server configuration.
pub(crate) fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{1a}' => out.push_str("\\Z"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_escape_quotes_and_backslashes() {
        assert_eq!(literal("it's"), "'it\\'s'");
        assert_eq!(literal("a\\b"), "'a\\\\b'");
        assert_eq!(literal("x\ny"), "'x\\ny'");
    }

    #[test]
    fn passwords_stay_out_of_debug_output() {
        let debug = format!("{:?}", Credentials::new("repl", "s3cret"));
        assert!(!debug.contains("s3cret"), "{debug}");
    }

    #[test]
    fn ipv6_endpoints_are_bracketed() {
        assert_eq!(Endpoint::new("::1", 3306).to_string(), "[::1]:3306");
    }
}
