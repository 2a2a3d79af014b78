//! Compression of the mirror's messages on the peer link: one zstd stream per direction of a
//! link, flushed at the end of every message, so a message can refer to what earlier ones
//! carried (the files of one site share most of their words), as rsync -z's one stream per
//! session does; data that does not shrink (JPEGs, archives) goes as it is.

use zstd::stream::raw::{CParameter, DParameter, Decoder, Encoder, InBuffer, Operation, OutBuffer};

use super::link::MAX_MESSAGE;
use crate::error::SyncError;

/// A frame's mark: the message is zstd-compressed on its own.
pub(super) const COMPRESSED: u8 = 2;
/// A frame's mark: the message is the next part of the link's zstd stream.
pub(super) const STREAMED: u8 = 4;
/// Messages shorter than this are sent as they are (pings, reports, short calls).
const COMPRESS_FROM: usize = 256;
/// zstd's level: fast, and most of what text gives (level 3 is zstd's own default).
const COMPRESS_LEVEL: i32 = 3;
/// The stream's window: how far back a message may refer (2 MiB: a hundred of a site's files),
/// which is also about the memory each end keeps for it.
const WINDOW_LOG: u32 = 21;
/// A message longer than this is tried on a sample first: if the sample does not shrink by a
/// twentieth, the message goes as it is (no time spent compressing a JPEG).
const SAMPLE_FROM: usize = 16 << 10;
const SAMPLE: usize = 4 << 10;

/// `bytes` compressed on their own, when that saves at least a twentieth.
pub(super) fn standalone(bytes: &[u8]) -> Option<Vec<u8>> {
    if bytes.len() < COMPRESS_FROM {
        return None;
    }
    let packed = zstd::bulk::compress(bytes, COMPRESS_LEVEL).ok()?;
    (packed.len() < bytes.len() - bytes.len() / 20).then_some(packed)
}

/// Whether a sample from the middle of `bytes` shrinks by a twentieth.
fn sample_shrinks(bytes: &[u8]) -> bool {
    let start = (bytes.len() - SAMPLE) / 2;
    let sample = &bytes[start..start + SAMPLE];
    zstd::bulk::compress(sample, 1).is_ok_and(|packed| packed.len() < SAMPLE - SAMPLE / 20)
}

fn stream_error(what: &str, error: std::io::Error) -> SyncError {
    SyncError::Protocol(format!("the link's compression: {what}: {error}"))
}

/// The sending end's stream.
pub(super) struct Packer {
    encoder: Encoder<'static>,
}

impl Packer {
    pub(super) fn new() -> Result<Self, SyncError> {
        let mut encoder =
            Encoder::new(COMPRESS_LEVEL).map_err(|e| stream_error("starting the stream", e))?;
        encoder
            .set_parameter(CParameter::WindowLog(WINDOW_LOG))
            .map_err(|e| stream_error("setting its window", e))?;
        Ok(Packer { encoder })
    }

    /// The bytes to send for a message and the frame mark that says how to read them.
    pub(super) fn pack(&mut self, bytes: Vec<u8>) -> Result<(Vec<u8>, u8), SyncError> {
        if bytes.len() < COMPRESS_FROM || (bytes.len() > SAMPLE_FROM && !sample_shrinks(&bytes)) {
            return Ok((bytes, 0));
        }
        let mut out: Vec<u8> = Vec::with_capacity(bytes.len() / 2 + 64);
        let mut input = InBuffer::around(&bytes);
        while input.pos() < bytes.len() {
            reserve(&mut out);
            let len = out.len();
            let mut output = OutBuffer::around_pos(&mut out, len);
            self.encoder
                .run(&mut input, &mut output)
                .map_err(|e| stream_error("compressing", e))?;
        }
        loop {
            reserve(&mut out);
            let len = out.len();
            let mut output = OutBuffer::around_pos(&mut out, len);
            let left = self
                .encoder
                .flush(&mut output)
                .map_err(|e| stream_error("flushing", e))?;
            if left == 0 {
                break;
            }
        }
        Ok((out, STREAMED))
    }
}

/// Room for at least 64 KiB more in `out`.
fn reserve(out: &mut Vec<u8>) {
    if out.capacity() - out.len() < 64 << 10 {
        out.reserve(out.capacity().max(64 << 10));
    }
}

/// The receiving end's stream, started by the first streamed message.
#[derive(Default)]
pub(super) struct Unpacker {
    decoder: Option<Decoder<'static>>,
}

impl std::fmt::Debug for Unpacker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unpacker")
            .field("started", &self.decoder.is_some())
            .finish()
    }
}

impl Unpacker {
    /// The message's own bytes from what was sent with mark `mark`; never more than a message
    /// may hold, whatever the peer claims.
    pub(super) fn unpack(&mut self, mark: u8, bytes: Vec<u8>) -> Result<Vec<u8>, SyncError> {
        let bad = |e: &dyn std::fmt::Display| {
            SyncError::Protocol(format!("a compressed message that does not unpack: {e}"))
        };
        if mark & COMPRESSED != 0 {
            return zstd::bulk::decompress(&bytes, MAX_MESSAGE).map_err(|e| bad(&e));
        }
        if mark & STREAMED == 0 {
            return Ok(bytes);
        }
        let decoder = match &mut self.decoder {
            Some(decoder) => decoder,
            None => {
                let mut decoder = Decoder::new().map_err(|e| bad(&e))?;
                decoder
                    .set_parameter(DParameter::WindowLogMax(WINDOW_LOG))
                    .map_err(|e| bad(&e))?;
                self.decoder.insert(decoder)
            }
        };
        let mut out: Vec<u8> = Vec::with_capacity((bytes.len() * 3 + 64).min(MAX_MESSAGE));
        let mut input = InBuffer::around(&bytes);
        loop {
            // Room for the output, but never for more than a message may hold.
            let room = (out.capacity() - out.len()).max(64 << 10);
            out.reserve(room.min(MAX_MESSAGE + 1 - out.len()));
            let len = out.len();
            let mut output = OutBuffer::around_pos(&mut out, len);
            decoder.run(&mut input, &mut output).map_err(|e| bad(&e))?;
            let full = output.pos() == output.capacity();
            if out.len() > MAX_MESSAGE {
                return Err(bad(&format!("it unpacks past {MAX_MESSAGE} bytes")));
            }
            // All input taken and room left over: everything this message holds is out.
            if input.pos() == bytes.len() && !full {
                return Ok(out);
            }
        }
    }
}
