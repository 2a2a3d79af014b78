#!/usr/bin/env bash
# Time from a fault (the primary's web server killed) to the client seeing the new answer from
# both name servers, in the namespace lab of tests/sites_e2e.rs (dc1, dc2, a witness, a client;
# real failoverd binaries, dig). Prints min, median and max over repeats for the default probe
# profile (interval 2s, timeout 1s, fall 3) and a fast one (500ms, 300ms, 3).
# A benchmark, not a test: it asserts nothing about speed. Needs root, iproute2, nftables, dig.
#   benches/failover-time.sh            # 5 repeats per profile
#   REPEATS=11 benches/failover-time.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export FAILOVER_BENCH_REPEATS="${REPEATS:-5}"
cargo test --release --test sites_e2e -- --ignored --exact measure_failover_time --nocapture 2>&1 \
  | grep '^profile'
