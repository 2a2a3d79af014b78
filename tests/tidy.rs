//! Checks the project's habits (STYLE.md) over the source tree, so that they hold without
//! anyone having to remember them.

use std::path::{Path, PathBuf};

/// Most lines of a non-test source file (STYLE.md: "Files and functions stay short").
const MAX_FILE_LINES: usize = 800;
/// Most lines of a function without a comment saying why it is longer.
const MAX_FN_LINES: usize = 100;

fn rust_sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name == "target" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            rust_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The workspace's library crates: every `failover-*` directory with a manifest.
fn crates() -> Vec<PathBuf> {
    let mut crates: Vec<PathBuf> = std::fs::read_dir(".")
        .map(|entries| {
            entries
                .flatten()
                .map(|e| PathBuf::from(e.file_name()))
                .filter(|p| p.to_string_lossy().starts_with("failover-"))
                .filter(|p| p.join("Cargo.toml").is_file())
                .collect()
        })
        .unwrap_or_default();
    crates.sort();
    crates
}

fn sources() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs: Vec<PathBuf> = ["src", "examples", "benches", "tests", "fuzz"]
        .iter()
        .map(PathBuf::from)
        .collect();
    dirs.extend(crates());
    for dir in dirs {
        rust_sources(&dir, &mut files);
    }
    files.sort();
    assert!(
        files.len() > 10,
        "the tidy test runs from the workspace root"
    );
    files
}

/// Whether `path` is library or daemon code: under `src/` or a crate's `src/`.
fn is_program_source(path: &Path) -> bool {
    path.starts_with("src")
        || crates()
            .iter()
            .any(|krate| path.starts_with(krate.join("src")))
}

/// Whether a file under `src/` holds only tests (`tests.rs`, or a `tests/` folder).
fn is_test_file(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n == "tests.rs")
        || path.components().any(|c| c.as_os_str() == "tests")
}

/// The lines of a file before its unit tests: before the first line that starts with
/// `#[cfg(test)]` (tests sit at the bottom of the file).
fn code_lines(text: &str) -> Vec<&str> {
    text.lines()
        .take_while(|line| !line.starts_with("#[cfg(test)]"))
        .collect()
}

/// The non-test program sources with their code (the part before the unit tests).
fn program_code() -> Vec<(PathBuf, String)> {
    sources()
        .into_iter()
        .filter(|p| is_program_source(p) && !is_test_file(p))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            let code = code_lines(&text).join("\n");
            (p, code)
        })
        .collect()
}

