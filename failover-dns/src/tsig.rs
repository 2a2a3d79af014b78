//! TSIG keys (RFC 8945): [`TsigKey`], from a base64 secret or a BIND key file.

use std::fmt;
use std::path::Path;

use hickory_proto::rr::rdata::tsig::TsigAlgorithm as HickoryAlgorithm;
use hickory_proto::rr::{Name, TSigner};

use crate::error::DnsError;

/// The allowed clock difference between signer and verifier, in seconds (RFC 8945 recommends 300).
pub const TSIG_FUDGE: u16 = 300;

/// A TSIG MAC algorithm this crate can sign and verify with.
///
/// HMAC-MD5 and HMAC-SHA1 are deliberately absent (RFC 8945: MUST NOT / NOT RECOMMENDED).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TsigAlgorithm {
    /// `hmac-sha256`, the default of `tsig-keygen`.
    HmacSha256,
    /// `hmac-sha384`.
    HmacSha384,
    /// `hmac-sha512`.
    HmacSha512,
}

impl TsigAlgorithm {
    /// The algorithm's name as in BIND's `algorithm` clause (`hmac-sha256`).
    pub fn name(self) -> &'static str {
        match self {
            Self::HmacSha256 => "hmac-sha256",
            Self::HmacSha384 => "hmac-sha384",
            Self::HmacSha512 => "hmac-sha512",
        }
    }

    /// Parses an algorithm name, case-insensitively, with or without a trailing dot.
    pub fn parse(text: &str) -> Result<Self, String> {
        let lower = text.trim().trim_end_matches('.').to_ascii_lowercase();
        match lower.as_str() {
            "hmac-sha256" => Ok(Self::HmacSha256),
            "hmac-sha384" => Ok(Self::HmacSha384),
            "hmac-sha512" => Ok(Self::HmacSha512),
            "hmac-md5" | "hmac-md5.sig-alg.reg.int" | "hmac-sha1" | "hmac-sha224" => Err(format!(
                "algorithm {text:?} is not supported (weak or rare); make a new key with \
                 `tsig-keygen -a hmac-sha256 NAME` (supported: hmac-sha256, hmac-sha384, hmac-sha512)"
            )),
            _ => Err(format!(
                "unknown algorithm {text:?} (expected one of: hmac-sha256, hmac-sha384, hmac-sha512)"
            )),
        }
    }

    /// The same algorithm as hickory-proto names it.
    pub fn to_hickory(self) -> HickoryAlgorithm {
        match self {
            Self::HmacSha256 => HickoryAlgorithm::HmacSha256,
            Self::HmacSha384 => HickoryAlgorithm::HmacSha384,
            Self::HmacSha512 => HickoryAlgorithm::HmacSha512,
        }
    }
}

impl fmt::Display for TsigAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A shared TSIG key: its name, algorithm and secret, validated.
///
/// `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct TsigKey {
    name: String,
    algorithm: TsigAlgorithm,
    secret: Vec<u8>,
}

impl TsigKey {
    /// A key from its parts, the secret in base64 as `tsig-keygen` prints it.
    ///
    /// ```
    /// use failover_dns::{TsigAlgorithm, TsigKey};
    /// let key = TsigKey::new("failover-key", "hmac-sha256", "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ==")?;
    /// assert_eq!(key.algorithm(), TsigAlgorithm::HmacSha256);
    /// # Ok::<_, failover_dns::DnsError>(())
    /// ```
    pub fn new(name: &str, algorithm: &str, secret_base64: &str) -> Result<Self, DnsError> {
        Self::build(&format!("{name:?}"), name, algorithm, secret_base64)
    }

