//! Reading a replica's answers: the variant a request expects, or an error that names what
//! came instead; why a step failed, as the report says it.

use crate::error::SyncError;
use crate::protocol::{BatchResponse, Failure, Response, ResponseOf, ScanReply};

/// The answers of a batch of `count` requests.
pub(super) fn batch(response: Response, count: usize) -> Result<Vec<BatchResponse>, SyncError> {
    match response {
        Response::Batch(answers) if answers.len() == count => Ok(answers),
        Response::Batch(answers) => Err(SyncError::Protocol(format!(
            "a batch of {count} requests got {} answers",
            answers.len()
        ))),
        other => Err(unexpected(&other)),
    }
}

pub(super) fn scanned(response: Response) -> Result<ScanReply, SyncError> {
    match response {
        Response::Scanned(reply) => Ok(reply),
        other => Err(unexpected(&other)),
    }
}

pub(super) fn unexpected<B: std::fmt::Debug>(response: &ResponseOf<B>) -> SyncError {
    let name = match response {
        ResponseOf::Failed(failure) => format!("failure {failure:?}"),
        other => format!("{other:?}").chars().take(60).collect(),
    };
    SyncError::Protocol(format!("unexpected answer: {name}"))
}

/// Why one step failed, for the report.
pub(super) fn reason(failure: &Failure) -> String {
    match failure {
        Failure::Changed => {
            "changed during the sync; left as it is, the next run picks it up".to_owned()
        }
        Failure::HashMismatch => {
            "changed while it was being sent (hash mismatch); nothing was replaced".to_owned()
        }
        Failure::Io(message) => message.clone(),
        Failure::Invalid(message) => format!("refused by the replica: {message}"),
    }
}
