//! Every table of the config file and every key it takes, read from the types: what
//! `docs/config.md` must document (its test checks it does).

use serde::de::DeserializeOwned;

use super::schema::{fields_of, kinds_of};
use super::{
    AdminConfig, CheckCommon, CheckKind, ClusterConfig, Config, DampingConfig, FencingConfig,
    IdentityConfig, JournalConfig, MirrorConfig, MysqlConfig, NamedPolicyConfig, NodeConfig,
    NotifierCommon, NotifierKind, PolicyConfig, ProbeConfig, RateLimitSection, RecordConfig,
    TsigKeyConfig, WitnessConfig, WriterCommon, WriterKind, XdpSection, ZoneConfig, ZoneKeyConfig,
};

/// One table of the config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    /// Its header as written in the file: `[zone]`, `[[check]]`, `[mysql.fencing]`.
    pub header: String,
    /// For a table inside another one (`[mysql.fencing]`, `[zone] records`): the outer table's
    /// header, under which its keys may be documented too.
    pub within: Option<String>,
    /// Every key it takes (for a table with a `kind`: `kind`, the shared keys, then each kind's).
    pub keys: Vec<&'static str>,
}

/// Every table of the config file, in the order of [`Config`]'s fields, or the name of a field
/// of [`Config`] this function does not know yet.
pub fn sections() -> Result<Vec<Section>, String> {
    let mut sections = Vec::new();
    for &name in fields_of::<Config>() {
        let (header, keys) = match name {
            "zone" => (format!("[{name}]"), fields_of::<ZoneConfig>().to_vec()),
            "probe" => (format!("[{name}]"), fields_of::<ProbeConfig>().to_vec()),
            "node" => (format!("[[{name}]]"), fields_of::<NodeConfig>().to_vec()),
            "check" => (format!("[[{name}]]"), kinded::<CheckCommon, CheckKind>()),
            "policy" => (format!("[{name}]"), fields_of::<PolicyConfig>().to_vec()),
            "policies" => (
                format!("[{name}.NAME]"),
                fields_of::<NamedPolicyConfig>().to_vec(),
            ),
            "notify" => (
                format!("[[{name}]]"),
                kinded::<NotifierCommon, NotifierKind>(),
            ),
            "writer" => (format!("[[{name}]]"), kinded::<WriterCommon, WriterKind>()),
            "damping" => (format!("[{name}]"), fields_of::<DampingConfig>().to_vec()),
            "journal" => (format!("[{name}]"), fields_of::<JournalConfig>().to_vec()),
            "admin" => (format!("[{name}]"), fields_of::<AdminConfig>().to_vec()),
            "mysql" => (format!("[{name}]"), fields_of::<MysqlConfig>().to_vec()),
            "cluster" => (format!("[{name}]"), fields_of::<ClusterConfig>().to_vec()),
            "witness" => (format!("[{name}]"), fields_of::<WitnessConfig>().to_vec()),
            "identity" => (format!("[{name}]"), fields_of::<IdentityConfig>().to_vec()),
            "mirror" => (format!("[{name}]"), fields_of::<MirrorConfig>().to_vec()),
            other => {
                return Err(format!(
                    "the config's section {other:?} is not in reference::sections"
                ))
            }
        };
        sections.push(Section {
            header,
            within: None,
            keys,
        });
    }
    sections.push(inner::<RecordConfig>("[zone] records", "[zone]"));
    sections.push(inner::<ZoneKeyConfig>("[[zone.keys]]", "[zone]"));
    sections.push(inner::<RateLimitSection>("[zone.rate_limit]", "[zone]"));
    sections.push(inner::<XdpSection>("[zone.xdp]", "[zone]"));
    sections.push(inner::<FencingConfig>("[mysql.fencing]", "[mysql]"));
    sections.push(inner::<TsigKeyConfig>("[[writer]] key", "[[writer]]"));
    Ok(sections)
}

/// `kind`, the keys every kind shares, then each kind's own (each key once).
fn kinded<C: DeserializeOwned, K: DeserializeOwned>() -> Vec<&'static str> {
    let mut keys = vec!["kind"];
    keys.extend(fields_of::<C>());
    for (_, own) in kinds_of::<K>() {
        for key in own {
            if !keys.contains(key) {
                keys.push(key);
            }
        }
    }
    keys
}

fn inner<T: DeserializeOwned>(header: &str, within: &str) -> Section {
    Section {
        header: header.to_owned(),
        within: Some(within.to_owned()),
        keys: fields_of::<T>().to_vec(),
    }
}
