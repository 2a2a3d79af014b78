//! A zone file, parsed and validated as `failoverd` loads `[zone] file`; a zone that parses is
//! served (its precomputed answers built) and asked the common questions, on the fast and the
//! full path, which must agree; an AXFR of it must come out whole.

#![no_main]

use failover_dns::fuzzing::Worker;
use failover_dns::{ManagedName, ServedZone, TransferAcl, Transport, Zone};
use failover_fuzz::{managed_names, scratch_base, ADMITTED_PEER};
use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, RecordType};
use libfuzzer_sys::fuzz_target;

const TYPES: [RecordType; 9] = [
    RecordType::SOA,
    RecordType::NS,
    RecordType::A,
    RecordType::AAAA,
    RecordType::MX,
    RecordType::TXT,
    RecordType::CNAME,
    RecordType::ANY,
    RecordType::SRV,
];

/// A query for `name`/`qtype`, with or without EDNS.
fn query(name: &Name, qtype: RecordType, edns: bool) -> Option<Vec<u8>> {
    let mut message = Message::query();
    message.metadata.id = 0x4242;
    message.add_query(Query::query(name.clone(), qtype));
    if edns {
        message.set_edns(Edns::new());
    }
    message.to_vec().ok()
}

fn assert_paths_agree(zone: &ServedZone, query: &[u8], transport: Transport) {
    let (mut fast, mut slow) = (Vec::new(), Vec::new());
    let answered = zone.answer(query, transport, &mut fast);
    assert_eq!(answered, zone.answer_slow(query, transport, &mut slow));
    if answered {
        match (Message::from_vec(&fast), Message::from_vec(&slow)) {
            (Ok(fast), Ok(slow)) => assert_eq!(fast, slow, "fast and full path disagree"),
            (fast, slow) => panic!("undecodable answer: fast {fast:?} slow {slow:?}"),
        }
    }
}

fn serve(zone: Zone) {
    // A zone whose `www` cannot take addresses (a CNAME, below a delegation) is refused with
    // those managed names, as the daemon refuses it; served without any then.
    let state = tempfile::tempdir_in(scratch_base()).expect("a temp dir");
    let served = match ServedZone::new(zone.clone(), &managed_names(), state.path()) {
        Ok(served) => served,
        Err(_) => match ServedZone::new(zone, &[] as &[ManagedName], state.path()) {
            Ok(served) => served,
            Err(error) => {
                let _ = error.to_string();
                return;
            }
        },
    };
    let Ok(origin) = Name::from_ascii(served.origin()) else {
        panic!(
            "the origin of a served zone is a name: {:?}",
            served.origin()
        );
    };
    let names = ["@", "www", "nx", "*"].map(|label| match label {
        "@" => Ok(origin.clone()),
        label => Name::from_ascii(label).and_then(|l| l.append_domain(&origin)),
    });
    for name in names.iter().flatten() {
        for qtype in TYPES {
            // Plain over UDP (the 512-byte limit), with EDNS over TCP (no limit).
            for (edns, transport) in [(false, Transport::Udp), (true, Transport::Tcp)] {
                if let Some(query) = query(name, qtype, edns) {
                    assert_paths_agree(&served, &query, transport);
                }
            }
        }
    }
    let acl = TransferAcl::parse(["192.0.2.1"]).expect("the ACL is valid");
    let worker = Worker::new(served, acl, None);
    if let Some(axfr) = query(&origin, RecordType::AXFR, false) {
        for message in worker.tcp(&axfr, ADMITTED_PEER) {
            assert!(!message.is_empty(), "never an empty TCP message");
            assert!(
                Message::from_vec(&message).is_ok(),
                "a transfer message decodes"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // `$INCLUDE` reads another file: the operator's own, never outside input, and a fuzzer that
    // names /dev/zero or a FIFO would only measure the file system.
    if text.to_ascii_lowercase().contains("$include") {
        return;
    }
    match Zone::parse("fuzz.zone", text) {
        Ok(zone) => serve(zone),
        Err(error) => {
            let _ = error.to_string();
        }
    }
});
