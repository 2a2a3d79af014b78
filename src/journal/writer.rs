//! Appends the supervisor's journal entries to segment files in `state_dir/journal/`, rotating
//! at a segment size and deleting the oldest segments beyond the journal's size.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use failover_core::{ArbiterInput, JournalEntry, Observation, Outcome, QuorumInput};

use super::codec::{encode, Record};

/// A segment file's name: `journal-000001.fj`, numbered in order.
pub fn segment_name(number: u64) -> String {
    format!("journal-{number:06}.fj")
}

/// The segments in `dir`, oldest first, with their numbers.
pub fn segments(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(number) = name
            .to_str()
            .and_then(|n| n.strip_prefix("journal-"))
            .and_then(|n| n.strip_suffix(".fj"))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        found.push((number, entry.path()));
    }
    found.sort();
    Ok(found)
}

/// Milliseconds since the epoch.
pub fn wall_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The journal's limits.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// All segments together stay under this many bytes (the oldest are deleted).
    pub max_bytes: u64,
    /// A segment is closed and a new one begun past this many bytes.
    pub segment_bytes: u64,
}

/// The open journal: the current segment and what its records refer back to.
pub struct Writer {
    dir: PathBuf,
    limits: Limits,
    config: String,
    file: File,
    number: u64,
    written: u64,
    last_ms: u64,
    pairs: HashMap<(String, String), u32>,
    /// Each pair's last class and detail written.
    details: Vec<Option<(u8, String)>>,
    /// The observer this daemon is, when it shares observations.
    observer: Option<String>,
    peers: HashMap<String, u32>,
    buffer: Vec<u8>,
}

