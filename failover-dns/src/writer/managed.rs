//! The managed names of a zone writer and what a publication wants each of them to answer.

use std::net::IpAddr;

use failover_core::{ManagedName, Publication};
use hickory_proto::rr::Name;

use crate::error::DnsError;
use crate::zone::Zone;

/// The managed names of one zone, resolved to absolute lowercase names.
#[derive(Clone, Debug)]
pub(crate) struct ManagedSet {
    pub(crate) origin: Name,
    names: Vec<(String, Name)>,
}

/// What one managed name must answer after a publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Desired {
    pub(crate) name: Name,
    pub(crate) ttl: u32,
    pub(crate) addresses: Vec<IpAddr>,
}

impl ManagedSet {
    /// Resolves `managed` under `origin`; with `zone`, also checks them against the zone's records
    /// (no CNAME there, not at or below a delegation).
    pub(crate) fn new(
        origin: &Name,
        managed: &[ManagedName],
        zone: Option<&Zone>,
    ) -> Result<Self, DnsError> {
        let mut names: Vec<(String, Name)> = Vec::with_capacity(managed.len());
        for managed in managed {
            let relative = managed.name.as_str();
            let error = |reason: String| DnsError::ManagedName {
                name: relative.to_owned(),
                reason,
            };
            let name = absolute(origin, relative)
                .ok_or_else(|| error("not a valid domain name".to_owned()))?;
            if !origin.zone_of(&name) {
                return Err(error(format!("{name} is outside the zone {origin}")));
            }
            if names.iter().any(|(_, known)| *known == name) {
                return Err(error(format!("{name} is listed twice")));
            }
            if let Some(reason) = zone.and_then(|zone| zone.address_conflict(&name)) {
                return Err(error(reason));
            }
            names.push((relative.to_owned(), name));
        }
        if names.is_empty() {
            return Err(DnsError::ManagedName {
                name: String::new(),
                reason: "no managed names (add at least one, e.g. `@` or `www`)".to_owned(),
            });
        }
        Ok(Self {
            origin: origin.clone(),
            names,
        })
    }

    /// The desired answers of a publication, checked: every name managed, no empty answer.
    pub(crate) fn desired(&self, publication: &Publication) -> Result<Vec<Desired>, DnsError> {
        let mut desired: Vec<Desired> = Vec::with_capacity(publication.answers.len());
        for answer in &publication.answers {
            let error = |reason: String| DnsError::Publication {
                name: answer.name.clone(),
                reason,
            };
            let name = absolute(&self.origin, &answer.name)
                .filter(|name| self.names.iter().any(|(_, managed)| managed == name))
                .ok_or_else(|| {
                    error(format!(
                        "not a managed name of zone {} (managed: {})",
                        self.origin,
                        self.names
                            .iter()
                            .map(|(relative, _)| relative.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?;
            if answer.addresses.is_empty() {
                return Err(error(
                    "refusing to publish an empty answer (the policy must choose what to serve)"
                        .to_owned(),
                ));
            }
            let entry = Desired {
                name,
                ttl: answer.ttl,
                addresses: answer.addresses.clone(),
            };
            match desired.iter_mut().find(|d| d.name == entry.name) {
                Some(existing) => *existing = entry,
                None => desired.push(entry),
            }
        }
        Ok(desired)
    }
}

/// `@`, a relative name or a fully qualified one, resolved under `origin`, lowercase.
pub(crate) fn absolute(origin: &Name, relative: &str) -> Option<Name> {
    let name = if relative == "@" {
        origin.clone()
    } else {
        Name::parse(relative, Some(origin)).ok()?
    };
    Some(name.to_lowercase())
}

/// Parses a zone name (`test.ru` or `test.ru.`) into a lowercase fully qualified name.
pub(crate) fn zone_name(writer: &str, zone: &str) -> Result<Name, DnsError> {
    let mut name = Name::from_ascii(zone.trim()).map_err(|error| DnsError::WriterConfig {
        writer: writer.to_owned(),
        reason: format!("zone {zone:?} is not a domain name: {error}"),
    })?;
    name.set_fqdn(true);
    if name.is_root() {
        return Err(DnsError::WriterConfig {
            writer: writer.to_owned(),
            reason: "the zone name is empty (expected e.g. \"test.ru\")".to_owned(),
        });
    }
    Ok(name.to_lowercase())
}
