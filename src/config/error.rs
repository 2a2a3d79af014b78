//! Config errors and where they are: key paths, their lines in the TOML source, the collector.

use std::path::{Path, PathBuf};

/// A config that cannot be used, with where and why.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// TOML syntax, an unknown key, a wrong type.
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// toml's message, with the line and a caret.
        message: String,
    },
    /// Well-formed but wrong.
    #[error("{path}{}: {key}: {message}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The line of the key, when it can be found.
        line: Option<usize>,
        /// The key (`policy.order`, `check[2].port`).
        key: String,
        /// What is wrong and what was expected.
        message: String,
    },
    /// Which server of the file this process is cannot be told (`--node`, `FAILOVERD_NODE`,
    /// the host name).
    #[error("{path}: {message}")]
    Local {
        /// The file.
        path: PathBuf,
        /// What is wrong and the fix.
        message: String,
    },
}

/// One step of a key path: a table key or an array index.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

/// The 1-based line of a key path in TOML source, if it is there: the key's own line, or the
/// deepest part of the path that exists.
pub(crate) fn line_of(source: &str, path: &[Seg<'_>]) -> Option<usize> {
    let document = toml_edit::Document::parse(source).ok()?;
    let mut item = document.as_item();
    let mut span = None;
    for seg in path {
        let next = match seg {
            Seg::Key(key) => {
                let Some((key_repr, next)) =
                    item.as_table_like().and_then(|t| t.get_key_value(key))
                else {
                    break;
                };
                span = key_repr.span().or_else(|| next.span()).or(span);
                next
            }
            Seg::Index(index) => {
                let Some(next) = item.get(*index) else { break };
                span = next.span().or(span);
                next
            }
        };
        item = next;
    }
    span.map(|s| line_number(source, s.start))
}

/// The 1-based line of byte `offset` in `source`.
pub(crate) fn line_number(source: &str, offset: usize) -> usize {
    source[..offset.min(source.len())].matches('\n').count() + 1
}

/// A key path as users write it: `check[2].port` (indexes from 1).
pub(crate) fn key_name(at: &[Seg<'_>]) -> String {
    at.iter()
        .map(|s| match s {
            Seg::Key(k) => format!(".{k}"),
            Seg::Index(i) => format!("[{}]", i + 1),
        })
        .collect::<String>()
        .trim_start_matches('.')
        .to_owned()
}

/// Collects every problem of one config file, each with its line.
pub(crate) struct Validator<'a> {
    pub(crate) path: &'a Path,
    pub(crate) source: &'a str,
    pub(crate) errors: Vec<ConfigError>,
}

impl<'a> Validator<'a> {
    /// A collector for the file `path` holding `source`.
    pub(crate) fn new(path: &'a Path, source: &'a str) -> Self {
        Self {
            path,
            source,
            errors: Vec::new(),
        }
    }

    /// Records that the key at `at` is wrong, and why.
    pub(crate) fn fail(&mut self, at: &[Seg<'_>], message: impl Into<String>) {
        self.errors.push(ConfigError::Invalid {
            path: self.path.to_owned(),
            line: line_of(self.source, at),
            key: key_name(at),
            message: message.into(),
        });
    }
}
