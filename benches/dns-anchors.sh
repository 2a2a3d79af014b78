#!/usr/bin/env bash
# failoverd's DNS answers beside BIND 9, NSD, Knot and gdnsd in one run: starts a release
# `failoverd run` (one UDP worker) on 127.0.0.1:5305 for the bench zone (anchors/dns/zone.db,
# the same answers as the others), then anchors/dns/run-anchors.sh measures the four anchors and
# failoverd with dnsperf: queries per second and server CPU nanoseconds per answered query.
#
#   benches/dns-anchors.sh [SECONDS]        (default 8 per server; FAILOVERD=path to pick a build)
#   CLIENTS=64 benches/dns-anchors.sh 8     (dnsperf client sockets, default 4)
#
# Run as root. Needs: apt-get install -y bind9 nsd knot gdnsd dnsperf bind9-dnsutils procps
set -euo pipefail
PKGS="bind9 nsd knot gdnsd dnsperf bind9-dnsutils procps"
for tool in named nsd knotd gdnsd dnsperf dig pgrep; do
  command -v "$tool" >/dev/null || { echo "error: $tool missing; run: apt-get install -y $PKGS" >&2; exit 1; }
done
cd "$(dirname "$0")/.."
SECS=${1:-8}
BIN=${FAILOVERD:-target/release/failoverd}
[ -n "${FAILOVERD:-}" ] || cargo build --release --locked --bin failoverd
W=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }; rm -rf "$W"; }
trap cleanup EXIT
cp benches/anchors/dns/zone.db "$W/db.test.ru"
# One node, up while failoverd's own TCP listener is: the published answer is the zone's 10.1.0.1.
cat > "$W/failoverd.toml" <<TOML
[zone]
name = "test.ru"
file = "db.test.ru"
listen = ["127.0.0.1:5305"]
workers = 1
state_dir = "state"
records = [{ name = "@", ttl = 10 }, { name = "www", ttl = 10 }]
# dnsperf asks from one loopback address far above any per-client limit: measure answering, not
# the response rate limit (which would drop nearly everything).
[zone.rate_limit]
enabled = false
[probe]
interval = "10s"
[[node]]
name = "bench"
address = "127.0.0.1"
publish = ["10.1.0.1"]
[[check]]
name = "dns-port"
kind = "tcp"
port = 5305
critical = true
[policy]
kind = "active-passive"
TOML
RUST_LOG=${RUST_LOG:-warn} "$BIN" run --config "$W/failoverd.toml" 2>"$W/failoverd.log" &
PID=$!
for _ in $(seq 50); do
  dig +short +tries=1 +time=1 @127.0.0.1 -p 5305 test.ru SOA >/dev/null 2>&1 && break
  sleep 0.2
done
benches/anchors/dns/run-anchors.sh "$SECS" failoverd 5305 "$PID"