    /// Reads a BIND key file (`key "name" { algorithm hmac-sha256; secret "..."; };`, as written by
    /// `tsig-keygen` or `rndc-confgen -a`). With `name`, picks that key; without, the file must
    /// hold exactly one. Other statements in the file are skipped.
    pub fn from_bind_key_file(
        path: impl AsRef<Path>,
        name: Option<&str>,
    ) -> Result<Self, DnsError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| DnsError::TsigKey {
            source_name: shown.clone(),
            reason: format!("cannot read the key file: {error}"),
        })?;
        let keys = Self::parse_bind_keys(&shown, &text)?;
        let wanted = name.map(|n| n.trim_end_matches('.').to_ascii_lowercase());
        let mut matching: Vec<TsigKey> = keys
            .iter()
            .filter(|key| wanted.as_ref().is_none_or(|w| *w == key.name))
            .cloned()
            .collect();
        let names = || {
            keys.iter()
                .map(|key| format!("{:?}", key.name))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match (matching.len(), name) {
            (1, _) => Ok(matching.remove(0)),
            (0, None) => Err(DnsError::TsigKey {
                source_name: shown,
                reason:
                    "no `key \"NAME\" { algorithm ...; secret \"...\"; };` statement in the file \
                         (make one with `tsig-keygen -a hmac-sha256 NAME > FILE`)"
                        .to_owned(),
            }),
            (0, Some(name)) => Err(DnsError::TsigKey {
                source_name: shown,
                reason: format!("no key named {name:?} in the file (it has: {})", names()),
            }),
            _ => Err(DnsError::TsigKey {
                source_name: shown,
                reason: format!(
                    "the file holds several keys ({}); say which one to use",
                    names()
                ),
            }),
        }
    }

    /// Parses every `key` statement of BIND configuration text; `source` names it in errors.
    pub fn parse_bind_keys(source: &str, text: &str) -> Result<Vec<Self>, DnsError> {
        let tokens = conf_tokens(source, text)?;
        let mut keys = Vec::new();
        let mut index = 0;
        while index < tokens.len() {
            let (line, token) = &tokens[index];
            if token.word() == Some("key") {
                let (key, next) = parse_key_statement(source, &tokens, index)?;
                keys.push(key);
                index = next;
            } else if let ConfToken::Word(_) | ConfToken::Quoted(_) = token {
                index = skip_statement(source, &tokens, index, *line)?;
            } else {
                index += 1;
            }
        }
        Ok(keys)
    }

    fn build(shown: &str, name: &str, algorithm: &str, secret: &str) -> Result<Self, DnsError> {
        let error = |reason: String| DnsError::TsigKey {
            source_name: shown.to_owned(),
            reason,
        };
        let trimmed = name.trim().trim_end_matches('.');
        if trimmed.is_empty() {
            return Err(error("the key name is empty".to_owned()));
        }
        Name::from_ascii(trimmed)
            .map_err(|e| error(format!("key name {name:?} is not a domain name: {e}")))?;
        let algorithm = TsigAlgorithm::parse(algorithm).map_err(error)?;
        let compact: String = secret.chars().filter(|c| !c.is_whitespace()).collect();
        if compact.is_empty() {
            return Err(error(
                "the secret is empty (expected base64, as printed by `tsig-keygen`)".to_owned(),
            ));
        }
        let secret = data_encoding::BASE64
            .decode(compact.as_bytes())
            .or_else(|_| data_encoding::BASE64_NOPAD.decode(compact.as_bytes()))
            .map_err(|e| {
                error(format!(
                    "the secret is not valid base64 ({e}); copy the `secret` value from the key file \
                     `tsig-keygen` wrote"
                ))
            })?;
        Ok(Self {
            name: trimmed.to_ascii_lowercase(),
            algorithm,
            secret,
        })
    }

    /// The key's name, lowercase, without a trailing dot (`failover-key`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The MAC algorithm.
    pub fn algorithm(&self) -> TsigAlgorithm {
        self.algorithm
    }

    /// The decoded secret.
    pub fn secret(&self) -> &[u8] {
        &self.secret
    }

    /// A hickory-proto signer for this key (fudge [`TSIG_FUDGE`]), to sign requests and verify responses.
    pub fn signer(&self) -> Result<TSigner, DnsError> {
        let error = |reason: String| DnsError::TsigKey {
            source_name: format!("{:?}", self.name),
            reason,
        };
        let name = Name::from_ascii(&self.name)
            .map_err(|e| error(format!("key name is not a domain name: {e}")))?;
        TSigner::new(
            self.secret.clone(),
            self.algorithm.to_hickory(),
            name,
            TSIG_FUDGE,
        )
        .map_err(|e| error(format!("cannot sign with it: {e}")))
    }
}

impl fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// One token of BIND configuration syntax.
#[derive(Debug, PartialEq, Eq)]
enum ConfToken {
    Word(String),
    Quoted(String),
    Open,
    Close,
    Semicolon,
}

impl ConfToken {
    fn word(&self) -> Option<&str> {
        match self {
            Self::Word(word) => Some(word),
            _ => None,
        }
    }

    /// A word or a quoted string.
    fn text(&self) -> Option<&str> {
        match self {
            Self::Word(text) | Self::Quoted(text) => Some(text),
            _ => None,
        }
    }
}

