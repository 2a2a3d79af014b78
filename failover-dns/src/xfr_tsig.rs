//! TSIG on zone transfers (RFC 8945): checking a signed request, signing every message of the answer.
//!
//! A request signed by a key the [`TransferAcl`](crate::TransferAcl) knows is verified (MAC and
//! time); a request signed by an unknown key or with a wrong MAC is answered NOTAUTH with the
//! TSIG error and an unsigned TSIG record, a request outside the time window NOTAUTH/BADTIME,
//! signed (section 5.2). Every message of the answer to a verified request is signed: the first
//! over the request's MAC, the message and the TSIG variables, each later one over the previous
//! MAC, the message and the timers (section 5.3.1; signing every message, not every 100th, is
//! what BIND does too and what every verifier accepts).

use std::time::{SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::tsig::{make_tsig_record, signed_bitmessage_to_buf, TsigError, TSIG};
use hickory_proto::rr::{Name, TSigner};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use hickory_proto::ProtoError;

use crate::tsig::TsigKey;

/// What the TSIG record of a transfer request says.
pub(crate) enum RequestSignature {
    /// No TSIG record.
    Unsigned,
    /// Signed by `key`, MAC and time verified: the answer must be signed with it.
    Verified(Verified),
    /// Signed, but not acceptably: the answer to send as is, and why (for the log).
    Rejected { response: Vec<u8>, reason: String },
}

/// A verified request signature: the key and the request's MAC, which the answer's first MAC covers.
pub(crate) struct Verified {
    pub(crate) key: TsigKey,
    signer: TSigner,
    request_mac: Vec<u8>,
}

impl Verified {
    /// The most bytes the TSIG record of a signed answer takes: the key and algorithm names
    /// (uncompressed, with their root label), the fixed fields and a SHA-512 MAC at most.
    pub(crate) fn record_room(&self) -> usize {
        let names = self.signer.signer_name().len() + self.signer.algorithm().to_name().len() + 4;
        names + 10 + 16 + 64
    }
}

/// The current time in seconds since the epoch, as TSIG counts it.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// Checks the TSIG record of `request` (`query` in wire form) against `keys` at time `now`.
pub(crate) fn check_request(
    query: &[u8],
    request: &Message,
    keys: &[TsigKey],
    now: u64,
) -> RequestSignature {
    let Some(record) = request.signature() else {
        return RequestSignature::Unsigned;
    };
    let key_name = record
        .name
        .to_ascii()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let tsig = &record.data;
    let rejected = |error: TsigError, reason: String| RequestSignature::Rejected {
        response: unsigned_error(request, &record.name, tsig, error, now),
        reason,
    };
    let known = keys
        .iter()
        .find(|key| key.name() == key_name && key.algorithm().to_hickory() == tsig.algorithm);
    let Some(key) = known else {
        return rejected(
            TsigError::BadKey,
            format!("signed with unknown key {key_name} ({})", tsig.algorithm),
        );
    };
    let signer = match key.signer() {
        Ok(signer) => signer,
        Err(error) => return rejected(TsigError::BadKey, error.to_string()),
    };
    let verified = signed_bitmessage_to_buf(query, None, true)
        .map_err(|error| error.to_string())
        .and_then(|(tbv, _)| {
            signer
                .verify(&tbv, &tsig.mac)
                .map_err(|error| error.to_string())
        });
    if let Err(error) = verified {
        return rejected(
            TsigError::BadSig,
            format!("wrong MAC for key {key_name}: {error}"),
        );
    }
    let verified = Verified {
        key: key.clone(),
        signer,
        request_mac: tsig.mac.clone(),
    };
    if now.abs_diff(tsig.time) > u64::from(tsig.fudge) {
        let reason = format!(
            "signed at {} but the time here is {now} (fudge {} s): check both clocks",
            tsig.time, tsig.fudge
        );
        let response = bad_time(request, &verified, now).unwrap_or_default();
        return RequestSignature::Rejected { response, reason };
    }
    RequestSignature::Verified(verified)
}

/// NOTAUTH with an unsigned TSIG record carrying `error` (BADKEY, BADSIG: section 5.2).
fn unsigned_error(
    request: &Message,
    key_name: &Name,
    theirs: &TSIG,
    error: TsigError,
    now: u64,
) -> Vec<u8> {
    let mut response = Message::response(request.id, request.op_code);
    response.metadata.response_code = ResponseCode::NotAuth;
    response.add_queries(request.queries.iter().cloned());
    let mut bytes = response.to_vec().unwrap_or_default();
    let tsig = TSIG::new(
        theirs.algorithm.clone(),
        now,
        theirs.fudge,
        Vec::new(),
        request.id,
        Some(error),
        Vec::new(),
    );
    if append_tsig(&mut bytes, key_name, tsig).is_err() {
        bytes.clear();
    }
    bytes
}

/// NOTAUTH/BADTIME, signed, with the server's time in the other data (section 5.2.3).
fn bad_time(request: &Message, verified: &Verified, now: u64) -> Result<Vec<u8>, ProtoError> {
    let mut response = Message::response(request.id, request.op_code);
    response.metadata.response_code = ResponseCode::NotAuth;
    response.add_queries(request.queries.iter().cloned());
    let mut bytes = response.to_vec()?;
    let time = now.to_be_bytes()[2..].to_vec();
    sign_one(
        &mut bytes,
        &verified.signer,
        &verified.request_mac,
        true,
        now,
        Some(TsigError::BadTime),
        time,
    )?;
    Ok(bytes)
}

/// Signs every message of a transfer answer to a verified request, in order, at time `now`.
pub(crate) fn sign_stream(
    messages: &mut [Vec<u8>],
    verified: &Verified,
    now: u64,
) -> Result<(), ProtoError> {
    let mut previous = verified.request_mac.clone();
    for (index, message) in messages.iter_mut().enumerate() {
        previous = sign_one(
            message,
            &verified.signer,
            &previous,
            index == 0,
            now,
            None,
            Vec::new(),
        )?;
    }
    Ok(())
}

/// Appends a TSIG record to the encoded `message`, its MAC over `previous` (the request's MAC
/// or the previous message's), the message and the TSIG variables (`first`) or the timers only.
/// Returns the MAC.
fn sign_one(
    message: &mut Vec<u8>,
    signer: &TSigner,
    previous: &[u8],
    first: bool,
    now: u64,
    error: Option<TsigError>,
    other: Vec<u8>,
) -> Result<Vec<u8>, ProtoError> {
    let id = u16::from_be_bytes([message[0], message[1]]);
    let tsig = TSIG::new(
        signer.algorithm().clone(),
        now,
        signer.fudge(),
        Vec::new(),
        id,
        error,
        other,
    );
    let mut tbs = Vec::with_capacity(previous.len() + message.len() + 128);
    let mut encoder = BinEncoder::new(&mut tbs);
    encoder.emit_u16(u16::try_from(previous.len()).unwrap_or(u16::MAX))?;
    encoder.emit_vec(previous)?;
    encoder.emit_vec(message)?;
    if first {
        tsig.emit_tsig_for_mac(&mut encoder, signer.signer_name())?;
    } else {
        // 48-bit time signed, then the fudge.
        encoder.emit_vec(&now.to_be_bytes()[2..])?;
        encoder.emit_u16(signer.fudge())?;
    }
    let mac = signer
        .sign(&tbs)
        .map_err(|error| ProtoError::from(error.to_string()))?;
    append_tsig(message, signer.signer_name(), tsig.set_mac(mac.clone()))?;
    Ok(mac)
}

/// Appends the TSIG record (names uncompressed) and counts it in ARCOUNT.
fn append_tsig(message: &mut Vec<u8>, key_name: &Name, tsig: TSIG) -> Result<(), ProtoError> {
    if message.len() < 12 {
        return Err(ProtoError::from("a message without a header"));
    }
    let mut record = Vec::new();
    make_tsig_record(key_name.clone(), tsig).emit(&mut BinEncoder::new(&mut record))?;
    let additional = u16::from_be_bytes([message[10], message[11]])
        .checked_add(1)
        .ok_or_else(|| ProtoError::from("too many additional records"))?;
    message[10..12].copy_from_slice(&additional.to_be_bytes());
    message.extend_from_slice(&record);
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use hickory_proto::rr::RecordType;

    const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ==";

    fn key(name: &str) -> TsigKey {
        TsigKey::new(name, "hmac-sha256", SECRET).unwrap()
    }

    /// An AXFR request signed with `key` at `time`; its bytes and the client's verifier.
    fn signed_request(key: &TsigKey, time: u64) -> Vec<u8> {
        let mut message = Message::query();
        message.metadata.id = 0x7777;
        message.add_query(Query::query(
            Name::from_ascii("test.ru.").unwrap(),
            RecordType::AXFR,
        ));
        let (signature, _) = key.signer().unwrap().sign_message(&message, time).unwrap();
        message.set_signature(signature);
        message.to_vec().unwrap()
    }

    fn check(query: &[u8], keys: &[TsigKey], now: u64) -> RequestSignature {
        check_request(query, &Message::from_vec(query).unwrap(), keys, now)
    }

    #[test]
    fn a_stream_signed_here_verifies_with_the_client_key() {
        let now = 1_800_000_000;
        let query = signed_request(&key("xfr"), now);
        let verified = match check(&query, &[key("xfr")], now + 10) {
            RequestSignature::Verified(verified) => verified,
            RequestSignature::Rejected { reason, .. } => panic!("a good signature: {reason}"),
            RequestSignature::Unsigned => panic!("signed"),
        };
        let mut messages = vec![
            Message::response(0x7777, hickory_proto::op::OpCode::Query)
                .to_vec()
                .unwrap();
            3
        ];
        sign_stream(&mut messages, &verified, now + 10).unwrap();
        let signer = key("xfr").signer().unwrap();
        let request_mac = Message::from_vec(&query)
            .unwrap()
            .signature()
            .unwrap()
            .data
            .mac
            .clone();
        let mut previous = request_mac;
        for (index, message) in messages.iter().enumerate() {
            let (mac, time, _) = signer
                .verify_message_byte(message, Some(&previous), index == 0)
                .unwrap_or_else(|error| panic!("message {index}: {error}"));
            assert_eq!(time, now + 10);
            previous = mac;
        }
    }

    #[test]
    fn unknown_keys_wrong_macs_and_stale_times_are_rejected() {
        let now = 1_800_000_000;
        let query = signed_request(&key("xfr"), now);
        assert!(matches!(
            check(&query, &[key("other")], now),
            RequestSignature::Rejected { .. }
        ));
        let wrong = TsigKey::new("xfr", "hmac-sha256", "b3RoZXI=").unwrap();
        let RequestSignature::Rejected { response, reason } = check(&query, &[wrong], now) else {
            panic!("a wrong secret must be rejected");
        };
        assert!(reason.contains("wrong MAC"), "{reason}");
        let response = Message::from_vec(&response).unwrap();
        assert_eq!(response.response_code, ResponseCode::NotAuth);
        assert_eq!(
            response.signature().unwrap().data.error,
            Some(TsigError::BadSig)
        );
        let RequestSignature::Rejected { response, .. } = check(&query, &[key("xfr")], now + 301)
        else {
            panic!("a stale request must be rejected");
        };
        let response = Message::from_vec(&response).unwrap();
        assert_eq!(
            response.signature().unwrap().data.error,
            Some(TsigError::BadTime)
        );
        let mut unsigned = Message::from_vec(&query).unwrap();
        unsigned.take_signature();
        assert!(matches!(
            check(&unsigned.to_vec().unwrap(), &[key("xfr")], now),
            RequestSignature::Unsigned
        ));
    }
}
