#!/usr/bin/env bash
# failoverd's AF_XDP listener beside its socket path and gdnsd, on one veth pair between two
# network namespaces made here (server and client, one queue each way), dnsperf in the client's.
# For each setting of client sockets (dnsperf -c), ROUNDS rounds of the three servers (order
# rotated every round), each SECONDS long. Per answered query it reports the server process's CPU
# (all its threads, /proc/PID/task/*/schedstat) and the whole machine's busy CPU (/proc/stat: all
# but idle and iowait, both cores, dnsperf included). On veth the receive side of every packet
# (the XDP program, the copy into the AF_XDP frame, the kernel's UDP receive) runs in softirq on
# the sending CPU and is charged to the sender: the query's to dnsperf, the answer's to the
# server. The machine figure counts it wherever it lands; quote both.
#
#   benches/dns-xdp.sh [SECONDS] [ROUNDS]            (defaults 6, 5)
#   CLIENTS="4 64" benches/dns-xdp.sh
#
# Only the server measured runs its workers: gdnsd and the socket-path failoverd stay up (idle,
# blocked in receive), the AF_XDP failoverd is started for its turn and stopped after it, so its
# XDP program is not on the link while the others are measured. Addresses 10.90.0.1 (server) and
# 10.90.0.2 (client); ports: gdnsd 5314, failoverd sockets 5315, failoverd AF_XDP 53.
# FAILOVERD=path picks a build (it needs the feature xdp, in the default build).
# Run as root. Needs: apt-get install -y gdnsd dnsperf bind9-dnsutils iproute2 procps bc
set -euo pipefail
PKGS="gdnsd dnsperf bind9-dnsutils iproute2 procps bc"
for tool in gdnsd dnsperf dig ip bc; do
  command -v "$tool" >/dev/null || { echo "error: $tool missing; run: apt-get install -y $PKGS" >&2; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "error: run as root (network namespaces, XDP)" >&2; exit 1; }
