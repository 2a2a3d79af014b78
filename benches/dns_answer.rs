//! Answering one DNS query in-process (bytes in, bytes out): the precomputed fast path against
//! the full hickory-proto slow path, on the benchmark zone with `@` and `www` published, and the
//! fast path with what a UDP worker adds per query (counters, response rate limiting).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use failover_core::{ManagedAnswer, Publication};
use failover_dns::{
    AnswerCounters, ManagedName, QueryOutcome, RateLimitConfig, RateLimiter, RateVerdict,
    ServedZone, Transport, Zone,
};
use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, RecordType};

/// The zone of benches/anchors/dns/zone.db (the comparison scripts' zone).
const ZONE: &str = "$ORIGIN test.ru.\n$TTL 10\n@ IN SOA ns.master.my.com. admin.my.com. ( 2 10 10 10 10 )\n  IN NS ns.master.my.com.\n  IN NS ns.slave.my.com.\n@ IN A 10.1.0.1\nwww IN A 10.1.0.1\n";

fn query(name: &str, qtype: RecordType, edns: bool) -> Vec<u8> {
    let mut message = Message::query();
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(
        Name::from_ascii(name).expect("valid name"),
        qtype,
    ));
    if edns {
        message.set_edns(Edns::new());
    }
    message.to_vec().expect("encodable query")
}

fn answer(c: &mut Criterion) {
    let state = tempfile::tempdir().expect("temp dir");
    let zone = Zone::parse("bench", ZONE).expect("bench zone");
    let managed = [ManagedName::new("@", 10), ManagedName::new("www", 10)];
    let served = ServedZone::new(zone, &managed, state.path()).expect("served zone");
    let addresses = ["10.1.0.1", "10.2.0.1"]
        .map(|a| a.parse().expect("address"))
        .to_vec();
    let publication = Publication {
        nodes: vec![],
        answers: ["@", "www"]
            .map(|name| ManagedAnswer {
                name: name.to_owned(),
                ttl: 10,
                addresses: addresses.clone(),
            })
            .to_vec(),
    };
    served.publish_blocking(&publication).expect("publish");

    let www = query("www.test.ru.", RecordType::A, false);
    let www_edns = query("www.test.ru.", RecordType::A, true);
    let nx = query("nx.test.ru.", RecordType::A, false);
    let mut out = Vec::with_capacity(4096);

    let mut group = c.benchmark_group("dns_answer");
    group.bench_function("fast/www A", |b| {
        b.iter(|| served.answer(black_box(&www), Transport::Udp, &mut out))
    });
    group.bench_function("fast/www A edns", |b| {
        b.iter(|| served.answer(black_box(&www_edns), Transport::Udp, &mut out))
    });
    group.bench_function("fast/nxdomain", |b| {
        b.iter(|| served.answer(black_box(&nx), Transport::Udp, &mut out))
    });
    // What a UDP worker adds per query: counting the outcome in its own counters.
    let counters = AnswerCounters::new();
    group.bench_function("fast/www A counted", |b| {
        b.iter(|| {
            let answered = served.answer(black_box(&www), Transport::Udp, &mut out);
            counters.record(if answered {
                QueryOutcome::Answered(&out)
            } else {
                QueryOutcome::Dropped
            });
            answered
        })
    });
    // And with response rate limiting: the bucket's hash and compare-and-swap (a limit never
    // reached, so every answer is sent, as for a client within its rate; the clock is read once
    // per batch of queries in a worker, so once here).
    let limiter = RateLimiter::new(RateLimitConfig::default().with_rates(u32::MAX, u32::MAX));
    let now = limiter.now();
    let peer = "192.0.2.1".parse().expect("address");
    group.bench_function("fast/www A counted rrl", |b| {
        b.iter(|| {
            let mut answered = served.answer(black_box(&www), Transport::Udp, &mut out);
            let outcome = if !answered {
                QueryOutcome::Dropped
            } else if limiter.check(black_box(peer), &www, &out, now) == RateVerdict::Send {
                QueryOutcome::Answered(&out)
            } else {
                answered = false;
                QueryOutcome::RateLimited
            };
            counters.record(outcome);
            answered
        })
    });
    group.bench_function("slow/www A", |b| {
        b.iter(|| served.answer_slow(black_box(&www), Transport::Udp, &mut out))
    });
    group.finish();
}

criterion_group!(benches, answer);
criterion_main!(benches);
