#!/usr/bin/env bash
# What the live mirror sends between data centres, beside rsync -z in the same run: bytes on
# the link for a tree of text (PHP, HTML, CSS, JS) and a tree of JPEGs carried by two
# `failoverd run` on loopback, against `rsync -az` to an rsync daemon on loopback (where -z
# applies); then the link's `[mirror] bwlimit` against the rate it reached, beside rsync
# --bwlimit. Not a test: it prints figures.
#
#   benches/mirror-link.sh [WORKDIR] [TEXT_FILES] [JPEG_FILES]   (defaults /tmp/failover-link, 1500, 150)
#   BWLIMIT=2048 benches/mirror-link.sh                            (KiB/s of the bandwidth part)
#   REPEATS=3 (rounds; the median is printed), FAILOVERD=path picks a build.
#
# Bytes: ours are the TCP payload both ends of the mirror's connection sent (`ss -ti`
# bytes_sent: TLS records, frames and all), rsync's are its --stats "Total bytes sent" +
# "received" (payload of its protocol). Uses 127.0.0.1:15491-15492 (DNS), the mirror on port
# 17491 of 127.0.0.1 and 127.0.0.2, the peer link on 18064, an rsync daemon on 127.0.0.1:18730.
# Needs: apt-get install -y rsync python3 python3-pil iproute2
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in rsync python3 ss; do
  command -v "$tool" >/dev/null || { echo "error: $tool missing; run: apt-get install -y rsync python3 python3-pil iproute2" >&2; exit 1; }
done
# Debian's python3 (where python3-pil lives), not another one first on PATH.
PY=/usr/bin/python3; [ -x "$PY" ] || PY=python3
"$PY" -c 'import PIL' 2>/dev/null || { echo "error: python3-pil missing; run: apt-get install -y python3-pil" >&2; exit 1; }
WORK=${1:-/tmp/failover-link}
TEXT_FILES=${2:-1500}
JPEG_FILES=${3:-150}
REPEATS=${REPEATS:-3}
BWLIMIT=${BWLIMIT:-2048}
BIN=${FAILOVERD:-target/release/failoverd}
[ -n "${FAILOVERD:-}" ] || cargo build --release --locked --bin failoverd >/dev/null
BIN=$(realpath "$BIN")
mkdir -p "$WORK"
for kind in text jpeg; do
  n=$TEXT_FILES; [ $kind = jpeg ] && n=$JPEG_FILES
  if [ "$(cat "$WORK/$kind.done" 2>/dev/null)" != "$n" ]; then
    rm -rf "$WORK/$kind" && "$PY" benches/anchors/sync/mkweb.py $kind "$WORK/$kind" "$n" && echo "$n" > "$WORK/$kind.done"
  fi
done
R=$(mktemp -d)
PIDS=()
stop_all() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; PIDS=(); }
cleanup() { stop_all; [ -f "$R/rsyncd.pid" ] && kill "$(cat "$R/rsyncd.pid")" 2>/dev/null; rm -rf "$R"; }
trap cleanup EXIT

# The rsync daemon.
mkdir -p "$R/rsync"
cat > "$R/rsyncd.conf" <<CONF
pid file = $R/rsyncd.pid
port = 18730
address = 127.0.0.1
use chroot = no
[dst]
path = $R/rsync
read only = no
uid = root
gid = root
CONF
rsync --daemon --config="$R/rsyncd.conf"
for _ in $(seq 50); do [ -f "$R/rsyncd.pid" ] && break; sleep 0.1; done

fingerprint() { "$BIN" keygen --dir "$R/$1" --name "$1" --show | sed -n 's/.*fingerprint = "\(.*\)"/\1/p'; }
for n in master slave; do
  mkdir -p "$R/$n"
  "$BIN" keygen --dir "$R/$n" --name "$n" >/dev/null
  cp examples/db.test.ru "$R/$n/"
