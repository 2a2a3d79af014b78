//! Every key the config's types know is documented in `docs/config.md`: under the `##` heading
//! that names its table (`` ## `[zone]` ``), as the first cell of a table row (`` | `interval` | ``).

#![allow(clippy::unwrap_used)] // tests

use failover::config::reference::{sections, Section};

/// The lines under the `##` heading holding `` `header` ``, up to the next `##` heading.
fn under<'a>(doc: &'a str, header: &str) -> Option<Vec<&'a str>> {
    let wanted = format!("`{header}`");
    let mut lines = doc.lines();
    lines.find(|l| l.starts_with("## ") && l.contains(&wanted))?;
    Some(lines.take_while(|l| !l.starts_with("## ")).collect())
}

/// Whether `key` (or `outer.key`) is in the first cell of a row among `lines`; a cell may list
/// several keys that share a meaning (`` | `user`, `password_file` | ``).
fn has_row(lines: &[&str], key: &str) -> bool {
    lines.iter().any(|line| {
        let Some(cell) = line.trim_start().strip_prefix('|') else {
            return false;
        };
        let first = cell.split('|').next().unwrap_or_default();
        first.contains(&format!("`{key}`")) || first.contains(&format!(".{key}`"))
    })
}

fn missing_in(doc: &str, section: &Section) -> Vec<String> {
    let own = under(doc, &section.header);
    let outer = section.within.as_deref().and_then(|h| under(doc, h));
    let Some(lines) = own.or(outer) else {
        return vec![format!(
            "no `## ` heading with `{}` (each table has one, e.g. ## `{}`)",
            section.header, section.header
        )];
    };
    // A key of an inline table (`records = [{ name = "@", ttl = 10 }]`) may be shown in its
    // example instead of a row of its own.
    let inline = |key: &str| {
        section.within.is_some() && lines.iter().any(|l| l.contains(&format!("{key} = ")))
    };
    // A key holding a table of its own (`fencing`) is documented by that table's header.
    let bare = section.header.trim_matches(|c| c == '[' || c == ']');
    let table = |key: &str| {
        let header = format!("`[{bare}.{key}]`");
        lines.iter().any(|l| l.contains(&header)) || doc.contains(&format!("## {header}"))
    };
    section
        .keys
        .iter()
        .filter(|key| !has_row(&lines, key) && !inline(key) && !table(key))
        .map(|key| format!("{}: no row | `{key}` | ...", section.header))
        .collect()
}

#[test]
fn every_config_key_is_documented_in_docs_config_md() {
    let sections = sections().unwrap();
    let doc = std::fs::read_to_string("docs/config.md").unwrap_or_default();
    let missing: Vec<String> = sections.iter().flat_map(|s| missing_in(&doc, s)).collect();
    assert!(
        missing.is_empty(),
        "docs/config.md does not document {} config key(s) the schema knows:\n  {}",
        missing.len(),
        missing.join("\n  ")
    );
}

#[test]
fn the_reference_knows_every_section_and_kind() {
    let sections = sections().unwrap();
    let check = sections.iter().find(|s| s.header == "[[check]]").unwrap();
    for key in [
        "kind",
        "name",
        "interval",
        "port",
        "query",
        "max_lag",
        "danger_accept_invalid_certs",
    ] {
        assert!(check.keys.contains(&key), "{key}: {:?}", check.keys);
    }
    assert!(sections.iter().any(|s| s.header == "[mysql.fencing]"));
    assert!(sections.iter().any(|s| s.header == "[zone.rate_limit]"));
    assert!(sections.iter().any(|s| s.header == "[zone.xdp]"));
    assert!(sections.iter().any(|s| s.header == "[[zone.keys]]"));
    assert!(sections.iter().any(|s| s.header == "[policies.NAME]"));
    assert!(sections.iter().any(|s| s.header == "[witness]"));
    assert!(sections.iter().any(|s| s.header == "[identity]"));
    assert!(!sections.iter().any(|s| s.header == "[[peer]]"));
    assert_eq!(sections.len(), 22);
}
