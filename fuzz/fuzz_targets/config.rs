//! A config file, parsed and validated as `failoverd check` and a reload read it
//! (`failover::config::Config::parse`): every error is rendered as the operator sees it, with
//! its file, line and key; a valid file is then seen as each of its servers (`select`): its
//! observation links and its end of the mirror.

#![no_main]

use std::path::Path;

use failover::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Relative paths in the config resolve beneath a directory that does not exist, so the one
    // file validation reads (the admin token) is never found.
    let path = Path::new("/nonexistent-failover-fuzz/failoverd.toml");
    match Config::parse(text, path) {
        Ok(config) => {
            for check in &config.checks {
                let _ = config.check_timing(check);
                let _ = Config::port(check);
            }
            // The file as each of its servers sees it (`failoverd check` without `--node`).
            for (_, name) in config.every_local() {
                let local = config.clone().select(Some(name));
                let _ = local.local_fingerprint();
                let _ = local.observer_links();
                let _ = local.mirror_link();
            }
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "a refused config says why");
            for error in errors {
                let _ = error.to_string();
            }
        }
    }
});
