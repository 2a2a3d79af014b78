#!/usr/bin/env bash
# failoverd's DNS answers beside gdnsd (the fastest anchor) in alternating rounds: for each
# setting of client sockets (dnsperf -c, few and many) and UDP workers (1 and 2), ROUNDS rounds of
# gdnsd then failoverd (order swapped every other round), each SECONDS long; prints each round's
# CPU-per-query ratio failoverd/gdnsd and qps ratio, and their medians (the figure to quote:
# single passes on a shared machine vary by 1.5x).
#
#   benches/dns-vs-gdnsd.sh [SECONDS] [ROUNDS]         (defaults 6, 5)
#   CLIENTS="4 64" WORKERS="1 2" benches/dns-vs-gdnsd.sh
#
# Ports: gdnsd 127.0.0.1:5314, failoverd 127.0.0.1:5315. FAILOVERD=path picks a build.
# Run as root. Needs: apt-get install -y gdnsd dnsperf bind9-dnsutils procps bc
set -euo pipefail
PKGS="gdnsd dnsperf bind9-dnsutils procps bc"
for tool in gdnsd dnsperf dig pgrep bc; do
  command -v "$tool" >/dev/null || { echo "error: $tool missing; run: apt-get install -y $PKGS" >&2; exit 1; }
done
cd "$(dirname "$0")/.."
SECS=${1:-6}
ROUNDS=${2:-5}
BIN=${FAILOVERD:-target/release/failoverd}
[ -n "${FAILOVERD:-}" ] || cargo build --release --locked --bin failoverd >/dev/null
BIN=$(realpath "$BIN")
MEASURE=benches/anchors/dns/measure.sh
W=$(mktemp -d)
GD= FO=
stop() { for p in $GD $FO; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; GD= FO=; }
trap 'stop; rm -rf "$W"' EXIT
wait_answer() { for _ in $(seq 50); do dig +short +tries=1 +time=1 @127.0.0.1 -p "$1" test.ru SOA >/dev/null 2>&1 && return 0; sleep 0.2; done; echo "error: nothing answers on port $1" >&2; exit 1; }
start() { # WORKERS
  mkdir -p "$W/gd/zones" "$W/fo"; cp benches/anchors/dns/zone.db "$W/gd/zones/test.ru"; cp benches/anchors/dns/zone.db "$W/fo/db.test.ru"
  printf 'options => {\n listen => [ 127.0.0.1:5314 ]\n udp_threads => %s\n tcp_threads => 1\n run_dir => %s\n state_dir => %s\n}\n' "$1" "$W/gd/run" "$W/gd/state" > "$W/gd/config"
  gdnsd -c "$W/gd" -f start >"$W/gd.log" 2>&1 & GD=$!
  cat > "$W/fo/failoverd.toml" <<TOML
[zone]
name = "test.ru"
file = "db.test.ru"
listen = ["127.0.0.1:5315"]
workers = $1
state_dir = "state"
records = [{ name = "@", ttl = 10 }, { name = "www", ttl = 10 }]
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
port = 5315
critical = true
[policy]
kind = "active-passive"
TOML
  RUST_LOG=warn "$BIN" run --config "$W/fo/failoverd.toml" 2>"$W/fo.log" & FO=$!
  wait_answer 5314; wait_answer 5315
}
field() { echo "$1" | sed -n "s/.*$2=\([0-9]*\).*/\1/p"; }
median() { printf '%s\n' "$@" | sort -g | sed -n "$(( ($# + 1) / 2 ))p"; }
echo "| clients | workers | CPU/query failoverd/gdnsd (median; rounds) | qps failoverd/gdnsd (median) | gdnsd ns/q, failoverd ns/q (medians) |"
echo "| ---: | ---: | --- | ---: | --- |"
for workers in ${WORKERS:-1 2}; do
  start "$workers"
  for clients in ${CLIENTS:-4 64}; do
    cpu=() qps=() gns=() fns=()
    for round in $(seq "$ROUNDS"); do
      if [ $((round % 2)) -eq 1 ]; then
        g=$(CLIENTS=$clients $MEASURE gdnsd 5314 "$GD" "$SECS"); f=$(CLIENTS=$clients $MEASURE failoverd 5315 "$FO" "$SECS")
      else
        f=$(CLIENTS=$clients $MEASURE failoverd 5315 "$FO" "$SECS"); g=$(CLIENTS=$clients $MEASURE gdnsd 5314 "$GD" "$SECS")
      fi
      echo "  $g" >&2; echo "  $f" >&2
      gn=$(field "$g" server_cpu_ns_per_query); fn=$(field "$f" server_cpu_ns_per_query)
      cpu+=("$(echo "scale=3; $fn / $gn" | bc)"); qps+=("$(echo "scale=3; $(field "$f" qps) / $(field "$g" qps)" | bc)")
      gns+=("$gn"); fns+=("$fn")
    done
    echo "| $clients | $workers | $(median "${cpu[@]}") (${cpu[*]}) | $(median "${qps[@]}") | $(median "${gns[@]}"), $(median "${fns[@]}") |"
  done
  stop
done
