//! The journal's records and how they sit in a file: each record is its length (LEB128), its
//! postcard bytes and a 16-bit check (the low half of its CRC-32), so that a record torn by a kill
//! is found and skipped. A probe result is a few bytes: its node and check as an index into the
//! segment's table of pairs, its time as milliseconds since the record before, and its detail only
//! when it differs from the pair's last one.

use serde::{Deserialize, Serialize};

/// One record of a journal segment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    /// The daemon started (or a new segment began): the wall clock in ms since the epoch, the
    /// config's digest, and the arbiter state it started from (JSON), if it restored one.
    Start {
        /// Milliseconds since the Unix epoch.
        wall_ms: u64,
        /// Why the segment begins: `start`, `reload` or `rotate`.
        reason: String,
        /// The config file's digest (BLAKE3, hex).
        config: String,
        /// The arbiter state it started from, as JSON.
        restored: Option<String>,
    },
    /// The next node × check pair of this segment (its index is the count of pairs before).
    Pair {
        /// The node.
        node: String,
        /// The check.
        check: String,
    },
    /// A probe result the arbiter took.
    Probe {
        /// Milliseconds since the record before.
        dt: u32,
        /// Index of its pair.
        pair: u32,
        /// 0 healthy; else 1 + the failure class (unreachable, timeout, unhealthy,
        /// misconfigured).
        class: u8,
        /// Its detail (or error), when not the same as the pair's last one (a healthy probe's
        /// only after a failure or as the pair's first).
        detail: Option<String>,
    },
    /// An operator's override (JSON of the override), set or cleared.
    Override {
        /// Milliseconds since the record before.
        dt: u32,
        /// The override, as JSON.
        what: String,
        /// Set or cleared.
        set: bool,
    },
    /// An operator asked for a failback.
    Failback {
        /// Milliseconds since the record before.
        dt: u32,
    },
    /// The arbiter published this answer.
    Published {
        /// Milliseconds since the record before.
        dt: u32,
        /// Each managed name with its addresses.
        answers: Vec<(String, Vec<String>)>,
    },
    /// The arbiter raised this event.
    Event {
        /// Milliseconds since the record before.
        dt: u32,
        /// The event's kind (`failover`, `check-down`, ...).
        name: String,
        /// What it is about (`http on master`).
        subject: String,
        /// Its one-line text.
        text: String,
    },
    /// The daemon shares observations as this observer: its `Probe` records are what the
    /// quorum released, and its own probes and the peers' words follow as `Local`, `Remote`
    /// and `Heard` (after `Start`, in each segment).
    Observer {
        /// The observer's name (its node's).
        name: String,
    },
    /// The next peer observer of this segment (its index is the count of peers before).
    Peer {
        /// The peer's name.
        name: String,
    },
    /// One of this observer's probe results, before the quorum (as `Probe`).
    Local {
        /// Milliseconds since the record before.
        dt: u32,
        /// Index of its pair.
        pair: u32,
        /// As in `Probe`.
        class: u8,
        /// As in `Probe`.
        detail: Option<String>,
    },
    /// A peer's verdict (its failure class without its text).
    Remote {
        /// Milliseconds since the record before.
        dt: u32,
        /// Index of the peer.
        peer: u32,
        /// Index of the pair it is about.
        pair: u32,
        /// As in `Probe`.
        class: u8,
        /// The peer's failures in a row.
        failures: u32,
    },
    /// A peer's heartbeat.
    Heard {
        /// Milliseconds since the record before.
        dt: u32,
        /// Index of the peer.
        peer: u32,
    },
}

impl Record {
    /// Its time step (milliseconds since the record before), if it has one.
    pub fn dt(&self) -> Option<u32> {
        match self {
            Record::Probe { dt, .. }
            | Record::Local { dt, .. }
            | Record::Remote { dt, .. }
            | Record::Heard { dt, .. }
            | Record::Override { dt, .. }
            | Record::Failback { dt }
            | Record::Published { dt, .. }
            | Record::Event { dt, .. } => Some(*dt),
            Record::Start { .. }
            | Record::Pair { .. }
            | Record::Observer { .. }
            | Record::Peer { .. } => None,
        }
    }
}