/// Splits BIND configuration text into tokens with their 1-based line; `#`, `//` and `/* */`
/// comments are dropped.
fn conf_tokens(source: &str, text: &str) -> Result<Vec<(usize, ConfToken)>, DnsError> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            c if c.is_whitespace() => {}
            '#' => skip_line(&mut chars, &mut line),
            '/' if chars.peek() == Some(&'/') => skip_line(&mut chars, &mut line),
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let start = line;
                let mut previous = ' ';
                loop {
                    match chars.next() {
                        Some('/') if previous == '*' => break,
                        Some(c) => {
                            if c == '\n' {
                                line += 1;
                            }
                            previous = c;
                        }
                        None => {
                            return Err(DnsError::TsigKey {
                                source_name: format!("{source} line {start}"),
                                reason: "a /* comment is never closed".to_owned(),
                            })
                        }
                    }
                }
            }
            '{' => tokens.push((line, ConfToken::Open)),
            '}' => tokens.push((line, ConfToken::Close)),
            ';' => tokens.push((line, ConfToken::Semicolon)),
            '"' => {
                let start = line;
                let mut value = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => value.extend(chars.next()),
                        Some(c) => {
                            if c == '\n' {
                                line += 1;
                            }
                            value.push(c);
                        }
                        None => {
                            return Err(DnsError::TsigKey {
                                source_name: format!("{source} line {start}"),
                                reason: "a quoted string is never closed (missing `\"`)".to_owned(),
                            })
                        }
                    }
                }
                tokens.push((start, ConfToken::Quoted(value)));
            }
            c => {
                let mut word = String::from(c);
                while let Some(&next) = chars.peek() {
                    if next.is_whitespace() || "{};\"#".contains(next) {
                        break;
                    }
                    word.push(next);
                    chars.next();
                }
                tokens.push((line, ConfToken::Word(word)));
            }
        }
    }
    Ok(tokens)
}

fn skip_line(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, line: &mut usize) {
    for c in chars.by_ref() {
        if c == '\n' {
            *line += 1;
            break;
        }
    }
}

/// Skips a statement that is not a key (`options { ... };`, `include "x";`); returns the index after it.
fn skip_statement(
    source: &str,
    tokens: &[(usize, ConfToken)],
    mut index: usize,
    line: usize,
) -> Result<usize, DnsError> {
    let mut depth = 0usize;
    while let Some((_, token)) = tokens.get(index) {
        index += 1;
        match token {
            ConfToken::Open => depth += 1,
            ConfToken::Close => depth = depth.saturating_sub(1),
            ConfToken::Semicolon if depth == 0 => return Ok(index),
            _ => {}
        }
    }
    Err(DnsError::TsigKey {
        source_name: format!("{source} line {line}"),
        reason: "the statement starting here never ends (missing `;` or `}`)".to_owned(),
    })
}