done
FP_MASTER=$(fingerprint master); FP_SLAVE=$(fingerprint slave)
config() { # NAME DNS_PORT BWLIMIT
  cat > "$R/$1/failoverd.toml" <<TOML
[zone]
name = "test.ru"
file = "db.test.ru"
listen = ["127.0.0.1:$2"]
state_dir = "state"
records = [{ name = "www", ttl = 10 }]
[[node]]
name = "master"
address = "127.0.0.1"
peer_address = "127.0.0.1:18064"
fingerprint = "$FP_MASTER"
[[node]]
name = "slave"
address = "127.0.0.2"
peer_address = "127.0.0.2:18064"
fingerprint = "$FP_SLAVE"
[[check]]
name = "web"
kind = "tcp"
port = 9
critical = true
[policy]
kind = "active-passive"
[mirror]
root = "$R/$1/root"
port = 17491
$3
TOML
}
link_bytes() { # both ends' bytes_sent on the mirror's connection(s)
  ss -tinH state established '( sport = :17491 or dport = :17491 )' \
    | grep -o 'bytes_sent:[0-9]*' | cut -d: -f2 | awk '{s += $1} END {print s + 0}'
}
# Starts both daemons on empty roots (with $1 as an extra [mirror] line), waits for the link.
start_pair() {
  stop_all
  for n in master slave; do rm -rf "$R/$n/root" "$R/$n/state"; mkdir -p "$R/$n/root" "$R/$n/state"; done
  config master 15491 "$1"; config slave 15492 "$1"
  for n in slave master; do
    RUST_LOG=${RUST_LOG:-warn} "$BIN" run --config "$R/$n/failoverd.toml" --node "$n" 2>>"$R/$n.log" &
    PIDS+=($!)
  done
  echo ready > "$R/master/root/.ready"
  for _ in $(seq 600); do [ -f "$R/slave/root/.ready" ] && return 0; sleep 0.1; done
  echo "error: the daemons did not connect; logs:" >&2; tail -20 "$R"/*.log >&2; exit 1
}
# Waits until the slave's root holds every file of $1 with its size; prints seconds taken.
converged() {
  python3 - "$1" "$R/slave/root/$(basename "$1")" <<'PY'
import os, sys, time
src, dst = sys.argv[1], sys.argv[2]
want = {}
for d, _, files in os.walk(src):
    for f in files:
        p = os.path.join(d, f)
        want[os.path.relpath(p, src)] = os.path.getsize(p)
t0 = time.monotonic()
while True:
    missing = [p for p, s in want.items() if not os.path.exists(os.path.join(dst, p)) or os.path.getsize(os.path.join(dst, p)) != s]
    if not missing:
        break
    if time.monotonic() - t0 > 900:
        sys.exit(f"not converged after 900 s: {len(missing)} files missing")
    time.sleep(0.05)
PY
}
median() { printf '%s\n' "$@" | sort -g | sed -n "$(( ($# + 1) / 2 ))p"; }

echo "## Bytes on the link, median of $REPEATS rounds (ours and rsync alternate)"
echo
echo "| tree | size | failoverd link | ratio | rsync -az | ratio | failoverd / rsync |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for kind in text jpeg; do
  size=$(du -sb "$WORK/$kind" | cut -f1)
  ours=() theirs=()
  for round in $(seq "$REPEATS"); do
    start_pair ""
    before=$(link_bytes)
    cp -a "$WORK/$kind" "$R/master/root/$kind"
    converged "$WORK/$kind"
    sleep 0.5
    ours+=($(( $(link_bytes) - before )))
    rm -rf "$R/rsync/$kind"
    stats=$(rsync -az --stats "$WORK/$kind/" "rsync://127.0.0.1:18730/dst/$kind/")
    sent=$(echo "$stats" | sed -n 's/^Total bytes sent: \([0-9,]*\).*/\1/p' | tr -d ,)
    received=$(echo "$stats" | sed -n 's/^Total bytes received: \([0-9,]*\).*/\1/p' | tr -d ,)
    theirs+=($((sent + received)))
  done
  o=$(median "${ours[@]}"); t=$(median "${theirs[@]}")
  printf '| %s (%s files) | %s | %s | %.3f | %s | %.3f | %.2f |\n' "$kind" "$(find "$WORK/$kind" -type f | wc -l)" "$size" "$o" \
    "$(echo "$o / $size" | bc -l)" "$t" "$(echo "$t / $size" | bc -l)" "$(echo "$o / $t" | bc -l)"
  echo "  (rounds: ours ${ours[*]}; rsync ${theirs[*]})" >&2
done
echo

echo "## [mirror] bwlimit = $BWLIMIT (KiB/s) on the JPEG tree, median of $REPEATS rounds"
echo
rates=() rsync_rates=()
for round in $(seq "$REPEATS"); do
  start_pair "bwlimit = $BWLIMIT"
  before=$(link_bytes)
  t0=$(date +%s.%N)
  cp -a "$WORK/jpeg" "$R/master/root/jpeg"
  converged "$WORK/jpeg"
  t1=$(date +%s.%N)
  bytes=$(( $(link_bytes) - before ))
  rates+=("$(echo "$bytes / 1024 / ($t1 - $t0)" | bc -l)")
  rm -rf "$R/rsync/jpeg"
  t0=$(date +%s.%N)
  stats=$(rsync -a --stats --bwlimit="$BWLIMIT" "$WORK/jpeg/" "rsync://127.0.0.1:18730/dst/jpeg/")
  t1=$(date +%s.%N)
  sent=$(echo "$stats" | sed -n 's/^Total bytes sent: \([0-9,]*\).*/\1/p' | tr -d ,)
  rsync_rates+=("$(echo "$sent / 1024 / ($t1 - $t0)" | bc -l)")
done
r=$(median "${rates[@]}"); rr=$(median "${rsync_rates[@]}")
printf -- '- failoverd: %.0f KiB/s on the link (%.3f of the limit; rounds: %s)\n' "$r" "$(echo "$r / $BWLIMIT" | bc -l)" "$(printf '%.0f ' "${rates[@]}")"
printf -- '- rsync --bwlimit=%s: %.0f KiB/s (%.3f of the limit; rounds: %s)\n' "$BWLIMIT" "$rr" "$(echo "$rr / $BWLIMIT" | bc -l)" "$(printf '%.0f ' "${rsync_rates[@]}")"