#[test]
fn every_rust_file_opens_with_a_doc_line() {
    let missing: Vec<String> = sources()
        .into_iter()
        .filter(|path| {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            !text.trim_start().starts_with("//!")
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "files without a leading //! doc line: {missing:?}"
    );
}

#[test]
fn library_code_has_no_bare_unwrap_or_anyhow() {
    let mut offenders = Vec::new();
    for path in sources() {
        let library = crates()
            .iter()
            .any(|krate| path.starts_with(krate.join("src")));
        if !library {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        // Unit tests sit at the bottom of the file, after `#[cfg(test)]`.
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (number, line) in code.lines().enumerate() {
            let line = line.trim();
            if line.starts_with("//") {
                continue;
            }
            if line.contains(".unwrap()") || line.contains("anyhow") {
                offenders.push(format!("{}:{}: {line}", path.display(), number + 1));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "library code must return errors (no unwrap, no anyhow):\n{}",
        offenders.join("\n")
    );
}

#[test]
fn every_crate_uses_the_workspace_lints() {
    let mut manifests = vec![PathBuf::from("Cargo.toml")];
    manifests.extend(crates().iter().map(|krate| krate.join("Cargo.toml")));
    assert!(
        manifests.len() >= 5,
        "the workspace's crates: {manifests:?}"
    );
    for manifest in manifests {
        let text = std::fs::read_to_string(&manifest).unwrap_or_default();
        assert!(
            text.contains("[lints]\nworkspace = true"),
            "{} must have `[lints] workspace = true`",
            manifest.display()
        );
    }
}

#[test]
fn no_source_file_is_over_800_lines() {
    let mut long: Vec<String> = program_code()
        .into_iter()
        .map(|(path, code)| (path, code.split('\n').count()))
        .filter(|(_, lines)| *lines > MAX_FILE_LINES)
        .map(|(path, lines)| format!("{}: {lines} lines before its tests", path.display()))
        .collect();
    long.sort();
    assert!(
        long.is_empty(),
        "source files over {MAX_FILE_LINES} lines (split them by what they do; STYLE.md):\n{}",
        long.join("\n")
    );
}

#[test]
fn no_function_is_over_100_lines_without_a_reason() {
    let mut long = Vec::new();
    for (path, code) in program_code() {
        let lines: Vec<&str> = code.lines().collect();
        for function in functions(&code) {
            let length = function.last_line - function.first_line + 1;
            if length > MAX_FN_LINES && !has_reason(&lines, function.first_line) {
                long.push(format!(
                    "{}:{}: fn {} is {length} lines",
                    path.display(),
                    function.first_line + 1,
                    function.name
                ));
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_FN_LINES} lines without a `// Long: why` comment just above them \
         (split them, or say why not; STYLE.md):\n{}",
        long.join("\n")
    );
}

/// Whether the lines just above line `fn_line` (its doc comment, attributes and comments, up to
/// the first other line) hold a plain `//` comment: the reason the function is long.
fn has_reason(lines: &[&str], fn_line: usize) -> bool {
    lines[..fn_line]
        .iter()
        .rev()
        .map(|line| line.trim())
        .take_while(|line| line.starts_with("//") || line.starts_with("#["))
        .any(|line| {
            line.starts_with("//") && !line.starts_with("///") && !line.starts_with("//!") && {
                line.trim_start_matches('/').trim().len() > 10
            }
        })
}

/// A function found in source text: its name and its first and last lines (0-based).
#[derive(Debug, PartialEq)]
struct Function {
    name: String,
    first_line: usize,
    last_line: usize,
}

/// Every function with a body in `code`, nested ones too, by brace matching over the text with
/// comments, strings and character literals blanked out.
fn functions(code: &str) -> Vec<Function> {
    let blank = blank_out(code);
    let bytes = blank.as_bytes();
    let line_of = |at: usize| bytes[..at].iter().filter(|&&b| b == b'\n').count();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(offset) = blank[at..].find("fn") {
        let start = at + offset;
        at = start + 2;
        let before_ok = start == 0 || !is_ident(bytes[start - 1]);
        let after = &blank[start + 2..];
        let name_start = after.len() - after.trim_start().len();
        if !before_ok || name_start == 0 {
            continue; // part of a longer word, or `fn(` (a function pointer type)
        }
        let name: String = after[name_start..]
            .bytes()
            .take_while(|&b| is_ident(b))
            .map(char::from)
            .collect();
        if name.is_empty() {
            continue;
        }
        // The body opens at the first `{` before any `;` (a `;` first: no body).
        let Some(open) = blank[start..].find(['{', ';']).map(|o| start + o) else {
            continue;
        };
        if bytes[open] == b';' {
            continue;
        }
        let mut depth = 0usize;
        let mut close = None;
        for (i, &b) in bytes.iter().enumerate().skip(open) {
            match b {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        close = Some(i);
                        break;
                    }
                }
                _ => {}
            }
        }
        if let Some(close) = close {
            found.push(Function {
                name,
                first_line: line_of(start),
                last_line: line_of(close),
            });
        }
    }
    found
}

/// `code` with the insides of comments, string literals (plain, byte, raw) and character
/// literals replaced by spaces, line breaks kept: what is left are the braces of the code.
fn blank_out(code: &str) -> String {
    let chars: Vec<char> = code.chars().collect();
    let mut out = String::with_capacity(code.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if let Some(hashes) = raw_string_start(&chars, i) {
            // r"...", r#"..."#, br"...": no escapes, ends at `"` and the same number of `#`.
            let open = chars[i..].iter().position(|&c| c == '"').unwrap_or(0) + i;
            for _ in i..=open {
                out.push(' ');
            }
            i = open + 1;
            while i < chars.len() {
                let closes =
                    chars[i] == '"' && (1..=hashes).all(|k| chars.get(i + k) == Some(&'#'));
                if closes {
                    for _ in 0..=hashes {
                        out.push(' ');
                    }
                    i += hashes + 1;
                    break;
                }
                out.push(blank(chars[i]));
                i += 1;
            }
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if let Some(&c) = chars.get(i) {
                    out.push(blank(c));
                }
                i += 1;
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' {
            // A character literal ('x', '\n', '\u{7b}'), or a lifetime ('a) left as it is.
            let literal_end = if next == Some('\\') {
                // The escaped character is skipped: '\'' ends one later.
                chars
                    .get(i + 3..)
                    .and_then(|rest| rest.iter().position(|&c| c == '\''))
                    .map(|p| i + 3 + p)
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match literal_end {
                Some(end) => {
                    for _ in i..=end {
                        out.push(' ');
                    }
                    i = end + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// At `i`, the start of a raw string (`r"`, `r#"`, `br"`...): how many `#` it uses.
fn raw_string_start(chars: &[char], i: usize) -> Option<usize> {
    let ident_before = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
    if ident_before {
        return None;
    }
    let mut j = i;
    if chars.get(j) == Some(&'b') {
        j += 1;
    }
    if chars.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let hashes = chars[j..].iter().take_while(|&&c| c == '#').count();
    (chars.get(j + hashes) == Some(&'"')).then_some(hashes)
}

#[test]
fn functions_are_measured_by_their_braces_not_those_in_strings_or_comments() {
    let code = r##"
fn short() {
    let brace = '{';
    let text = "}}} {";
    let raw = r#"{ "quoted" }"#;
    // a comment with }
    /* a block { with /* nested */ braces */
    let lifetime: &'static str = "x";
}

// Long: a reason.
fn other<'a>(x: &'a str) -> &'a str
where
    'a: 'a,
{
    x
}

trait T {
    fn declared(&self);
}
"##;
    let found = functions(code);
    assert_eq!(
        found,
        vec![
            Function {
                name: "short".into(),
                first_line: 1,
                last_line: 8
            },
            Function {
                name: "other".into(),
                first_line: 11,
                last_line: 16
            },
        ]
    );
    let lines: Vec<&str> = code.lines().collect();
    assert!(has_reason(&lines, 11));
    assert!(!has_reason(&lines, 1));
}
