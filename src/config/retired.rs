//! The per-server keys of earlier versions (`[mirror] node`, `[cluster] observer`, `[[peer]]`,
//! ...), refused with how to write them now: one file serves every server, each server's own
//! facts sit in its `[[node]]` or the `[witness]`, and `--node` says which one a process is.
//!
//! They are found on the document before serde sees it and blanked out, so that every other
//! mistake in the file is reported in the same run.

use super::error::{Seg, Validator};
use super::kinded::blank;

/// How to write the old per-server `[mirror]` and `[cluster]` keys now.
const MOVED: [(&str, &str, &str); 11] = [
    ("mirror", "node", "this server is no longer written in the file (the same file serves every server): start failoverd with --node NAME, or set FAILOVERD_NODE, or name the [[node]] after the host"),
    ("mirror", "peer_node", "the mirror's pair is nodes = [\"a\", \"b\"] in [mirror] (default: the two [[node]]s)"),
    ("mirror", "listen", "each node's peer-link address is peer_address = \"IP:8054\" in its [[node]] (peer_listen = \"0.0.0.0:8054\" to bind another); the mirror listens there on [mirror] port (default 8055)"),
    ("mirror", "peer", "the other node's address is its [[node]] peer_address; the mirror dials it on [mirror] port (default 8055)"),
    ("mirror", "peer_fingerprint", "each node's key is fingerprint = \"sha256:...\" in its own [[node]]"),
    ("mirror", "certificate", IDENTITY),
    ("mirror", "key", IDENTITY),
    ("cluster", "certificate", IDENTITY),
    ("cluster", "key", IDENTITY),
    ("cluster", "observer", "this server is no longer written in the file (the same file serves every server): start failoverd with --node NAME, or set FAILOVERD_NODE, or name the [[node]] after the host; the witness is the [witness]"),
    ("cluster", "listen", "each observer's address is peer_address = \"IP:8054\" in its [[node]] or the [witness] (peer_listen = \"0.0.0.0:8054\" to bind another)"),
];

/// Where `certificate` and `key` went.
const IDENTITY: &str = "this server's key is certificate and key in [identity] (one key for the mirror and the observers; the same paths on every server)";

/// Reports each retired key with how to write it now, and blanks it out of `cleaned`.
pub(crate) fn check(
    document: &toml_edit::Document<&str>,
    v: &mut Validator<'_>,
    cleaned: &mut String,
) {
    for (section, key, fix) in MOVED {
        let Some(table) = document.get(section).and_then(|s| s.as_table_like()) else {
            continue;
        };
        let Some((key_repr, item)) = table.get_key_value(key) else {
            continue;
        };
        v.fail(
            &[Seg::Key(section), Seg::Key(key)],
            format!("{key} is gone: {fix}"),
        );
        if let (Some(start), Some(end)) = (key_repr.span(), item.span()) {
            blank(cleaned, start.start..end.end);
        }
    }
    if let Some(toml_edit::Item::ArrayOfTables(peers)) = document.get("peer") {
        for (index, table) in peers.iter().enumerate() {
            v.fail(
                &[Seg::Key("peer"), Seg::Index(index)],
                "[[peer]] is gone: every [[node]] carries its own peer_address and fingerprint, and the witness is the [witness] (name, peer_address, fingerprint); the same file then serves every server",
            );
            if let Some(span) = table.span() {
                blank(cleaned, span);
            }
            for (key, item) in table.iter() {
                let start = table
                    .get_key_value(key)
                    .and_then(|(k, _)| k.span())
                    .map(|s| s.start);
                if let (Some(start), Some(end)) = (start, item.span().map(|s| s.end)) {
                    blank(cleaned, start..end);
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::super::tests::{errors_of, GOOD};

    #[test]
    fn the_old_per_server_keys_are_refused_with_how_to_write_them_now() {
        let old = format!(
            "{GOOD}\n[cluster]\nobserver = \"master\"\nlisten = \"0.0.0.0:8054\"\n\n[[peer]]\nname = \"slave\"\naddress = \"198.51.100.2:8054\"\nfingerprint = \"sha256:{}\"\n\n[mirror]\nroot = \"/var/www/site\"\nnode = \"master\"\nlisten = \"0.0.0.0:7480\"\npeer = \"198.51.100.2:7480\"\npeer_fingerprint = \"sha256:{}\"\n",
            "1".repeat(64),
            "1".repeat(64)
        );
        let errors = errors_of(&old);
        let has = |needle: &str| errors.iter().any(|e| e.contains(needle));
        assert!(
            has("line 41: cluster.observer: observer is gone: this server is no longer written in the file (the same file serves every server): start failoverd with --node NAME"),
            "{errors:#?}"
        );
        assert!(has("cluster.listen: listen is gone: each observer's address is peer_address = \"IP:8054\" in its [[node]]"), "{errors:#?}");
        assert!(has("line 44: peer[1]: [[peer]] is gone: every [[node]] carries its own peer_address and fingerprint"), "{errors:#?}");
        assert!(has("mirror.node: node is gone: "), "{errors:#?}");
        assert!(
            has("mirror.listen: listen is gone: each node's peer-link address is peer_address"),
            "{errors:#?}"
        );
        assert!(has("mirror.peer: peer is gone: "), "{errors:#?}");
        assert!(has("mirror.peer_fingerprint: peer_fingerprint is gone: each node's key is fingerprint = \"sha256:...\" in its own [[node]]"), "{errors:#?}");
        // Blanked out, the rest is read: the nodes lack their peer-link keys for [cluster].
        assert!(has("node \"master\" has no peer_address"), "{errors:#?}");
        assert!(!has("unknown field"), "{errors:#?}");
    }
}
