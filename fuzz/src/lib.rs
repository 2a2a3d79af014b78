//! The fixtures the fuzz targets and the seed generator (`examples/seeds.rs`) share: the small
//! fixed zones, the TSIG key, the transfer ACL and the peers that query, the cluster the
//! observation target feeds, the basis file the mirror target diffs against.
//!
//! Setup may panic (`expect`): a broken fixture is a broken fuzz crate, not a finding.

use std::fs::File;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use failover_core::{
    ActivePassive, AllDown, Arbiter, CheckSpec, ClusterSpec, Failback, ManagedName, NodeSpec,
    OnPartition, Quorum, QuorumSpec,
};
use failover_dns::{ServedZone, TransferAcl, TsigKey, Zone};

/// The zone of the answer path's property tests: wildcards, a delegation with glue, CNAME
/// chains in and out of the zone, a large TXT set (truncation), empty non-terminals.
pub const RICH_ZONE: &str = include_str!("../../failover-dns/tests/data/rich.zone");

/// A plain zone: no wildcard and no delegation, so missing names get the fast NXDOMAIN.
pub const SIMPLE_ZONE: &str = "$ORIGIN test.ru.\n$TTL 10\n@ IN SOA ns.master.my.com. admin.my.com. ( 2 10 10 10 10 )\n  IN NS ns.master.my.com.\n  IN NS ns.slave.my.com.\n@ IN A 10.1.0.1\nwww IN A 10.1.0.1\n";

/// The managed names the daemon publishes in the test zones.
pub fn managed_names() -> [ManagedName; 2] {
    [ManagedName::new("@", 10), ManagedName::new("www", 10)]
}

/// The transfer key's name.
pub const KEY_NAME: &str = "fuzz-key";
/// The transfer key's secret (base64), known to the seeds so that signed seeds verify.
pub const KEY_SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ==";

/// The transfer key (hmac-sha256).
pub fn transfer_key() -> TsigKey {
    TsigKey::new(KEY_NAME, "hmac-sha256", KEY_SECRET).expect("the fixed key is valid")
}

/// The peer the transfer ACL admits by address.
pub const ADMITTED_PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
/// A peer the ACL admits only with a request signed by the transfer key.
pub const KEYED_PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 1, 1, 1));
/// A peer the ACL refuses.
pub const OUTSIDE_PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));

/// The three peers, one of which a query comes from (picked by a byte of its ID).
pub const PEERS: [IpAddr; 3] = [ADMITTED_PEER, KEYED_PEER, OUTSIDE_PEER];

/// Transfers to [`ADMITTED_PEER`] by address, to 10.0.0.0/8 with the transfer key.
pub fn transfer_acl() -> TransferAcl {
    TransferAcl::parse(["192.0.2.1"])
        .and_then(|acl| acl.parse_keyed(["10.0.0.0/8"], transfer_key()))
        .expect("the fixed ACL is valid")
}

/// Where a fuzz target keeps state a served zone needs (its SOA serial): in memory when the
/// machine has `/dev/shm`, so that the serial's fsync costs nothing.
pub fn scratch_base() -> PathBuf {
    let shm = PathBuf::from("/dev/shm");
    if shm.is_dir() {
        shm
    } else {
        std::env::temp_dir()
    }
}

/// `text` served with the managed names, its state in a temp dir removed once the zone is built
/// (a served zone writes there only when it publishes).
pub fn served_zone(source: &str, text: &str) -> ServedZone {
    let zone = Zone::parse(source, text).expect("the fixed zone parses");
    let state = tempfile::tempdir_in(scratch_base()).expect("a temp dir");
    ServedZone::new(zone, &managed_names(), state.path()).expect("the fixed zone is served")
}

/// The observers' cluster: two nodes with an http check, this observer `dc1`, its peers `dc2`
/// and a witness.
pub fn cluster() -> (QuorumSpec, ClusterSpec) {
    let quorum = QuorumSpec {
        local: "dc1".to_owned(),
        peers: vec!["dc2".to_owned(), "witness".to_owned()],
        observer_timeout: Duration::from_secs(10),
        on_partition: OnPartition::FailOver,
    };
    let spec = ClusterSpec::new(
        vec![
            NodeSpec::new("dc1", [IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1))]),
            NodeSpec::new("dc2", [IpAddr::V4(Ipv4Addr::new(10, 2, 0, 1))]),
        ],
        vec![CheckSpec::new("http", true), CheckSpec::new("ssh", false)],
        managed_names().to_vec(),
    )
    .with_all_down(AllDown::KeepLast);
    (quorum, spec)
}

/// A fresh quorum and arbiter for [`cluster`], started at `now`.
pub fn observer(now: failover_core::Moment) -> (Quorum, Arbiter) {
    let (quorum, spec) = cluster();
    let quorum = Quorum::new(quorum, &spec.checks, now);
    let policy = ActivePassive::new(
        vec!["dc1".into(), "dc2".into()],
        Failback::Auto {
            after: Duration::from_secs(30),
        },
    );
    let arbiter = Arbiter::new(spec, Box::new(policy)).expect("the fixed cluster is valid");
    (quorum, arbiter)
}

/// Bytes of the mirror target's basis file.
pub const BASIS_LEN: usize = 6000;

/// The basis file a peer's signatures and deltas are read against: [`BASIS_LEN`] bytes of a
/// pattern, in an unnamed temp file.
pub fn basis_file() -> File {
    let mut file = tempfile::tempfile_in(scratch_base()).expect("a temp file");
    let data: Vec<u8> = (0..BASIS_LEN).map(|i| (i * 7 % 251) as u8).collect();
    file.write_all(&data).expect("the basis is written");
    file
}
