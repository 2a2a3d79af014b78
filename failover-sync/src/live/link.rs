//! The mirror's side of the peer link: the messages, their framing over
//! [`PeerStream`](failover_core::peer::PeerStream) frames, the two tasks that carry them, and
//! [`RemoteReplica`], the engine's [`ReplicaLink`] to the peer's replica.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime};

use failover_core::peer::PeerStream;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use super::pack::{self, Packer, Unpacker, COMPRESSED, STREAMED};
use crate::error::SyncError;
use crate::path::RelPath;
#[cfg(test)]
use crate::protocol::{BatchRequest, BatchResponse};
use crate::protocol::{ReplicaLink, Request, Response};

/// The service name in the peer hello: a link meant for another service is refused.
pub const SERVICE: &str = "mirror";
/// Largest message (a scan of a very large tree), carried in several frames.
pub const MAX_MESSAGE: usize = 256 << 20;
/// Largest piece of a message in one frame (well under the link's frame limit).
const CHUNK: usize = 4 << 20;
/// Each end sends a ping this often, so that silence means a dead link.
const PING_EVERY: Duration = Duration::from_secs(5);
/// A link silent for this long is dropped.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Budget of writing one frame.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// Budget of one request to the peer's replica (a first scan of a large tree hashes it all;
/// the link's own pings tell a dead peer much sooner).
const CALL_TIMEOUT: Duration = Duration::from_secs(3600);
/// How often a waiting request looks whether the mirror is stopping.
const STOP_POLL: Duration = Duration::from_millis(100);

/// What crosses the link.
// A call is the big variant (a write carries three entries); each message is built once and
// moved into a frame, so boxing it would buy an allocation and nothing else.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Message {
    /// A request of the driving node's engine to the other node's replica.
    Call(Request),
    /// Its answer, or why the replica could not go on with the conversation.
    Reply(Result<Response, String>),
    /// Paths the sending node's watcher saw change (not the mirror's own writes).
    Changed(Vec<RelPath>),
    /// The sending node's watcher lost events: a full run is needed.
    Rescan,
    /// The driving node tells the other how the last run went, for its status and checks.
    Report(RunReport),
    /// Keeps a quiet link alive.
    Ping,
}

impl Message {
    /// The kind of message, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Message::Call(_) => "call",
            Message::Reply(_) => "reply",
            Message::Changed(_) => "changed",
            Message::Rescan => "rescan",
            Message::Report(_) => "report",
            Message::Ping => "ping",
        }
    }
}

/// How the last run went, as the driving node tells the other.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunReport {
    /// When the last run that left nothing behind started: what changed before is in step.
    pub in_step_since: Option<SystemTime>,
    /// Paths still to do.
    pub backlog_files: u64,
    /// Bytes of files still to do.
    pub backlog_bytes: u64,
    /// Conflicts so far.
    pub conflicts: u64,
    /// What needs a person, if anything.
    pub problem: Option<String>,
}

/// A frame's mark: more pieces follow.
const MORE: u8 = 1;
/// Bytes of messages before and after compression, as a link counts them.
#[derive(Debug, Default)]
pub struct LinkBytes {
    /// The messages' own bytes.
    pub raw: std::sync::atomic::AtomicU64,
    /// What went on the link (compressed where that was smaller).
    pub sent: std::sync::atomic::AtomicU64,
}

/// The frames of `message`: each starts with its mark, 1 (`MORE`) when more pieces follow (0 on
/// the last), plus 2 (`COMPRESSED`) when the message is compressed on its own (4, `STREAMED`:
/// in the link's stream, is how a running link sends them).
pub fn encode(message: &Message) -> Result<Vec<Vec<u8>>, SyncError> {
    encode_counted(message, None, None)
}

