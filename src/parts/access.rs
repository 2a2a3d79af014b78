//! The paths the daemon must write, and whether this process may: `failoverd check` warns about
//! each one it cannot (under systemd's `ProtectSystem=strict`, a path not in `ReadWritePaths=`
//! is read-only to the service, and `check` in `ExecStartPre=` runs in the same sandbox).

use std::path::{Path, PathBuf};

use crate::config::{Config, WriterKind};

/// One path the daemon writes, and what it is for.
struct Written {
    what: &'static str,
    path: PathBuf,
    /// A directory (files are made in it), or a file (rewritten in place or beside it).
    directory: bool,
}

/// Everything the daemon of `config` writes: the state directory, the mirror's root and index,
/// and each zone file a `zone-file` writer rewrites (with its directory, where the temp file
/// goes).
fn written(config: &Config) -> Vec<Written> {
    let mut paths = vec![Written {
        what: "[zone] state_dir",
        path: config.zone.state_dir.clone(),
        directory: true,
    }];
    if let Some(mirror) = &config.mirror {
        paths.push(Written {
            what: "[mirror] root",
            path: mirror.root.clone(),
            directory: true,
        });
        paths.push(Written {
            what: "[mirror] state_dir",
            path: mirror.index_dir(&config.zone.state_dir),
            directory: true,
        });
    }
    for writer in &config.writers {
        if let WriterKind::ZoneFile(settings) = &writer.kind {
            if let Some(file) = &settings.file {
                paths.push(Written {
                    what: "zone-file writer's file",
                    path: file.clone(),
                    directory: false,
                });
                if let Some(dir) = file.parent() {
                    paths.push(Written {
                        what: "zone-file writer's directory (its temp file)",
                        path: dir.to_owned(),
                        directory: true,
                    });
                }
            }
        }
    }
    paths
}

/// Why this process cannot write `path` (a directory not made yet: its nearest existing
/// ancestor, where the daemon would make it), or `None` when it can.
fn refused(path: &Path, directory: bool) -> Option<String> {
    let mut at = path;
    if directory {
        while !at.exists() {
            at = at.parent()?;
        }
    }
    match rustix::fs::access(at, rustix::fs::Access::WRITE_OK) {
        Ok(()) => None,
        Err(e) if at == path => Some(e.to_string()),
        Err(e) => Some(format!(
            "{} does not exist and {}: {e}",
            path.display(),
            at.display()
        )),
    }
}

/// The warnings of `failoverd check`: each path the daemon must write that this process (the
/// service's user in its sandbox, when run as systemd's `ExecStartPre=`) cannot.
pub fn access_warnings(config: &Config) -> Vec<String> {
    let uid = rustix::process::getuid().as_raw();
    written(config)
        .into_iter()
        .filter_map(|w| {
            let why = refused(&w.path, w.directory)?;
            Some(format!(
                "{} {} is not writable by this process (uid {uid}): {why}; run the service as a user who may write it and, under systemd, list it in ReadWritePaths= (packaging/failoverd.service.d/paths.conf)",
                w.what,
                w.path.display()
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_directory_is_judged_by_its_nearest_existing_ancestor() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(refused(&dir.path().join("a/b/c"), true), None);
        assert_eq!(refused(dir.path(), true), None);
        let file = dir.path().join("db.test.ru");
        std::fs::write(&file, "").expect("write");
        assert_eq!(refused(&file, false), None);
        // A missing file is reported, not judged by its directory: the writer needs the file.
        assert!(refused(&dir.path().join("absent"), false).is_some());
    }
}
