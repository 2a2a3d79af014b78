//! What a run reports: [`RunSummary`], core's [`SyncReport`] with the detail a person reading
//! a run's output wants, and its one-line text.

use failover_core::SyncReport;

use crate::owners::Owners;

/// What a run did, in more detail than core's [`SyncReport`].
#[derive(Clone, Debug, Default)]
pub struct RunSummary {
    /// The summary the daemon and the trait see.
    pub report: SyncReport,
    /// The node names of A and B.
    pub nodes: [String; 2],
    /// The roots of A and B as their replicas name them.
    pub roots: [String; 2],
    /// Paths found on A and B.
    pub scanned: [usize; 2],
    /// Bytes hashed by the scans (files new or changed since the index).
    pub hashed_bytes: u64,
    /// Literal bytes sent in deltas and whole files.
    pub literal_bytes: u64,
    /// Bytes of signatures sent back by receivers.
    pub signature_bytes: u64,
    /// Of those, the bytes of deltas' second rounds: small blocks over what the first round
    /// left as literal data.
    pub fine_signature_bytes: u64,
    /// Paths the scans could not read (left alone), as `path: reason`.
    pub problems: Vec<String>,
    /// Warnings: an index that was ignored, a conflict copy overwritten.
    pub warnings: Vec<String>,
    /// Each change, one line each (`B <- A  path`): what was done, or with `dry_run` what
    /// would be done.
    pub changes: Vec<String>,
    /// Files renamed on the receiving side instead of sent (moves and renames).
    pub moved: u64,
    /// How this run kept owners: as asked, or [`Owners::Off`] when a side may not give files to
    /// other users (not root).
    pub owners: Owners,
}

impl RunSummary {
    /// One line for a human: what changed and what crossed between the replicas.
    pub fn summary(&self) -> String {
        let report = &self.report;
        let moved = if self.moved > 0 {
            format!(", {} moved", self.moved)
        } else {
            String::new()
        };
        let mut text = format!(
            "{} copied{moved}, {} deleted, {} conflict{}",
            report.copied,
            report.deleted,
            report.conflicts.len(),
            if report.conflicts.len() == 1 { "" } else { "s" }
        );
        if !report.failed.is_empty() {
            text.push_str(&format!(", {} failed", report.failed.len()));
        }
        text.push_str(&format!(
            "; sent {} for {} of files (literal {}, signatures {}); scanned {} + {} paths, hashed {}",
            human_bytes(report.bytes_transferred),
            human_bytes(report.file_bytes),
            human_bytes(self.literal_bytes),
            signatures(self.signature_bytes, self.fine_signature_bytes),
            self.scanned[0],
            self.scanned[1],
            human_bytes(self.hashed_bytes),
        ));
        text
    }
}

/// `1.2 MiB`, or with deltas' second rounds `1.2 MiB, 90.1 KiB of them small blocks`.
fn signatures(all: u64, fine: u64) -> String {
    if fine == 0 {
        human_bytes(all)
    } else {
        format!(
            "{}, {} of them small blocks",
            human_bytes(all),
            human_bytes(fine)
        )
    }
}

/// `1.5 MiB`, `312 B`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