impl Writer {
    /// Opens a new segment in `dir` (made if missing) that begins with a start record; with
    /// `observer`, the daemon shares observations as that observer.
    pub fn open(
        dir: &Path,
        limits: Limits,
        config: String,
        observer: Option<String>,
        restored: Option<String>,
    ) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let number = segments(dir)?.last().map_or(1, |(n, _)| n + 1);
        let file = new_segment(dir, number)?;
        let mut writer = Self {
            dir: dir.to_owned(),
            limits,
            config,
            file,
            number,
            written: 0,
            last_ms: 0,
            pairs: HashMap::new(),
            details: Vec::new(),
            observer,
            peers: HashMap::new(),
            buffer: Vec::new(),
        };
        writer.start("start", restored)?;
        Ok(writer)
    }

    /// A start record: the segment's clock, the config, the state the arbiter began from.
    fn start(&mut self, reason: &str, restored: Option<String>) -> std::io::Result<()> {
        self.last_ms = wall_ms(SystemTime::now());
        self.push(&Record::Start {
            wall_ms: self.last_ms,
            reason: reason.to_owned(),
            config: self.config.clone(),
            restored,
        });
        if let Some(name) = self.observer.clone() {
            self.push(&Record::Observer { name });
        }
        self.flush()
    }

    /// A reload with the config of digest `config` (sharing observations as `observer`).
    pub fn reload(&mut self, config: String, observer: Option<String>) -> std::io::Result<()> {
        self.config = config;
        self.observer = observer;
        self.start("reload", None)
    }

    fn push(&mut self, record: &Record) {
        // A record that cannot be encoded (none can: every field is a plain value) is dropped.
        let _ = encode(record, &mut self.buffer);
    }

    /// Milliseconds since the last record, and the clock moved on.
    fn dt(&mut self, at: SystemTime) -> u32 {
        let ms = wall_ms(at);
        let dt = ms.saturating_sub(self.last_ms);
        self.last_ms = self.last_ms.max(ms);
        u32::try_from(dt).unwrap_or(u32::MAX)
    }

    /// Adds one entry (written at the next [`flush`](Writer::flush)).
    pub fn add(&mut self, entry: &JournalEntry) {
        let record = match entry {
            JournalEntry::Input(ArbiterInput::Observed(observation)) => {
                let (pair, class, detail) = self.outcome(observation);
                Record::Probe {
                    dt: self.dt(observation.at.wall),
                    pair,
                    class,
                    detail,
                }
            }
            JournalEntry::Quorum(QuorumInput::Local(observation)) => {
                let (pair, class, detail) = self.outcome(observation);
                Record::Local {
                    dt: self.dt(observation.at.wall),
                    pair,
                    class,
                    detail,
                }
            }
            JournalEntry::Quorum(QuorumInput::Remote {
                observer,
                report,
                at,
            }) => {
                let peer = self.peer(observer);
                let pair = self.pair(report.node.as_str(), report.check.as_str());
                Record::Remote {
                    dt: self.dt(*at),
                    peer,
                    pair,
                    class: outcome_class(&report.outcome),
                    failures: report.consecutive_failures,
                }
            }
            JournalEntry::Quorum(QuorumInput::Heard { observer, at }) => {
                let peer = self.peer(observer);
                Record::Heard {
                    dt: self.dt(*at),
                    peer,
                }
            }
            JournalEntry::Input(ArbiterInput::Override { what, set, at }) => Record::Override {
                dt: self.dt(*at),
                what: serde_json::to_string(what).unwrap_or_default(),
                set: *set,
            },
            JournalEntry::Input(ArbiterInput::Failback { at }) => {
                Record::Failback { dt: self.dt(*at) }
            }
            JournalEntry::Published { at, publication } => Record::Published {
                dt: self.dt(*at),
                answers: publication
                    .answers
                    .iter()
                    .map(|a| {
                        (
                            a.name.clone(),
                            a.addresses.iter().map(ToString::to_string).collect(),
                        )
                    })
                    .collect(),
            },
            JournalEntry::Event(event) => Record::Event {
                dt: self.dt(event.at),
                name: event.name().to_owned(),
                subject: event.subject(),
                text: event.to_string(),
            },
            // Kinds of entry a later version adds are not kept by this one.
            _ => return,
        };
        self.push(&record);
    }

    /// The index of the pair `node` × `check`, announced by a pair record the first time.
    fn pair(&mut self, node: &str, check: &str) -> u32 {
        let key = (node.to_owned(), check.to_owned());
        if let Some(&pair) = self.pairs.get(&key) {
            return pair;
        }
        let pair = u32::try_from(self.pairs.len()).unwrap_or(u32::MAX);
        self.push(&Record::Pair {
            node: key.0.clone(),
            check: key.1.clone(),
        });
        self.pairs.insert(key, pair);
        self.details.push(None);
        pair
    }

    /// The index of the peer observer `name`, announced by a peer record the first time.
    fn peer(&mut self, name: &str) -> u32 {
        if let Some(&peer) = self.peers.get(name) {
            return peer;
        }
        let peer = u32::try_from(self.peers.len()).unwrap_or(u32::MAX);
        self.push(&Record::Peer {
            name: name.to_owned(),
        });
        self.peers.insert(name.to_owned(), peer);
        peer
    }

    /// A probe result's pair, class and detail (when it is not the pair's last one).
    fn outcome(&mut self, observation: &Observation) -> (u32, u8, Option<String>) {
        let pair = self.pair(observation.node.as_str(), observation.check.as_str());
        let class = outcome_class(&observation.outcome);
        let detail = match &observation.outcome {
            Outcome::Healthy { detail } => detail,
            Outcome::Failed { error, .. } => error,
        };
        // A healthy probe's detail is kept when it follows a failure (or starts the pair), not
        // each time it changes ("in step 3s ago"): a journal of a healthy cluster stays a few
        // bytes a probe; only event texts of a replay can differ.
        let last = &mut self.details[pair as usize];
        let same = match last {
            Some((0, _)) if class == 0 => true,
            Some((last_class, text)) => *last_class == class && text == detail,
            None => false,
        };
        let detail = if same {
            None
        } else {
            *last = Some((class, detail.clone()));
            Some(detail.clone())
        };
        (pair, class, detail)
    }

    /// Writes what was added; rotates past the segment size.
    pub fn flush(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.file.write_all(&self.buffer)?;
        self.written += self.buffer.len() as u64;
        self.buffer.clear();
        if self.written >= self.limits.segment_bytes {
            self.rotate()?;
        }
        Ok(())
    }

    /// Closes the segment, begins the next, and deletes the oldest beyond the journal's size.
    fn rotate(&mut self) -> std::io::Result<()> {
        self.file.sync_data()?;
        self.number += 1;
        self.file = new_segment(&self.dir, self.number)?;
        self.written = 0;
        self.pairs.clear();
        self.details.clear();
        self.peers.clear();
        self.start("rotate", None)?;
        let mut all = segments(&self.dir)?;
        let mut total: u64 = all
            .iter()
            .map(|(_, p)| std::fs::metadata(p).map_or(0, |m| m.len()))
            .sum();
        all.pop();
        for (_, path) in all {
            if total <= self.limits.max_bytes {
                break;
            }
            let size = std::fs::metadata(&path).map_or(0, |m| m.len());
            std::fs::remove_file(&path)?;
            total = total.saturating_sub(size);
        }
        Ok(())
    }
}