/// [`encode`], compressed in `stream` when there is one, adding the message's bytes before and
/// after compression to `counted`.
fn encode_counted(
    message: &Message,
    stream: Option<&mut Packer>,
    counted: Option<&LinkBytes>,
) -> Result<Vec<Vec<u8>>, SyncError> {
    let bytes = postcard::to_allocvec(message).map_err(|e| SyncError::Peer(e.to_string()))?;
    if bytes.len() > MAX_MESSAGE {
        return Err(SyncError::Peer(format!(
            "a message of {} bytes is over the limit of {MAX_MESSAGE}",
            bytes.len()
        )));
    }
    let raw = bytes.len();
    let (bytes, flag) = match stream {
        Some(stream) => stream.pack(bytes)?,
        None => match pack::standalone(&bytes) {
            Some(packed) => (packed, COMPRESSED),
            None => (bytes, 0),
        },
    };
    if let Some(counted) = counted {
        counted.raw.fetch_add(raw as u64, Ordering::Relaxed);
        counted
            .sent
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
    }
    let pieces: Vec<&[u8]> = if bytes.is_empty() {
        vec![&[]]
    } else {
        bytes.chunks(CHUNK).collect()
    };
    let last = pieces.len() - 1;
    Ok(pieces
        .into_iter()
        .enumerate()
        .map(|(i, piece)| {
            let mut frame = Vec::with_capacity(piece.len() + 1);
            frame.push(flag | if i != last { MORE } else { 0 });
            frame.extend_from_slice(piece);
            frame
        })
        .collect())
}

/// Puts messages back together from their frames.
#[derive(Debug, Default)]
pub struct Assembler {
    pending: Vec<u8>,
    stream: Unpacker,
}

impl Assembler {
    /// Adds a frame; returns the message it completes. An `Err` (an oversized message, an
    /// unsafe path, garbage) means the link must be dropped.
    pub fn push(&mut self, frame: &[u8]) -> Result<Option<Message>, SyncError> {
        let Some((&more, piece)) = frame.split_first() else {
            return Err(SyncError::Protocol("an empty frame".to_owned()));
        };
        if self.pending.len() + piece.len() > MAX_MESSAGE {
            return Err(SyncError::Protocol(format!(
                "a message over the limit of {MAX_MESSAGE} bytes"
            )));
        }
        if more & !(MORE | COMPRESSED | STREAMED) != 0
            || more & (COMPRESSED | STREAMED) == COMPRESSED | STREAMED
        {
            return Err(SyncError::Protocol(format!(
                "a frame marked {more} (a peer of another version?)"
            )));
        }
        self.pending.extend_from_slice(piece);
        match more & MORE {
            MORE => Ok(None),
            _ => {
                let bytes = std::mem::take(&mut self.pending);
                let bytes = self.stream.unpack(more, bytes)?;
                postcard::from_bytes(&bytes).map(Some).map_err(|e| {
                    SyncError::Protocol(format!(
                        "an unreadable message ({e}): garbage, another version, or a path \
                             that is absolute, has a `..` component or names a temp file"
                    ))
                })
            }
        }
    }
}

/// Keeps a link's sending under a rate (rsync's `--bwlimit`): each frame's time at the rate is
/// added to when the link is next free, and a frame waits for that; after a quiet spell at most
/// [`Pace::BURST`] of sending goes out at once.
#[derive(Debug)]
pub struct Pace {
    rate: Option<u64>,
    next: tokio::time::Instant,
}

impl Pace {
    /// How much unused time a quiet link may send at once.
    pub const BURST: Duration = Duration::from_millis(50);

    /// At most `rate` bytes per second (none: no waiting).
    pub fn new(rate: Option<u64>) -> Self {
        Self {
            rate: rate.filter(|&r| r > 0),
            next: tokio::time::Instant::now(),
        }
    }

    /// Waits until `bytes` more may go out.
    pub async fn wait(&mut self, bytes: usize) {
        let Some(rate) = self.rate else {
            return;
        };
        let now = tokio::time::Instant::now();
        let earliest = now.checked_sub(Self::BURST).unwrap_or(now);
        self.next = self.next.max(earliest);
        tokio::time::sleep_until(self.next).await;
        self.next += Duration::from_secs_f64(bytes as f64 / rate as f64);
    }
}

/// What a link delivers to the loop that owns it.
#[derive(Debug)]
pub(crate) enum Delivery {
    /// A message other than a reply or a ping (boxed: requests are large).
    Message(u64, Box<Message>),
    /// The link ended, and why.
    Closed(u64, String),
}

/// A reply, or the end of the link, for the caller waiting on it.
#[derive(Debug)]
pub(crate) enum Answer {
    Reply(Result<Response, String>),
    Closed(String),
}

