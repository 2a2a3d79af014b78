#!/usr/bin/env bash
# The live mirror between two failoverd daemons on loopback: write-to-replica latency of
# single 4 KiB files written 0.2 s apart (both directions), a burst of BURST new 1 KiB files in
# 100 directories, and each daemon's peak memory (VmHWM). Not a test: it prints figures.
# Its anchor, lsyncd, in the same session:
#   benches/anchors/sync/lsyncd-latency.sh 1 20; benches/anchors/sync/lsyncd-latency.sh 3 20
#
#   benches/mirror-live.sh [SAMPLES] [BURST]   (defaults 50, 10000; FAILOVERD=path picks a build)
#   benches/mirror-live.sh 5 200               (a quick try)
#
# Uses 127.0.0.1 ports 15391-15392 (DNS) and port 17481 on 127.0.0.1 (master) and 127.0.0.2
# (slave) for the mirror. Two config files only because both replicas live on this one machine
# (each its own root and state); on two servers it is one file.
# Needs: apt-get install -y python3
set -euo pipefail
command -v python3 >/dev/null || { echo "error: python3 missing; run: apt-get install -y python3" >&2; exit 1; }
cd "$(dirname "$0")/.."
SAMPLES=${1:-50}
BURST=${2:-10000}
BIN=${FAILOVERD:-target/release/failoverd}
[ -n "${FAILOVERD:-}" ] || cargo build --release --locked --bin failoverd
W=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$W"; }
trap cleanup EXIT

fingerprint() { "$BIN" keygen --dir "$W/$1" --name "$1" --show | sed -n 's/.*fingerprint = "\(.*\)"/\1/p'; }
for n in master slave; do
  mkdir -p "$W/$n/root" "$W/$n/state"
  "$BIN" keygen --dir "$W/$n" --name "$n" >/dev/null
  cp examples/db.test.ru "$W/$n/"
done
FP_MASTER=$(fingerprint master); FP_SLAVE=$(fingerprint slave)
config() { # NAME DNS_PORT
  cat > "$W/$1/failoverd.toml" <<TOML
[zone]
name = "test.ru"
file = "db.test.ru"
listen = ["127.0.0.1:$2"]
state_dir = "state"
records = [{ name = "www", ttl = 10 }]
[[node]]
name = "master"
address = "127.0.0.1"
peer_address = "127.0.0.1:18054"
fingerprint = "$FP_MASTER"
[[node]]
name = "slave"
address = "127.0.0.2"
peer_address = "127.0.0.2:18054"
fingerprint = "$FP_SLAVE"
[[check]]
name = "web"
kind = "tcp"
port = 9
critical = true
[policy]
kind = "active-passive"
[mirror]
root = "$W/$1/root"
port = 17481
TOML
}
config master 15391
config slave 15392
for n in slave master; do
  RUST_LOG=${RUST_LOG:-warn} "$BIN" run --config "$W/$n/failoverd.toml" --node "$n" 2>"$W/$n.log" &
  PIDS+=($!)
done
MASTER_PID=${PIDS[1]}; SLAVE_PID=${PIDS[0]}
python3 - "$W" "$SAMPLES" "$BURST" "$MASTER_PID" "$SLAVE_PID" <<'PY'
import os, sys, time, statistics
w, n, burst, master_pid, slave_pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
a, b = f"{w}/master/root", f"{w}/slave/root"

def wait_for(path, content, limit=30):
    t0 = time.monotonic()
    while True:
        try:
            with open(path, "rb") as f:
                if f.read() == content:
                    return True
        except OSError:
            pass
        if time.monotonic() - t0 > limit:
            return False
        time.sleep(0.001)

def hwm(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmHWM", "VmRSS")):
                yield line.split()[0].rstrip(":"), int(line.split()[1]) // 1024

# Connected and through the first run.
with open(f"{a}/ready", "wb") as f: f.write(b"ready")
assert wait_for(f"{b}/ready", b"ready", 60), "the daemons did not connect (see the logs)"

def latency(src, dst, label):
    lat = []
    for i in range(n):
        content = os.urandom(2048).hex().encode()  # 4 KiB, like lsyncd-latency.sh
        name = f"{label}-{i}.txt"
        t0 = time.monotonic()
        with open(f"{src}/{name}", "wb") as f: f.write(content)
        ok = wait_for(f"{dst}/{name}", content)
        lat.append((time.monotonic() - t0) if ok else float("inf"))
        time.sleep(0.2)
    lat.sort()
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000
    print(f"latency {label}: samples={n} p50={p(0.5):.1f}ms p90={p(0.9):.1f}ms p99={p(0.99):.1f}ms max={lat[-1]*1000:.1f}ms")

latency(a, b, "master-to-slave")
latency(b, a, "slave-to-master")

def count(root):
    return sum(len(files) for _, _, files in os.walk(root))

before = count(b)
t0 = time.monotonic()
for i in range(burst):
    d = f"{a}/burst/d{i % 100:02d}"
    if i < 100: os.makedirs(d, exist_ok=True)
    with open(f"{d}/f{i}.html", "wb") as f: f.write(b"<p>%d</p>" % i + b"x" * 1000)
written = time.monotonic() - t0
while count(b) < before + burst:
    if time.monotonic() - t0 > 600: print("burst did not converge in 600 s"); break
    time.sleep(0.05)
print(f"burst of {burst} new files (1 KiB, 100 dirs): written in {written:.2f}s, on the replica after {time.monotonic() - t0:.2f}s")
for label, pid in (("master (drives)", master_pid), ("slave (serves)", slave_pid)):
    print(f"memory {label}: " + ", ".join(f"{k} {v} MiB" for k, v in hwm(pid)))
PY
