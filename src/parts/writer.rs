//! `[[writer]]` into zone writers: a BIND zone file with its reload, or RFC 2136 updates.

use std::sync::Arc;

use failover_core::{ManagedName, ZoneWriter};
use failover_dns::{
    DynamicUpdateOptions, DynamicUpdateWriter, TsigKey, ZoneFileOptions, ZoneFileWriter,
};

use super::DaemonError;
use crate::config::{Config, DynamicUpdateSettings, WriterConfig, WriterKind, ZoneFileSettings};

/// The zone writers of `[[writer]]` (the built-in served zone is always one more).
pub fn writers(config: &Config) -> Result<Vec<Arc<dyn ZoneWriter>>, DaemonError> {
    let managed = super::cluster::cluster_spec(config).managed;
    config
        .writers
        .iter()
        .enumerate()
        .map(|(index, writer)| {
            build(config, index, writer, &managed).map_err(|message| DaemonError::Writer {
                path: config.path.clone(),
                index: index + 1,
                message,
            })
        })
        .collect()
}

fn build(
    config: &Config,
    index: usize,
    writer: &WriterConfig,
    managed: &[ManagedName],
) -> Result<Arc<dyn ZoneWriter>, String> {
    let timeout = writer.common.timeout;
    Ok(match &writer.kind {
        WriterKind::Plugin(settings) => {
            let nodes = super::notifier::node_names(config);
            let name = format!("writer[{}]", index + 1);
            let context = crate::plugins::PluginContext {
                config,
                name: &name,
                nodes: &nodes,
            };
            config
                .plugins
                .build_writer(&settings.kind, &settings.table, &context)?
        }
        WriterKind::ZoneFile(settings) => zone_file(config, settings, managed, timeout)?,
        WriterKind::DynamicUpdate(settings) => dynamic_update(config, settings, managed, timeout)?,
    })
}

fn zone_file(
    config: &Config,
    settings: &ZoneFileSettings,
    managed: &[ManagedName],
    timeout: std::time::Duration,
) -> Result<Arc<dyn ZoneWriter>, String> {
    let mut options = ZoneFileOptions::new(
        &config.zone.name,
        settings.file.clone().unwrap_or_default(),
        managed.to_vec(),
    );
    if let Some(reload) = &settings.reload {
        options.reload_command = reload.clone();
    }
    options.timeout = timeout;
    options.verify_at = settings.verify;
    Ok(Arc::new(
        ZoneFileWriter::new(options).map_err(|e| e.to_string())?,
    ))
}

fn dynamic_update(
    config: &Config,
    settings: &DynamicUpdateSettings,
    managed: &[ManagedName],
    timeout: std::time::Duration,
) -> Result<Arc<dyn ZoneWriter>, String> {
    let key = match (&settings.key, &settings.key_file) {
        (Some(key), _) => TsigKey::new(&key.name, &key.algorithm, &key.secret),
        (None, Some(file)) => TsigKey::from_bind_key_file(file, settings.key_name.as_deref()),
        (None, None) => return Err("no key: set key_file or key".to_owned()),
    }
    .map_err(|e| e.to_string())?;
    let primary = settings.primary.ok_or("no primary")?;
    let mut options = DynamicUpdateOptions::new(&config.zone.name, primary, key, managed.to_vec());
    options.timeout = timeout;
    Ok(Arc::new(
        DynamicUpdateWriter::new(options).map_err(|e| e.to_string())?,
    ))
}
