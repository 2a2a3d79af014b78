#!/usr/bin/env bash
# lsyncd's write-to-replica latency (inotify + rsync, local to local) for single 4 KiB files
# written 0.2 s apart: the anchor beside benches/mirror-live.sh.
#
#   benches/anchors/sync/lsyncd-latency.sh [DELAY_SECONDS] [SAMPLES]   (defaults: 1, 10)
#
# DELAY is lsyncd's own `delay` (it batches events for that long before it runs rsync).
# Needs: apt-get install -y lsyncd rsync python3
set -u
for tool in lsyncd rsync python3; do
  command -v "$tool" >/dev/null || { echo "error: $tool missing; run: apt-get install -y lsyncd rsync python3" >&2; exit 1; }
done
DELAY=${1:-1}; N=${2:-10}
W=$(mktemp -d); mkdir -p "$W/src" "$W/dst"
LP=
cleanup() { [ -n "$LP" ] && { kill "$LP" 2>/dev/null; wait "$LP" 2>/dev/null; }; rm -rf "$W"; }
trap cleanup EXIT
cat > "$W/conf.lua" <<CONF
settings { logfile = "$W/log", statusFile = "$W/status", nodaemon = true }
sync { default.rsync, source = "$W/src", target = "$W/dst", delay = $DELAY,
       rsync = { archive = true, times = true } }
CONF
lsyncd "$W/conf.lua" >/dev/null 2>&1 & LP=$!
sleep 3
python3 - "$W" "$N" "$DELAY" <<'PY'
import os, sys, time, statistics
w, n = sys.argv[1], int(sys.argv[2])
lat = []
for i in range(n):
    p = f"{w}/src/f{i}.txt"; q = f"{w}/dst/f{i}.txt"
    t0 = time.monotonic()
    with open(p, "w") as f: f.write("x" * 4096)
    while not os.path.exists(q):
        time.sleep(0.005)
        if time.monotonic() - t0 > 60: break
    lat.append(time.monotonic() - t0)
    time.sleep(0.2)
lat.sort()
print(f"lsyncd delay={sys.argv[3]}s samples={n} median={statistics.median(lat)*1000:.0f}ms max={lat[-1]*1000:.0f}ms")
PY