/// A running link: a reader task and a writer task on the runtime, stopped when dropped.
pub(crate) struct Link {
    /// Tells this link's deliveries from an earlier one's.
    pub id: u64,
    /// The peer's address.
    pub peer: String,
    out: tokio::sync::mpsc::Sender<Message>,
    tasks: Vec<JoinHandle<()>>,
}

impl Link {
    /// Starts the tasks of `stream`. Replies go to `answers` when this end drives (and are a
    /// protocol error otherwise); everything else to `deliver`.
    pub fn start(
        stream: PeerStream,
        id: u64,
        runtime: &tokio::runtime::Handle,
        deliver: impl Fn(Delivery) + Send + Sync + 'static,
        answers: Option<mpsc::Sender<Answer>>,
        (counted, bwlimit): (Arc<LinkBytes>, Option<u64>),
    ) -> Link {
        let peer = stream.peer().to_owned();
        let (mut reader, mut writer) = stream.into_split();
        let (out, mut outgoing) = tokio::sync::mpsc::channel::<Message>(64);
        let deliver = std::sync::Arc::new(deliver);
        let close = {
            let deliver = deliver.clone();
            let answers = answers.clone();
            move |reason: String| {
                if let Some(answers) = &answers {
                    let _ = answers.send(Answer::Closed(reason.clone()));
                }
                deliver(Delivery::Closed(id, reason));
            }
        };
        let close_reader = close.clone();
        let reader_task = runtime.spawn(async move {
            let mut assembler = Assembler::default();
            let reason = loop {
                let frame = match tokio::time::timeout(IDLE_TIMEOUT, reader.recv()).await {
                    Err(_) => {
                        break format!("no word for {} s: the link is dead", IDLE_TIMEOUT.as_secs())
                    }
                    Ok(Err(e)) => break e.to_string(),
                    Ok(Ok(None)) => break "closed the link".to_owned(),
                    Ok(Ok(Some(frame))) => frame,
                };
                match assembler.push(&frame) {
                    Err(e) => break format!("sent an invalid message ({e}); link dropped"),
                    Ok(None) | Ok(Some(Message::Ping)) => {}
                    Ok(Some(Message::Reply(reply))) => match &answers {
                        Some(answers) => {
                            let _ = answers.send(Answer::Reply(reply));
                        }
                        None => break "sent a reply to nothing; link dropped".to_owned(),
                    },
                    Ok(Some(Message::Call(_))) if answers.is_some() => {
                        break "sent a request to the driving node; link dropped".to_owned()
                    }
                    Ok(Some(message)) => deliver(Delivery::Message(id, Box::new(message))),
                }
            };
            close_reader(reason);
        });
        let writer_task = runtime.spawn(async move {
            let mut ping = tokio::time::interval(PING_EVERY);
            let mut pace = Pace::new(bwlimit);
            let mut packer = match Packer::new() {
                Ok(packer) => packer,
                Err(e) => return close(e.to_string()),
            };
            let reason = loop {
                let message = tokio::select! {
                    next = outgoing.recv() => match next {
                        Some(message) => message,
                        None => return,
                    },
                    _ = ping.tick() => Message::Ping,
                };
                let frames = match encode_counted(&message, Some(&mut packer), Some(&counted)) {
                    Ok(frames) => frames,
                    Err(e) => break e.to_string(),
                };
                let mut failed = None;
                for frame in frames {
                    pace.wait(frame.len()).await;
                    match tokio::time::timeout(SEND_TIMEOUT, writer.send(&frame)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => failed = Some(e.to_string()),
                        Err(_) => {
                            failed = Some(format!(
                                "could not send for {} s: the link is stuck",
                                SEND_TIMEOUT.as_secs()
                            ))
                        }
                    }
                    if failed.is_some() {
                        break;
                    }
                }
                if let Some(reason) = failed {
                    break reason;
                }
            };
            close(reason);
        });
        Link {
            id,
            peer,
            out,
            tasks: vec![reader_task, writer_task],
        }
    }

    /// Queues `message` (blocks while the queue is full; fails once the link is down).
    /// Call from a plain thread, not from the runtime.
    pub fn send(&self, message: Message) -> Result<(), SyncError> {
        self.out
            .blocking_send(message)
            .map_err(|_| SyncError::Peer(format!("the link to {} is down", self.peer)))
    }

