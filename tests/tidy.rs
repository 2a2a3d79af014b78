//! Checks the project's habits (STYLE.md) over the source tree, so that they hold without
//! anyone having to remember them.

use std::path::{Path, PathBuf};

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

fn sources() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in [
        "src",
        "failover-core",
        "failover-dns",
        "failover-sync",
        "failover-mysql",
        "failover-testkit",
        "examples",
        "benches",
        "tests",
    ] {
        rust_sources(Path::new(dir), &mut files);
    }
    files.sort();
    assert!(
        files.len() > 10,
        "the tidy test runs from the workspace root"
    );
    files
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
        let library = path.starts_with("failover-core/src")
            || path.starts_with("failover-dns/src")
            || path.starts_with("failover-sync/src")
            || path.starts_with("failover-mysql/src");
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
    for manifest in [
        "Cargo.toml",
        "failover-core/Cargo.toml",
        "failover-dns/Cargo.toml",
        "failover-sync/Cargo.toml",
        "failover-mysql/Cargo.toml",
        "failover-testkit/Cargo.toml",
    ] {
        let text = std::fs::read_to_string(manifest).unwrap_or_default();
        assert!(
            text.contains("[lints]\nworkspace = true"),
            "{manifest} must have `[lints] workspace = true`"
        );
    }
}