/// Parses `key NAME { algorithm ALG; secret "B64"; };` starting at `index` (the `key` word).
fn parse_key_statement(
    source: &str,
    tokens: &[(usize, ConfToken)],
    index: usize,
) -> Result<(TsigKey, usize), DnsError> {
    let line = tokens.get(index).map_or(0, |(line, _)| *line);
    let at = |line: usize| format!("{source} line {line}");
    let expected = |line: usize, what: &str| {
        DnsError::TsigKey {
        source_name: at(line),
        reason: format!(
            "expected {what} (a key statement reads `key \"NAME\" {{ algorithm hmac-sha256; secret \"BASE64\"; }};`)"
        ),
    }
    };
    let name = match tokens.get(index + 1) {
        Some((_, token)) if token.text().is_some() => token.text().unwrap_or_default().to_owned(),
        _ => return Err(expected(line, "the key's name after `key`")),
    };
    if !matches!(tokens.get(index + 2), Some((_, ConfToken::Open))) {
        return Err(expected(line, "`{` after the key's name"));
    }
    let mut cursor = index + 3;
    let (mut algorithm, mut secret) = (None, None);
    loop {
        let Some((clause_line, token)) = tokens.get(cursor) else {
            return Err(expected(line, "`};` to close the key statement"));
        };
        match token {
            ConfToken::Close => {
                cursor += 1;
                if matches!(tokens.get(cursor), Some((_, ConfToken::Semicolon))) {
                    cursor += 1;
                }
                break;
            }
            ConfToken::Word(clause) => {
                let value = match (tokens.get(cursor + 1), tokens.get(cursor + 2)) {
                    (Some((_, value)), Some((_, ConfToken::Semicolon)))
                        if value.text().is_some() =>
                    {
                        value.text().unwrap_or_default().to_owned()
                    }
                    _ => return Err(expected(*clause_line, &format!("`{clause} VALUE;`"))),
                };
                match clause.to_ascii_lowercase().as_str() {
                    "algorithm" => algorithm = Some((*clause_line, value)),
                    "secret" => secret = Some(value),
                    other => {
                        return Err(DnsError::TsigKey {
                            source_name: at(*clause_line),
                            reason: format!(
                                "unknown clause {other:?} in key {name:?} (expected algorithm and secret)"
                            ),
                        })
                    }
                }
                cursor += 3;
            }
            _ => {
                return Err(expected(
                    *clause_line,
                    "`algorithm ...;` or `secret \"...\";`",
                ))
            }
        }
    }
    let Some((algorithm_line, algorithm)) = algorithm else {
        return Err(DnsError::TsigKey {
            source_name: at(line),
            reason: format!(
                "key {name:?} has no `algorithm` clause (add `algorithm hmac-sha256;`)"
            ),
        });
    };
    let Some(secret) = secret else {
        return Err(DnsError::TsigKey {
            source_name: at(line),
            reason: format!("key {name:?} has no `secret` clause (add `secret \"BASE64\";`)"),
        });
    };
    let key = TsigKey::build(&at(algorithm_line), &name, &algorithm, &secret)?;
    Ok((key, cursor))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;

    const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ==";

    #[test]
    fn parses_a_tsig_keygen_file() {
        let text = format!(
            "# made by tsig-keygen\nkey \"failover-key\" {{\n\talgorithm hmac-sha512;\n\tsecret \"{SECRET}\";\n}};\n"
        );
        let keys = TsigKey::parse_bind_keys("k.key", &text).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].name(), "failover-key");
        assert_eq!(keys[0].algorithm(), TsigAlgorithm::HmacSha512);
        assert_eq!(keys[0].secret(), b"secret-secret-secret-secret!");
        assert!(keys[0].signer().is_ok());
        assert!(!format!("{:?}", keys[0]).contains(SECRET));
    }

    #[test]
    fn skips_other_statements_and_comments() {
        let text = format!(
            "options {{ default-key \"x\"; }};\n/* a\n comment */ key rndc-key {{ algorithm HMAC-SHA256; // x\n secret \"{SECRET}\"; }};\nkey \"second\" {{ algorithm hmac-sha384; secret \"{SECRET}\"; }};\n"
        );
        let keys = TsigKey::parse_bind_keys("rndc.conf", &text).unwrap();
        let names: Vec<&str> = keys.iter().map(TsigKey::name).collect();
        assert_eq!(names, ["rndc-key", "second"]);
    }

    #[test]
    fn picks_the_named_key_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.conf");
        std::fs::write(
            &path,
            format!("key a {{ algorithm hmac-sha256; secret \"{SECRET}\"; }};\nkey b {{ algorithm hmac-sha256; secret \"{SECRET}\"; }};\n"),
        )
        .unwrap();
        assert_eq!(
            TsigKey::from_bind_key_file(&path, Some("b"))
                .unwrap()
                .name(),
            "b"
        );
        let error = TsigKey::from_bind_key_file(&path, None)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("several keys (\"a\", \"b\"); say which one"),
            "{error}"
        );
        let error = TsigKey::from_bind_key_file(&path, Some("c"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("no key named \"c\""), "{error}");
        let error = TsigKey::from_bind_key_file(dir.path().join("missing"), None)
            .unwrap_err()
            .to_string();
        assert!(error.contains("cannot read the key file"), "{error}");
    }

    #[test]
    fn errors_name_the_line_and_the_fix() {
        let error = TsigKey::parse_bind_keys(
            "k.key",
            "key \"k\" {\n algorithm hmac-md5;\n secret \"c2VjcmV0\";\n};\n",
        )
        .unwrap_err()
        .to_string();
        assert!(error.starts_with("tsig key k.key line 2: "), "{error}");
        assert!(error.contains("tsig-keygen -a hmac-sha256"), "{error}");

        let error = TsigKey::parse_bind_keys("k.key", "key \"k\" {\n algorithm hmac-sha256;\n};\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("no `secret` clause"), "{error}");

        let error = TsigKey::parse_bind_keys("k.key", "key \"k\" {\n secret \"x\" ;\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("expected `};`"), "{error}");

        let error = TsigKey::parse_bind_keys("k.key", "key \"k\" { secret \"abc")
            .unwrap_err()
            .to_string();
        assert!(error.contains("never closed"), "{error}");
    }

    #[test]
    fn rejects_bad_secrets_names_and_algorithms() {
        let error = TsigKey::new("k", "hmac-sha256", "not base64!")
            .unwrap_err()
            .to_string();
        assert!(error.contains("not valid base64"), "{error}");
        let error = TsigKey::new("k", "hmac-sha256", "  ")
            .unwrap_err()
            .to_string();
        assert!(error.contains("secret is empty"), "{error}");
        let error = TsigKey::new("", "hmac-sha256", SECRET)
            .unwrap_err()
            .to_string();
        assert!(error.contains("key name is empty"), "{error}");
        let error = TsigKey::new("k", "rot13", SECRET).unwrap_err().to_string();
        assert!(
            error.contains("unknown algorithm \"rot13\" (expected one of: hmac-sha256"),
            "{error}"
        );
        let key = TsigKey::new("Key.Example.", "hmac-sha384.", SECRET).unwrap();
        assert_eq!(key.name(), "key.example");
        assert_eq!(key.algorithm(), TsigAlgorithm::HmacSha384);
    }
}
