//! [`Responder`]: what a server worker answers with: the served zone and the TSIG keys it knows.

use std::sync::Arc;

use crate::answer::Transport;
use crate::served::ServedZone;
use crate::tsig::TsigKey;

/// The answering side of one worker (UDP thread or TCP connection); cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Responder {
    pub(crate) zone: ServedZone,
    /// The transfer ACL's keys: queries signed by one get signed answers.
    keys: Arc<[TsigKey]>,
}

impl Responder {
    pub(crate) fn new(zone: ServedZone, keys: Arc<[TsigKey]>) -> Self {
        Self { zone, keys }
    }

    /// Answers one query into `out`; false when nothing must be sent.
    pub(crate) fn answer(&self, query: &[u8], transport: Transport, out: &mut Vec<u8>) -> bool {
        self.zone
            .answer_with_keys(query, transport, &self.keys, out)
    }
}
