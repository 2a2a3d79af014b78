//! [`ServedZone`]: the zone the built-in server answers from, and its `ZoneWriter`.

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use async_trait::async_trait;
use failover_core::{Publication, PublishError, PublishReceipt, ZoneWriter};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::sync::watch;

use crate::answer::{answer_slow, answer_slow_signed, FastTable, Transport};
use crate::error::DnsError;
use crate::tsig::TsigKey;
use crate::zone::{Zone, ZoneData};

pub use failover_core::ManagedName;

/// The zone served by [`DnsServer`](crate::DnsServer): the zone file's records, with the A and
/// AAAA RRsets of the managed names replaced by the latest publication.
///
/// Cheap to clone (shared state). Queries read an immutable snapshot (answers precomputed in
/// wire format) that a publish swaps atomically, so answering never waits for a publish.
#[derive(Clone, Debug)]
pub struct ServedZone {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The zone as first loaded: its origin never changes (names resolve against it).
    zone: Zone,
    state_file: PathBuf,
    /// Serialises publishes (the contract says they never overlap; this makes it so).
    published: Mutex<Published>,
    current: ArcSwap<Snapshot>,
    /// The serial served, for whoever must act on a change (NOTIFY to secondaries).
    serial_watch: watch::Sender<u32>,
}

#[derive(Debug)]
struct Managed {
    relative: String,
    name: Name,
}

/// What has been published so far, and the static part it is published into (replaced by
/// [`ServedZone::reload`]).
#[derive(Debug)]
struct Published {
    zone: Zone,
    managed: Vec<Managed>,
    serial: u32,
    /// Per managed name (same order): the published TTL and addresses, `None` before any.
    answers: Vec<Option<(u32, Vec<IpAddr>)>>,
}

/// One immutable state of the zone, answered from.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) data: ZoneData,
    pub(crate) fast: FastTable,
    pub(crate) serial: u32,
}

impl ServedZone {
    /// Serves `zone`, with `managed` names under the daemon's control and the SOA serial kept in
    /// `state_dir` (created if missing).
    ///
    /// The serial starts at the zone file's, or one past the persisted one if that is not lower:
    /// what is served at start (the zone file's answers) may differ from what was last published
    /// under the persisted serial, and secondaries must see a change.
    pub fn new(zone: Zone, managed: &[ManagedName], state_dir: &Path) -> Result<Self, DnsError> {
        let managed = managed
            .iter()
            .map(|m| validate_managed(&zone, &m.name))
            .collect::<Result<Vec<_>, _>>()?;
        fs::create_dir_all(state_dir).map_err(|error| DnsError::State {
            path: state_dir.to_path_buf(),
            reason: format!("cannot create the state directory: {error}"),
        })?;
        let origin = zone.origin();
        let state_file = state_dir.join(format!("serial-{}", origin.trim_end_matches('.')));
        let serial = match read_serial(&state_file)? {
            Some(persisted) if !serial_lt(persisted, zone.serial) => persisted.wrapping_add(1),
            _ => zone.serial,
        };
        write_serial(&state_file, serial)?;
        let answers = vec![None; managed.len()];
        let snapshot = build_snapshot(&zone, &managed, &answers, serial)?;
        Ok(Self {
            inner: Arc::new(Inner {
                zone: zone.clone(),
                state_file,
                published: Mutex::new(Published {
                    zone,
                    managed,
                    serial,
                    answers,
                }),
                current: ArcSwap::from_pointee(snapshot),
                serial_watch: watch::Sender::new(serial),
            }),
        })
    }

    /// The zone's origin, fully qualified (`test.ru.`).
    pub fn origin(&self) -> String {
        self.inner.zone.origin()
    }

    /// The SOA serial currently served.
    pub fn serial(&self) -> u32 {
        self.inner.current.load().serial
    }

    /// A receiver of the served serial: `borrow()` is the serial served now, and `changed()`
    /// wakes once a publish has made a new one live (a slow receiver skips to the newest).
    /// It ends (`changed()` errs) when the last clone of the zone is dropped.
    pub fn watch_serial(&self) -> watch::Receiver<u32> {
        self.inner.serial_watch.subscribe()
    }

