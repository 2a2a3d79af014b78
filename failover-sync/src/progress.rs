//! Progress of a run: a trait the engine reports to, a silent implementation and a terminal
//! progress bar (indicatif) that shows up only for runs longer than a second.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Receives the progress of a run. Calls come from the engine's thread.
pub trait Progress: Send + Sync {
    /// The plan is known: `items` paths to change, `bytes` of files to transfer.
    fn start(&self, items: u64, bytes: u64);
    /// One path done, `bytes` of its file transferred.
    fn advance(&self, bytes: u64);
    /// The run is over.
    fn finish(&self);
}

/// Reports nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _items: u64, _bytes: u64) {}
    fn advance(&self, _bytes: u64) {}
    fn finish(&self) {}
}

/// A progress bar on standard error, drawn only when it is a terminal and the run has lasted
/// a second.
pub struct TerminalBar {
    bar: Mutex<Option<ProgressBar>>,
    started: Instant,
    total: Mutex<(u64, u64)>,
    done: Mutex<u64>,
}

impl Default for TerminalBar {
    fn default() -> Self {
        TerminalBar {
            bar: Mutex::new(None),
            started: Instant::now(),
            total: Mutex::new((0, 0)),
            done: Mutex::new(0),
        }
    }
}

impl TerminalBar {
    /// A bar that appears after a second.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Progress for TerminalBar {
    fn start(&self, items: u64, bytes: u64) {
        if let Ok(mut total) = self.total.lock() {
            *total = (items, bytes);
        }
    }

    fn advance(&self, bytes: u64) {
        let Ok(mut done) = self.done.lock() else {
            return;
        };
        *done += bytes;
        let Ok(mut bar) = self.bar.lock() else {
            return;
        };
        if bar.is_none() && self.started.elapsed() > Duration::from_secs(1) {
            let total = self.total.lock().map(|t| t.1).unwrap_or(0);
            let new = ProgressBar::new(total);
            if let Ok(style) = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40} {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
            ) {
                new.set_style(style);
            }
            *bar = Some(new);
        }
        if let Some(bar) = bar.as_ref() {
            bar.set_position(*done);
        }
    }

    fn finish(&self) {
        if let Ok(mut bar) = self.bar.lock() {
            if let Some(bar) = bar.take() {
                bar.finish_and_clear();
            }
        }
    }
}