    /// The sending half, for a [`RemoteReplica`].
    pub fn sender(&self) -> tokio::sync::mpsc::Sender<Message> {
        self.out.clone()
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The peer's replica as the engine sees it: each request goes over the link as a
/// [`Message::Call`] and waits for its [`Message::Reply`].
///
/// Requests are answered in order; a burst of small files goes as [`Request::Batch`]es, so
/// it costs a few round trips, not a few per file.
pub struct RemoteReplica {
    peer: String,
    out: tokio::sync::mpsc::Sender<Message>,
    answers: mpsc::Receiver<Answer>,
    stopping: Arc<AtomicBool>,
}

impl RemoteReplica {
    /// The replica behind `out` and `answers`; a request waiting for its answer gives up
    /// once `stopping` is set (the mirror is shutting down).
    pub(crate) fn new(
        peer: String,
        out: tokio::sync::mpsc::Sender<Message>,
        answers: mpsc::Receiver<Answer>,
        stopping: Arc<AtomicBool>,
    ) -> Self {
        RemoteReplica {
            peer,
            out,
            answers,
            stopping,
        }
    }

    /// The answer to the request just sent: within [`CALL_TIMEOUT`], and not after the
    /// mirror started stopping.
    fn answer(&self) -> Result<Answer, SyncError> {
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            if self.stopping.load(Ordering::Relaxed) {
                return Err(SyncError::Peer(format!(
                    "the mirror is stopping; the request to {} is abandoned",
                    self.peer
                )));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(SyncError::Peer(format!(
                    "{} did not answer within {} s",
                    self.peer,
                    CALL_TIMEOUT.as_secs()
                )));
            }
            match self.answers.recv_timeout(left.min(STOP_POLL)) {
                Ok(answer) => return Ok(answer),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(SyncError::Peer(format!(
                        "the link to {} is down",
                        self.peer
                    )))
                }
            }
        }
    }
}