fn new_segment(dir: &Path, number: u64) -> std::io::Result<File> {
    OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(dir.join(segment_name(number)))
}

/// The failure classes in their journal order.
pub const CLASSES: [failover_core::FailureClass; 4] = [
    failover_core::FailureClass::Unreachable,
    failover_core::FailureClass::Timeout,
    failover_core::FailureClass::Unhealthy,
    failover_core::FailureClass::Misconfigured,
];

/// 0 healthy, else 1 + the failure class's index in [`CLASSES`].
fn outcome_class(outcome: &Outcome) -> u8 {
    match outcome {
        Outcome::Healthy { .. } => 0,
        Outcome::Failed { class, .. } => 1 + class_index(*class),
    }
}

fn class_index(class: failover_core::FailureClass) -> u8 {
    CLASSES
        .iter()
        .position(|c| *c == class)
        .map_or(2, |i| i as u8)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use std::time::Duration;

    use failover_core::{CheckName, Moment, NodeName, Observation};

    use super::*;

    /// The size the docs quote: a week of two nodes × four checks every 2 s.
    #[test]
    fn a_steady_probe_takes_about_ten_bytes_and_rotation_keeps_the_journal_under_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let limits = Limits {
            max_bytes: 1 << 20,
            segment_bytes: 256 << 10,
        };
        let mut writer = Writer::open(dir.path(), limits, "digest".into(), None, None).unwrap();
        let start = Moment::now();
        let probes = 200_000u32;
        for i in 0..probes {
            let at = start + Duration::from_millis(u64::from(i / 8) * 2000 + u64::from(i % 8) * 7);
            writer.add(&JournalEntry::Input(ArbiterInput::Observed(Observation {
                node: NodeName::new(if i % 2 == 0 { "master" } else { "slave" }),
                check: CheckName::new(["http", "mysql", "ssh", "dns"][(i as usize / 2) % 4]),
                outcome: Outcome::healthy("HTTP 200"),
                at,
            })));
            if i % 64 == 0 {
                writer.flush().unwrap();
            }
        }
        writer.flush().unwrap();
        let files = segments(dir.path()).unwrap();
        let total: u64 = files
            .iter()
            .map(|(_, p)| std::fs::metadata(p).unwrap().len())
            .sum();
        assert!(total <= limits.max_bytes + limits.segment_bytes, "{total}");
        assert!(files.len() >= 3, "{files:?}");
        // What was written in all: the number of segments ever opened tells.
        let opened = files.last().unwrap().0;
        let per_probe = (opened * limits.segment_bytes) as f64 / f64::from(probes);
        assert!(per_probe <= 11.0, "{per_probe:.1} bytes per probe");
        let week = per_probe * 4.0 * 604_800.0 / f64::from(1 << 20);
        eprintln!("{per_probe:.1} bytes per steady probe; a week of 2 nodes x 4 checks every 2 s: {week:.0} MiB");
    }
}
