//! The last day of the journal into the admin page's [`History`] at start, so that the heartbeat
//! bars, uptimes and answer changes survive a restart (the journal keeps no probe durations: the
//! latency chart starts again empty).

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::codec::{decode_all, Record};
use super::writer::segments;
use crate::admin::history::{History, NameAnswer, MINUTES_KEPT};

/// What [`seed`] took from the journal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seeded {
    /// Probe results.
    pub probes: usize,
    /// Answers published.
    pub answers: usize,
    /// Segments read.
    pub segments: usize,
}

/// Feeds `history` the probe results and answers of the journal in `dir` from the last 24 hours
/// before `now`. A segment last written before that is not read; a torn or damaged record ends
/// its segment's reading (as `failoverd replay` does). A journal that cannot be read seeds
/// nothing: the page starts empty, the daemon runs.
pub fn seed(history: &History, dir: &Path, now: SystemTime) -> Seeded {
    let mut seeded = Seeded::default();
    let since = now
        .checked_sub(Duration::from_secs(u64::from(MINUTES_KEPT) * 60))
        .unwrap_or(UNIX_EPOCH);
    let Ok(found) = segments(dir) else {
        return seeded; // no journal yet
    };
    for (_, path) in found {
        let written = std::fs::metadata(&path).and_then(|m| m.modified());
        if written.is_ok_and(|at| at < since) {
            continue;
        }
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::warn!("history: cannot read {}: {e}", path.display());
                continue;
            }
        };
        let (records, torn) = decode_all(&bytes);
        if let Some(torn) = torn {
            tracing::info!(
                "history: {} read up to byte {} ({}; a kill can tear the last record)",
                path.display(),
                torn.offset,
                torn.reason
            );
        }
        seeded.segments += 1;
        seed_segment(history, records, since, &mut seeded);
    }
    seeded
}

/// One segment's records: each segment names its pairs anew and restarts its clock.
fn seed_segment(history: &History, records: Vec<Record>, since: SystemTime, seeded: &mut Seeded) {
    let mut clock_ms: u64 = 0;
    let mut pairs: Vec<(String, String)> = Vec::new();
    // With shared observations the `Probe` records are what the quorum released; this
    // observer's own probes (what the live history counts) are the `Local` ones.
    let mut observer = false;
    for record in records {
        if let Some(dt) = record.dt() {
            clock_ms = clock_ms.saturating_add(u64::from(dt));
        }
        let at = UNIX_EPOCH + Duration::from_millis(clock_ms);
        let probe = match record {
            Record::Start { wall_ms, .. } => {
                clock_ms = wall_ms;
                pairs.clear();
                observer = false;
                None
            }
            Record::Pair { node, check } => {
                pairs.push((node, check));
                None
            }
            Record::Observer { .. } => {
                observer = true;
                None
            }
            Record::Probe { pair, class, .. } if !observer => Some((pair, class)),
            Record::Local { pair, class, .. } => Some((pair, class)),
            Record::Published { answers, .. } if at >= since => {
                let answers = answers
                    .into_iter()
                    .map(|(name, addresses)| NameAnswer { name, addresses })
                    .collect();
                history.record_answer(answers, at);
                seeded.answers += 1;
                None
            }
            _ => None,
        };
        let Some((pair, class)) = probe.filter(|_| at >= since) else {
            continue;
        };
        // A pair index no record named is damage: that probe is skipped.
        if let Some((node, check)) = usize::try_from(pair).ok().and_then(|p| pairs.get(p)) {
            history.record_probe(node, check, class == 0, None, at);
            seeded.probes += 1;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use failover_core::{
        ArbiterInput, CheckName, FailureClass, JournalEntry, ManagedAnswer, Moment, NodeName,
        Observation, Outcome, Publication,
    };

    use super::super::writer::{Limits, Writer};
    use super::*;
    use crate::admin::history::CellState;

    fn observation(node: &str, healthy: bool, at: Moment) -> JournalEntry {
        JournalEntry::Input(ArbiterInput::Observed(Observation {
            node: NodeName::new(node),
            check: CheckName::new("http"),
            outcome: if healthy {
                Outcome::healthy("HTTP 200")
            } else {
                Outcome::failed(FailureClass::Unreachable, "connection refused")
            },
            at,
        }))
    }

    #[test]
    fn a_journal_with_a_failure_and_an_answer_seeds_the_history_and_a_torn_tail_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let limits = Limits {
            max_bytes: 1 << 30,
            segment_bytes: 1 << 30,
        };
        let mut writer = Writer::open(dir.path(), limits, "digest".into(), None, None).unwrap();
        let start = Moment::now();
        let published = JournalEntry::Published {
            at: (start + Duration::from_secs(12)).wall,
            publication: Publication {
                nodes: vec![NodeName::new("slave")],
                answers: vec![ManagedAnswer {
                    name: "@".into(),
                    ttl: 10,
                    addresses: vec!["127.0.0.3".parse().unwrap()],
                }],
            },
        };
        for i in 0..30u32 {
            let at = start + Duration::from_secs(u64::from(i));
            writer.add(&observation("master", !(10..15).contains(&i), at));
            writer.add(&observation("slave", true, at));
            if i == 12 {
                // In order, as the supervisor sends them (the journal's clock never goes back).
                writer.add(&published);
            }
        }
        writer.flush().unwrap();
        drop(writer);
        // A kill tore the last record.
        let (_, path) = segments(dir.path()).unwrap().pop().unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(&[0x05, 0x01]);
        std::fs::write(&path, bytes).unwrap();

        let history = History::new();
        let now = (start + Duration::from_secs(40)).wall;
        let seeded = seed(&history, dir.path(), now);
        assert_eq!(
            seeded,
            Seeded {
                probes: 60,
                answers: 1,
                segments: 1
            }
        );
        let view = history.view(now);
        let master = view.check("master", "http").unwrap();
        let (ok, failed) = master
            .minutes
            .iter()
            .fold((0, 0), |(o, f), m| (o + m.ok, f + m.failed));
        assert_eq!((ok, failed), (25, 5));
        assert_eq!(master.uptime_1h, Some(25.0 / 30.0));
        assert!(master.minutes.iter().all(|m| m.timed == 0));
        let slave = view.check("slave", "http").unwrap();
        assert!(slave.minutes.iter().all(|m| m.state() == CellState::Up));
        assert_eq!(view.answer_changes.len(), 1);
        assert_eq!(view.answer_changes[0].answers[0].addresses, ["127.0.0.3"]);
        let wall_ms = |at: SystemTime| at.duration_since(UNIX_EPOCH).unwrap().as_millis();
        assert_eq!(
            wall_ms(view.answer_changes[0].at),
            wall_ms((start + Duration::from_secs(12)).wall)
        );
        // A day later, it is all too old.
        let later = now + Duration::from_secs(24 * 3600);
        let history = History::new();
        assert_eq!(seed(&history, dir.path(), later).probes, 0);
    }
}