cd "$(dirname "$0")/.."
SECS=${1:-6}
ROUNDS=${2:-5}
BIN=${FAILOVERD:-target/release/failoverd}
[ -n "${FAILOVERD:-}" ] || cargo build --release --locked --bin failoverd >/dev/null
BIN=$(realpath "$BIN")
QUERIES=$(realpath benches/anchors/dns/queries.txt)
W=$(mktemp -d)
NS=fob$$
SRV=$NS-srv CLI=$NS-cli
SERVER=10.90.0.1
GD= FS= FX=
stop_pid() { if [ -n "$1" ]; then kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; fi; }
cleanup() { stop_pid "$GD"; stop_pid "$FS"; stop_pid "$FX"; ip netns del "$SRV" 2>/dev/null || true; ip netns del "$CLI" 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT

ip netns add "$SRV"; ip netns add "$CLI"
ip -n "$SRV" link add xb0 numtxqueues 1 numrxqueues 1 type veth peer name xb0 numtxqueues 1 numrxqueues 1 netns "$CLI"
ip -n "$SRV" addr add $SERVER/24 dev xb0; ip -n "$CLI" addr add 10.90.0.2/24 dev xb0
for ns in "$SRV" "$CLI"; do ip -n "$ns" link set xb0 up; ip -n "$ns" link set lo up; done

wait_answer() { # PORT
  for _ in $(seq 50); do ip netns exec "$CLI" dig +short +tries=1 +time=1 @$SERVER -p "$1" test.ru SOA >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "error: nothing answers on $SERVER port $1" >&2; cat "$W"/*.log >&2; exit 1
}
failoverd_config() { # NAME PORT XDP(0/1)
  mkdir -p "$W/$1"; cp benches/anchors/dns/zone.db "$W/$1/db.test.ru"
  cat > "$W/$1/failoverd.toml" <<TOML
[zone]
name = "test.ru"
file = "db.test.ru"
listen = ["$SERVER:$2"]
workers = 1
state_dir = "state"
records = [{ name = "@", ttl = 10 }, { name = "www", ttl = 10 }]
[zone.rate_limit]
enabled = false
$([ "$3" = 1 ] && printf '[zone.xdp]\ninterface = "xb0"\n')
[probe]
interval = "10s"
[[node]]
name = "bench"
address = "$SERVER"
publish = ["10.1.0.1"]
[[check]]
name = "dns-port"
kind = "tcp"
port = $2
critical = true
[policy]
kind = "active-passive"
TOML
}
mkdir -p "$W/gd/zones"; cp benches/anchors/dns/zone.db "$W/gd/zones/test.ru"
printf 'options => {\n listen => [ %s:5314 ]\n udp_threads => 1\n tcp_threads => 1\n run_dir => %s\n state_dir => %s\n}\n' "$SERVER" "$W/gd/run" "$W/gd/state" > "$W/gd/config"
ip netns exec "$SRV" gdnsd -c "$W/gd" -f start >"$W/gd.log" 2>&1 & GD=$!
failoverd_config fs 5315 0; failoverd_config fx 53 1
ip netns exec "$SRV" env RUST_LOG=warn "$BIN" run --config "$W/fs/failoverd.toml" 2>"$W/fs.log" & FS=$!
wait_answer 5314; wait_answer 5315

# CPU nanoseconds of a process: all its threads.
cpu_ns() { local t=0 a f; for f in /proc/$1/task/*/schedstat; do read -r a _ < "$f" 2>/dev/null && t=$((t + a)); done; echo $t; }
# Busy nanoseconds of the whole machine so far (every core): /proc/stat's cpu line less idle, iowait.
HZ=$(getconf CLK_TCK)
busy_ns() { awk -v hz="$HZ" '/^cpu / {printf "%d\n", ($2+$3+$4+$7+$8+$9) * (1000000000 / hz)}' /proc/stat; }
measure() { # NAME PORT PID CLIENTS -> "NAME qps=.. server_ns=.. machine_ns=.."
  local c0 b0 c1 b1 out done_q qps
  c0=$(cpu_ns "$3"); b0=$(busy_ns)
  out=$(ip netns exec "$CLI" dnsperf -s $SERVER -p "$2" -d "$QUERIES" -l "$SECS" -c "$4" -q 200 2>&1)
  c1=$(cpu_ns "$3"); b1=$(busy_ns)
  done_q=$(echo "$out" | awk '/Queries completed/ {print $3}'); done_q=${done_q:-0}
  qps=$(echo "$out" | awk '/Queries per second/ {printf "%d", $4}')
  [ "$done_q" -gt 0 ] || { echo "error: $1 answered nothing: $out" >&2; exit 1; }
  echo "$1 qps=$qps server_ns=$(( (c1 - c0) / done_q )) machine_ns=$(( (b1 - b0) / done_q ))"
}
run_xdp() { # CLIENTS (in the subshell of $(one ...): its own exit stops the daemon, whatever happens)
  trap 'stop_pid "$FX"' EXIT
  ip netns exec "$SRV" env RUST_LOG=warn "$BIN" run --config "$W/fx/failoverd.toml" >/dev/null 2>"$W/fx.log" & FX=$!
  wait_answer 53
  for _ in $(seq 50); do ip -n "$SRV" link show xb0 | grep prog/xdp >/dev/null && break; sleep 0.1; done
  ip -n "$SRV" link show xb0 | grep prog/xdp >/dev/null || { echo "error: no XDP program on xb0" >&2; cat "$W/fx.log" >&2; exit 1; }
  measure failoverd-xdp 53 "$FX" "$1"
  stop_pid "$FX"; FX=
}
one() { # WHICH CLIENTS
  case $1 in
    gdnsd) measure gdnsd 5314 "$GD" "$2" ;;
    sockets) measure failoverd-sockets 5315 "$FS" "$2" ;;
    xdp) run_xdp "$2" ;;
  esac
}
field() { echo "$1" | sed -n "s/.*$2=\([0-9]*\).*/\1/p"; }
median() { printf '%s\n' "$@" | sort -g | sed -n "$(( ($# + 1) / 2 ))p"; }
ratio() { echo "scale=3; $1 / $2" | bc; }
echo "| clients | server CPU/query vs gdnsd: sockets, AF_XDP (medians) | machine CPU/query vs gdnsd: sockets, AF_XDP (medians) | qps vs gdnsd: sockets, AF_XDP | ns/query server (gdnsd, sockets, AF_XDP) | ns/query machine (gdnsd, sockets, AF_XDP) |"
echo "| ---: | --- | --- | --- | --- | --- |"
ORDERS=("gdnsd sockets xdp" "xdp gdnsd sockets" "sockets xdp gdnsd")
for clients in ${CLIENTS:-4 64}; do
  ss=() sx=() ms=() mx=() qs=() qx=() gs=() fs=() xs=() gm=() fm=() xm=()
  for round in $(seq "$ROUNDS"); do
    declare -A got=()
    for which in ${ORDERS[$(( (round - 1) % 3 ))]}; do
      got[$which]=$(one "$which" "$clients"); echo "  $clients ${got[$which]}" >&2
    done
    g=${got[gdnsd]} s=${got[sockets]} x=${got[xdp]}
    ss+=("$(ratio "$(field "$s" server_ns)" "$(field "$g" server_ns)")"); sx+=("$(ratio "$(field "$x" server_ns)" "$(field "$g" server_ns)")")
    ms+=("$(ratio "$(field "$s" machine_ns)" "$(field "$g" machine_ns)")"); mx+=("$(ratio "$(field "$x" machine_ns)" "$(field "$g" machine_ns)")")
    qs+=("$(ratio "$(field "$s" qps)" "$(field "$g" qps)")"); qx+=("$(ratio "$(field "$x" qps)" "$(field "$g" qps)")")
    gs+=("$(field "$g" server_ns)"); fs+=("$(field "$s" server_ns)"); xs+=("$(field "$x" server_ns)")
    gm+=("$(field "$g" machine_ns)"); fm+=("$(field "$s" machine_ns)"); xm+=("$(field "$x" machine_ns)")
    unset got
  done
  echo "| $clients | $(median "${ss[@]}"), **$(median "${sx[@]}")** (AF_XDP rounds: ${sx[*]}) | $(median "${ms[@]}"), **$(median "${mx[@]}")** (AF_XDP rounds: ${mx[*]}) | $(median "${qs[@]}"), $(median "${qx[@]}") | $(median "${gs[@]}"), $(median "${fs[@]}"), $(median "${xs[@]}") | $(median "${gm[@]}"), $(median "${fm[@]}"), $(median "${xm[@]}") |"
done