impl ReplicaLink for RemoteReplica {
    fn call(&mut self, request: Request) -> Result<Response, SyncError> {
        self.out
            .blocking_send(Message::Call(request))
            .map_err(|_| SyncError::Peer(format!("the link to {} is down", self.peer)))?;
        match self.answer()? {
            Answer::Reply(Ok(response)) => Ok(response),
            Answer::Reply(Err(reason)) => Err(SyncError::Peer(format!(
                "{}'s replica stopped the run: {reason}",
                self.peer
            ))),
            Answer::Closed(reason) => Err(SyncError::Peer(format!("{}: {reason}", self.peer))),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;

    /// Bytes that do not compress (a JPEG's, say): a simple generator, the same every run.
    fn noise(length: usize) -> Vec<u8> {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        (0..length)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn text_crosses_compressed_noise_as_it_is_and_both_arrive_whole() {
        let text: Vec<u8> = (0..2000)
            .flat_map(|i| format!("<?php echo $row[{i}]; // line {i} of the page\n").into_bytes())
            .collect();
        let counted = LinkBytes::default();
        let frames = encode_counted(
            &Message::Reply(Ok(Response::Data(text.clone()))),
            None,
            Some(&counted),
        )
        .unwrap();
        let (raw, sent) = (
            counted.raw.load(Ordering::Relaxed),
            counted.sent.load(Ordering::Relaxed),
        );
        assert!(sent * 5 < raw, "{sent} of {raw} bytes");
        match Assembler::default().push(&frames[0]).unwrap() {
            Some(Message::Reply(Ok(Response::Data(data)))) => assert_eq!(data, text),
            other => panic!("{other:?}"),
        }
        let jpeg = noise(100_000);
        let counted = LinkBytes::default();
        let frames = encode_counted(
            &Message::Reply(Ok(Response::Data(jpeg.clone()))),
            None,
            Some(&counted),
        )
        .unwrap();
        assert_eq!(frames[0][0], 0, "sent as it is");
        let (raw, sent) = (
            counted.raw.load(Ordering::Relaxed),
            counted.sent.load(Ordering::Relaxed),
        );
        assert_eq!(raw, sent);
        match Assembler::default().push(&frames[0]).unwrap() {
            Some(Message::Reply(Ok(Response::Data(data)))) => assert_eq!(data, jpeg),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn in_the_links_stream_small_pages_of_one_site_cost_a_third_less_than_alone() {
        // Twenty small pages of one site: the same markup around different words.
        let page = |i: usize| -> Vec<u8> {
            (0..6)
                .flat_map(|line| {
                    format!(
                        "<div class=\"row item-{line}\"><a href=\"/page/{i}/{line}\">entry {} of page {i}</a></div>\n",
                        (i * 7919 + line * 104729) % 100_003
                    )
                    .into_bytes()
                })
                .collect()
        };
        let (streamed, alone) = (LinkBytes::default(), LinkBytes::default());
        let mut packer = Packer::new().unwrap();
        let mut assembler = Assembler::default();
        for i in 0..20 {
            let message = Message::Reply(Ok(Response::Data(page(i))));
            encode_counted(&message, None, Some(&alone)).unwrap();
            let frames = encode_counted(&message, Some(&mut packer), Some(&streamed)).unwrap();
            assert_eq!(frames[0][0], STREAMED);
            match assembler.push(&frames[0]).unwrap() {
                Some(Message::Reply(Ok(Response::Data(data)))) => assert_eq!(data, page(i)),
                other => panic!("{other:?}"),
            }
        }
        let (streamed, alone) = (
            streamed.sent.load(Ordering::Relaxed),
            alone.sent.load(Ordering::Relaxed),
        );
        assert!(
            streamed * 3 < alone * 2,
            "streamed {streamed} B, alone {alone} B"
        );
        // Noise goes as it is, and the stream goes on after it.
        let jpeg = Message::Reply(Ok(Response::Data(noise(100_000))));
        let frames = encode_counted(&jpeg, Some(&mut packer), None).unwrap();
        assert_eq!(frames[0][0], 0, "sent as it is");
        assert!(assembler.push(&frames[0]).unwrap().is_some());
        let frames = encode_counted(
            &Message::Reply(Ok(Response::Data(page(3)))),
            Some(&mut packer),
            None,
        )
        .unwrap();
        assert!(matches!(
            assembler.push(&frames[0]).unwrap(),
            Some(Message::Reply(Ok(Response::Data(data)))) if data == page(3)
        ));
        // A receiver that missed the stream's start cannot read it: an error, not garbage.
        let err = Assembler::default()
            .push(&frames[0])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("does not unpack") || err.contains("unreadable"),
            "{err}"
        );
        let err = Assembler::default()
            .push(&[COMPRESSED | STREAMED, 1])
            .unwrap_err()
            .to_string();
        assert!(err.contains("marked 6"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_pace_keeps_a_link_at_its_rate_with_a_short_burst_after_a_quiet_spell() {
        let mut pace = Pace::new(Some(1 << 20));
        let started = tokio::time::Instant::now();
        // 20 frames of 256 KiB at 1 MiB/s: 5 s of sending, the last frame starts at 4.75 s.
        for _ in 0..20 {
            pace.wait(256 << 10).await;
        }
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(4700) && took <= Duration::from_millis(4800),
            "{took:?}"
        );
        // Quiet for a minute: the next frame goes at once, the unused minute is not saved up.
        tokio::time::sleep(Duration::from_secs(60)).await;
        let quiet = tokio::time::Instant::now();
        pace.wait(256 << 10).await;
        assert_eq!(quiet.elapsed(), Duration::ZERO);
        pace.wait(256 << 10).await;
        assert!(
            quiet.elapsed() >= Duration::from_millis(190),
            "{:?}",
            quiet.elapsed()
        );
        // No limit: no waiting.
        let mut free = Pace::new(None);
        let now = tokio::time::Instant::now();
        free.wait(1 << 30).await;
        assert_eq!(now.elapsed(), Duration::ZERO);
    }

    #[test]
    fn a_compressed_message_that_unpacks_past_the_limit_or_not_at_all_is_refused() {
        // 300 MiB of zeros packs into a few KiB: a bomb.
        let bomb = zstd::bulk::compress(&vec![0u8; MAX_MESSAGE + 1], 3).unwrap();
        let mut frame = vec![COMPRESSED];
        frame.extend_from_slice(&bomb);
        let err = Assembler::default().push(&frame).unwrap_err().to_string();
        assert!(err.contains("does not unpack"), "{err}");
        let err = Assembler::default()
            .push(&[COMPRESSED, 1, 2, 3])
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not unpack"), "{err}");
        let err = Assembler::default().push(&[8, 0]).unwrap_err().to_string();
        assert!(err.contains("a frame marked 8"), "{err}");
        // The same bomb in the link's stream.
        let (packed, mark) = Packer::new()
            .unwrap()
            .pack(vec![0u8; MAX_MESSAGE + 1])
            .unwrap();
        assert_eq!(mark, STREAMED);
        let mut frame = vec![STREAMED];
        frame.extend_from_slice(&packed);
        let err = Assembler::default().push(&frame).unwrap_err().to_string();
        assert!(err.contains("unpacks past"), "{err}");
    }

    #[test]
    fn large_messages_cross_in_pieces_and_unsafe_paths_do_not_cross() {
        let big = Message::Reply(Ok(Response::Data(noise(CHUNK * 2 + 10))));
        let frames = encode(&big).unwrap();
        assert_eq!(frames.len(), 3);
        let mut assembler = Assembler::default();
        assert!(assembler.push(&frames[0]).unwrap().is_none());
        assert!(assembler.push(&frames[1]).unwrap().is_none());
        match assembler.push(&frames[2]).unwrap() {
            Some(Message::Reply(Ok(Response::Data(data)))) => {
                assert_eq!(data.len(), CHUNK * 2 + 10)
            }
            other => panic!("{other:?}"),
        }

        let honest = Message::Changed(vec![RelPath::new("aa/x").unwrap()]);
        let mut frame = encode(&honest).unwrap().remove(0);
        let at = frame.windows(4).position(|w| w == b"aa/x").unwrap();
        frame[at..at + 2].copy_from_slice(b"..");
        let err = Assembler::default().push(&frame).unwrap_err().to_string();
        assert!(err.contains("an unreadable message"), "{err}");
    }

    /// The frame of `message` with its empty batch replaced by `depth` batches, each holding
    /// the next: what a hostile peer sends to overflow the decoder's stack.
    fn nested(message: &Message, depth: usize) -> Vec<u8> {
        let mut frame = encode(message).unwrap().remove(0);
        assert_eq!(
            frame.pop(),
            Some(0),
            "the empty batch's length ends the frame"
        );
        let tag = frame.pop().unwrap();
        for _ in 0..depth {
            frame.extend_from_slice(&[tag, 1]);
        }
        frame.extend_from_slice(&[tag, 0]);
        frame
    }

    #[test]
    fn nested_batches_are_refused_without_recursing() {
        let call = Message::Call(Request::Batch(Vec::new()));
        let reply = Message::Reply(Ok(Response::Batch(Vec::new())));
        for message in [&call, &reply] {
            let flat = Assembler::default().push(&nested(message, 0)).unwrap();
            assert_eq!(format!("{flat:?}"), format!("{:?}", Some(message)));
            // One level deep is already refused; a million levels overflowed the stack and
            // aborted the daemon when batches were recursive.
            for depth in [1, 1_000_000] {
                let err = Assembler::default()
                    .push(&nested(message, depth))
                    .unwrap_err()
                    .to_string();
                assert!(err.contains("an unreadable message"), "{err}");
            }
        }
    }

    #[test]
    fn a_batch_holds_requests_encoded_as_on_their_own() {
        let one = || BatchRequest::ReadWhole {
            path: RelPath::new("a/b").unwrap(),
            expect: crate::entry::Entry {
                kind: crate::entry::Kind::File {
                    size: 3,
                    hash: crate::entry::Hash::of(b"abc"),
                },
                mode: 0o644,
                owner: None,
                mtime_ns: 7,
                stat: crate::entry::StatKey::default(),
                xattrs: None,
            },
        };
        let batch = Request::Batch(vec![one(), BatchRequest::Flush]);
        let alone = postcard::to_allocvec(&Request::from(one())).unwrap();
        let inside = postcard::to_allocvec(&one()).unwrap();
        assert_eq!(alone, inside);
        match Assembler::default()
            .push(&encode(&Message::Call(batch.clone())).unwrap()[0])
            .unwrap()
        {
            Some(Message::Call(back)) => assert_eq!(back, batch),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            BatchRequest::try_from(batch),
            Err(vec![one(), BatchRequest::Flush])
        );
        let answer = Response::from(BatchResponse::Staged);
        assert_eq!(BatchResponse::try_from(answer), Ok(BatchResponse::Staged));
    }
}
