#!/usr/bin/env bash
# Time from a fault (the primary's web server killed) to the client seeing the new answer from
# both name servers, in the namespace lab of tests/sites_e2e.rs (dc1, dc2, a witness, a client;
# real failoverd binaries, dig). Prints min, median and max over repeats for the default probe
# profile (interval 2s, timeout 1s, fall 3) and a fast one (500ms, 300ms, 3).
# A benchmark, not a test: it asserts nothing about speed. Builds the test in release mode.
#   benches/failover-time.sh            # 5 repeats per profile
#   REPEATS=7 benches/failover-time.sh  # the figures of docs/benchmarks.md
# Needs root and: apt-get install -y iproute2 nftables bind9-dnsutils python3
set -euo pipefail
for tool in ip nft dig python3; do
  command -v "$tool" >/dev/null || { echo "error: $tool missing; run: apt-get install -y iproute2 nftables bind9-dnsutils python3" >&2; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "error: the namespace lab needs root (ip netns, nft)" >&2; exit 1; }
cd "$(dirname "$0")/.."
export FAILOVER_BENCH_REPEATS="${REPEATS:-5}"
cargo test --release --test sites_e2e -- --ignored --exact measure_failover_time --nocapture 2>&1 \
  | grep '^profile'