/// Appends `record` to `out` in its frame.
pub fn encode(record: &Record, out: &mut Vec<u8>) -> Result<(), postcard::Error> {
    let payload = postcard::to_stdvec(record)?;
    let mut length = payload.len();
    loop {
        let byte = (length & 0x7f) as u8;
        length >>= 7;
        if length == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    let check = (crc32fast::hash(&payload) & 0xffff) as u16;
    out.extend_from_slice(&payload);
    out.extend_from_slice(&check.to_le_bytes());
    Ok(())
}

/// Why the records of a segment stop before its end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Torn {
    /// Where the bad record begins (byte offset).
    pub offset: usize,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Every record of `bytes`, in order, and where they stop if a record is torn or damaged (the
/// rest of the segment is not read: nothing after a bad length can be trusted).
pub fn decode_all(bytes: &[u8]) -> (Vec<Record>, Option<Torn>) {
    let mut records = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        match decode_one(&bytes[at..]) {
            Ok((record, used)) => {
                records.push(record);
                at += used;
            }
            Err(reason) => return (records, Some(Torn { offset: at, reason })),
        }
    }
    (records, None)
}

/// One record at the start of `bytes` and the bytes it took.
fn decode_one(bytes: &[u8]) -> Result<(Record, usize), &'static str> {
    let mut length: usize = 0;
    let mut used = 0;
    loop {
        let byte = *bytes.get(used).ok_or("cut inside its length")?;
        if used >= 4 {
            return Err("length too large");
        }
        length |= usize::from(byte & 0x7f) << (7 * used);
        used += 1;
        if byte & 0x80 == 0 {
            break;
        }
    }
    let end = used
        .checked_add(length)
        .and_then(|e| e.checked_add(2))
        .ok_or("length too large")?;
    let frame = bytes.get(used..end).ok_or("cut inside its bytes")?;
    let (payload, check) = frame.split_at(length);
    let expected = (crc32fast::hash(payload) & 0xffff) as u16;
    if check != expected.to_le_bytes() {
        return Err("check does not match (damaged)");
    }
    let record = postcard::from_bytes(payload).map_err(|_| "not a record")?;
    Ok((record, end))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;

    fn sample() -> Vec<Record> {
        vec![
            Record::Start {
                wall_ms: 1_800_000_000_000,
                reason: "start".into(),
                config: "ab".into(),
                restored: None,
            },
            Record::Pair {
                node: "master".into(),
                check: "http".into(),
            },
            Record::Probe {
                dt: 2000,
                pair: 0,
                class: 0,
                detail: Some("HTTP 200".into()),
            },
            Record::Probe {
                dt: 2001,
                pair: 0,
                class: 0,
                detail: None,
            },
        ]
    }

    #[test]
    fn records_round_trip_and_a_steady_probe_takes_a_few_bytes() {
        let mut bytes = Vec::new();
        for record in sample() {
            encode(&record, &mut bytes).unwrap();
        }
        let (records, torn) = decode_all(&bytes);
        assert_eq!(records, sample());
        assert_eq!(torn, None);
        let mut one = Vec::new();
        encode(&sample()[3], &mut one).unwrap();
        assert!(one.len() <= 10, "{} bytes", one.len());
    }

    #[test]
    fn a_torn_or_damaged_last_record_stops_the_reading_with_the_earlier_ones_kept() {
        let mut bytes = Vec::new();
        for record in sample() {
            encode(&record, &mut bytes).unwrap();
        }
        for cut in 1..6 {
            let (records, torn) = decode_all(&bytes[..bytes.len() - cut]);
            assert_eq!(records, sample()[..3].to_vec(), "cut {cut}");
            assert!(torn.is_some());
        }
        let mut damaged = bytes.clone();
        let last = damaged.len() - 3;
        damaged[last] ^= 0x40;
        let (records, torn) = decode_all(&damaged);
        assert_eq!(records.len(), 3);
        assert_eq!(torn.unwrap().reason, "check does not match (damaged)");
        // Zeros where a crash left the file's tail unwritten.
        let mut zeros = bytes.clone();
        zeros.extend_from_slice(&[0; 64]);
        let (records, torn) = decode_all(&zeros);
        assert_eq!(records, sample());
        assert!(torn.is_some());
    }
}