    /// The snapshot currently served: one consistent state of the zone (for zone transfers).
    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.current.load_full()
    }

    /// The addresses currently served for `name` (`@`, `www`, or fully qualified): its A then
    /// AAAA records, empty when it has none. `None` when the name is not in the zone.
    pub fn current_answer(&self, name: &str) -> Option<Vec<IpAddr>> {
        let name = self.inner.zone.absolute(name)?;
        let snapshot = self.inner.current.load();
        let node = snapshot.data.nodes.get(&name)?;
        let records = [RecordType::A, RecordType::AAAA]
            .into_iter()
            .flat_map(|rtype| node.get(rtype).unwrap_or_default());
        Some(
            records
                .filter_map(|record| match &record.data {
                    RData::A(a) => Some(IpAddr::V4(a.0)),
                    RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
                    _ => None,
                })
                .collect(),
        )
    }

    /// Answers one DNS message in wire format, writing the response into `out` (cleared first).
    /// Returns false when nothing must be sent back (the message is a response or has no header).
    ///
    /// Common queries are answered from precomputed responses without allocating; the rest go
    /// through [`answer_slow`](Self::answer_slow).
    pub fn answer(&self, query: &[u8], transport: Transport, out: &mut Vec<u8>) -> bool {
        self.answer_with_keys(query, transport, &[], out)
    }

    /// [`answer`](Self::answer), with TSIG keys: a query signed by one of them gets a signed
    /// answer, one signed otherwise NOTAUTH (signed queries never take the fast path).
    pub(crate) fn answer_with_keys(
        &self,
        query: &[u8],
        transport: Transport,
        keys: &[TsigKey],
        out: &mut Vec<u8>,
    ) -> bool {
        let snapshot = self.inner.current.load();
        snapshot.fast.answer(query, transport, out)
            || answer_slow_signed(&snapshot.data, query, transport, keys, out)
    }

    /// Answers like [`answer`](Self::answer) but always through the full hickory-proto path
    /// (decode, resolve, encode): the reference the fast path is tested against.
    pub fn answer_slow(&self, query: &[u8], transport: Transport, out: &mut Vec<u8>) -> bool {
        answer_slow(&self.inner.current.load().data, query, transport, out)
    }

    /// Makes `publication` live and returns the serial now served; blocks on the file system.
    ///
    /// The A and AAAA RRsets of each named managed name are replaced (names the publication
    /// leaves out keep their answer). An identical publication keeps the serial; a change
    /// raises it and persists it (temp file, fsync, rename) *before* the new answers are swapped
    /// in, so a served serial is never lost by a crash.
    pub fn publish_blocking(&self, publication: &Publication) -> Result<u32, DnsError> {
        let inner = &*self.inner;
        let mut published = inner
            .published
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut answers = published.answers.clone();
        for answer in &publication.answers {
            let index = inner
                .zone
                .absolute(&answer.name)
                .and_then(|name| published.managed.iter().position(|m| m.name == name))
                .ok_or_else(|| DnsError::Publication {
                    name: answer.name.clone(),
                    reason: format!(
                        "not a managed name of zone {} (managed: {})",
                        inner.zone.origin(),
                        published
                            .managed
                            .iter()
                            .map(|m| m.relative.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })?;
            if answer.addresses.is_empty() {
                return Err(DnsError::Publication {
                    name: answer.name.clone(),
                    reason:
                        "refusing to publish an empty answer (the policy must choose what to serve)"
                            .to_owned(),
                });
            }
            answers[index] = Some((answer.ttl, answer.addresses.clone()));
        }
        if answers == published.answers {
            return Ok(published.serial);
        }
        let serial = published.serial.wrapping_add(1);
        let snapshot = build_snapshot(&published.zone, &published.managed, &answers, serial)?;
        write_serial(&inner.state_file, serial)?;
        inner.current.store(Arc::new(snapshot));
        inner.serial_watch.send_replace(serial);
        published.serial = serial;
        published.answers = answers;
        Ok(serial)
    }

    /// Replaces the static records (a reloaded zone file) and the managed names, keeping what
    /// was published for names managed before and after; returns the serial now served.
    ///
    /// The serial grows (past both the old one and the new file's), is persisted, and the new
    /// snapshot is swapped in atomically: queries never see a half-loaded zone. A zone for
    /// another origin is refused (a different zone needs a restart).
    pub fn reload(&self, zone: Zone, managed: &[ManagedName]) -> Result<u32, DnsError> {
        let inner = &*self.inner;
        if zone.origin() != inner.zone.origin() {
            return Err(DnsError::ZoneInvalid {
                file: zone.source().to_owned(),
                reason: format!(
                    "is for {}, but {} is being served: a different zone needs a restart",
                    zone.origin(),
                    inner.zone.origin()
                ),
            });
        }
        let managed = managed
            .iter()
            .map(|m| validate_managed(&zone, &m.name))
            .collect::<Result<Vec<_>, _>>()?;
        let mut published = inner
            .published
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let answers: Vec<Option<(u32, Vec<IpAddr>)>> = managed
            .iter()
            .map(|m| {
                published
                    .managed
                    .iter()
                    .position(|old| old.name == m.name)
                    .and_then(|index| published.answers[index].clone())
            })
            .collect();
        let next = published.serial.wrapping_add(1);
        let serial = if serial_lt(next, zone.serial) {
            zone.serial
        } else {
            next
        };
        let snapshot = build_snapshot(&zone, &managed, &answers, serial)?;
        write_serial(&inner.state_file, serial)?;
        inner.current.store(Arc::new(snapshot));
        inner.serial_watch.send_replace(serial);
        *published = Published {
            zone,
            managed,
            serial,
            answers,
        };
        Ok(serial)
    }
}

#[async_trait]
impl ZoneWriter for ServedZone {
    fn describe(&self) -> String {
        format!(
            "served zone {}",
            self.inner.zone.origin().trim_end_matches('.')
        )
    }

    async fn publish(&self, publication: &Publication) -> Result<PublishReceipt, PublishError> {
        let zone = self.clone();
        let publication = publication.clone();
        let serial = tokio::task::spawn_blocking(move || zone.publish_blocking(&publication))
            .await
            .map_err(|error| PublishError::new(format!("publish task failed: {error}")))?
            .map_err(PublishError::new)?;
        Ok(PublishReceipt {
            serial: Some(serial),
        })
    }
}

fn validate_managed(zone: &Zone, relative: &str) -> Result<Managed, DnsError> {
    let error = |reason: String| DnsError::ManagedName {
        name: relative.to_owned(),
        reason,
    };
    let name = zone
        .absolute(relative)
        .ok_or_else(|| error("not a valid domain name".to_owned()))?;
    if !zone.origin.zone_of(&name) {
        return Err(error(format!("{name} is outside the zone {}", zone.origin)));
    }
    if let Some(reason) = zone.address_conflict(&name) {
        return Err(error(reason));
    }
    Ok(Managed {
        relative: relative.to_owned(),
        name,
    })
}

fn build_snapshot(
    zone: &Zone,
    managed: &[Managed],
    answers: &[Option<(u32, Vec<IpAddr>)>],
    serial: u32,
) -> Result<Snapshot, DnsError> {
    let mut nodes = zone.nodes.clone();
    for (managed, answer) in managed.iter().zip(answers) {
        let Some((ttl, addresses)) = answer else {
            continue;
        };
        let record = |data: RData| Record::from_rdata(managed.name.clone(), *ttl, data);
        let (v4, v6): (Vec<_>, Vec<_>) = addresses.iter().partition(|address| address.is_ipv4());
        let node = nodes.entry(managed.name.clone()).or_default();
        node.set(
            RecordType::A,
            v4.iter()
                .filter_map(|address| match address {
                    IpAddr::V4(v4) => Some(record(RData::A(A(*v4)))),
                    IpAddr::V6(_) => None,
                })
                .collect(),
        );
        node.set(
            RecordType::AAAA,
            v6.iter()
                .filter_map(|address| match address {
                    IpAddr::V6(v6) => Some(record(RData::AAAA(AAAA(*v6)))),
                    IpAddr::V4(_) => None,
                })
                .collect(),
        );
    }
    let data = ZoneData::new(zone.origin.clone(), nodes, serial);
    let fast = FastTable::build(&data).map_err(|error| DnsError::Encode {
        origin: zone.origin(),
        reason: error.to_string(),
    })?;
    Ok(Snapshot { data, fast, serial })
}

/// RFC 1982 serial number arithmetic: whether `a` comes before `b`.
pub(crate) fn serial_lt(a: u32, b: u32) -> bool {
    a != b && b.wrapping_sub(a) < 1 << 31
}

fn read_serial(path: &Path) -> Result<Option<u32>, DnsError> {
    match fs::read_to_string(path) {
        Ok(text) => text.trim().parse().map(Some).map_err(|_| DnsError::State {
            path: path.to_path_buf(),
            reason: format!(
                "expected a decimal SOA serial, found {:?}; write the last served serial into it",
                text.chars().take(40).collect::<String>()
            ),
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(DnsError::State {
            path: path.to_path_buf(),
            reason: format!("cannot read: {error}"),
        }),
    }
}

/// Writes the serial crash-safely: temp file in the same directory, fsync, rename, fsync the directory.
fn write_serial(path: &Path, serial: u32) -> Result<(), DnsError> {
    let state_error = |what: &str, error: std::io::Error| DnsError::State {
        path: path.to_path_buf(),
        reason: format!("cannot {what}: {error}"),
    };
    let temp = path.with_extension("tmp");
    let mut file = fs::File::create(&temp).map_err(|e| state_error("create the temp file", e))?;
    file.write_all(format!("{serial}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| state_error("write the temp file", e))?;
    drop(file);
    fs::rename(&temp, path).map_err(|e| state_error("rename the temp file into place", e))?;
    if let Some(dir) = path.parent() {
        // Makes the rename durable; some file systems refuse fsync on a directory, which is fine.
        if let Ok(dir) = fs::File::open(dir) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;

    #[test]
    fn serial_arithmetic_follows_rfc_1982() {
        assert!(serial_lt(1, 2));
        assert!(!serial_lt(2, 1));
        assert!(serial_lt(u32::MAX, 0));
        assert!(!serial_lt(5, 5));
        assert!(serial_lt(0, (1 << 31) - 1));
    }

    const ZONE: &str = "$ORIGIN test.ru.\n$TTL 10\n@ IN SOA ns admin 5 10 10 10 10\n@ IN NS ns\nns IN A 10.0.0.53\nwww IN A 10.1.0.1\n";

    #[test]
    fn a_reload_keeps_published_answers_and_raises_the_serial() {
        let state = tempfile::tempdir().unwrap();
        let zone = Zone::parse("one", ZONE).unwrap();
        let served = ServedZone::new(zone, &[ManagedName::new("www", 10)], state.path()).unwrap();
        let publication = Publication {
            nodes: vec![],
            answers: vec![failover_core::ManagedAnswer {
                name: "www".into(),
                ttl: 10,
                addresses: vec!["10.2.0.2".parse().unwrap()],
            }],
        };
        let published = served.publish_blocking(&publication).unwrap();
        let edited = Zone::parse("two", &format!("{ZONE}mail IN A 10.0.0.25\n")).unwrap();
        let serial = served
            .reload(
                edited,
                &[ManagedName::new("www", 10), ManagedName::new("@", 10)],
            )
            .unwrap();
        assert!(serial_lt(published, serial));
        assert_eq!(served.serial(), serial);
        assert_eq!(
            served.current_answer("www"),
            Some(vec!["10.2.0.2".parse().unwrap()])
        );
        assert_eq!(
            served.current_answer("mail"),
            Some(vec!["10.0.0.25".parse().unwrap()])
        );
        let other = Zone::parse("three", &ZONE.replace("test.ru.", "example.com.")).unwrap();
        let err = served.reload(other, &[]).unwrap_err().to_string();
        assert!(err.contains("a different zone needs a restart"), "{err}");
    }
}
