#!/usr/bin/env bash
# Compares `failoverd mirror --once` with rsync, Unison and rdiff in one run on this machine.
#
#   benches/sync-anchors.sh [WORKDIR] [FILES]     (defaults: /tmp/failover-sync-bench, 20000)
#   REPEATS=7 benches/sync-anchors.sh             (the figures of docs/benchmarks.md)
#   REPEATS=1 DELTA_MIB=8 benches/sync-anchors.sh /tmp/sb 200    (a quick try)
#
# Tree: anchors/sync/mktree.py WORKDIR/tree FILES — initial sync, then 100 changed files, then no
# change (median of 3 runs each for the last two), against `rsync -a` (one-way) and
# `unison -batch` (two-way); a tool whose trees differ afterwards is flagged in its row.
# Delta: anchors/sync/mkdata.py DELTA_MIB DELTA_EDITS (default 256 100) — time (median of
# REPEATS=5, alternating) and bytes for the changed file against `rsync --no-whole-file`, and
# librsync's `rdiff`. The generated data is kept in WORKDIR and reused. Page cache warm; the
# figures are noisy on a busy machine: compare the ratios. FAILOVERD=path picks a build.
# Needs: apt-get install -y rsync unison rdiff python3 bc
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/tmp/failover-sync-bench}
files=${2:-20000}
delta_mib=${DELTA_MIB:-256}
delta_edits=${DELTA_EDITS:-100}
anchors=$PWD/benches/anchors/sync
for tool in rsync unison rdiff python3 bc; do
  command -v "$tool" >/dev/null || { echo "error: $tool missing; run: apt-get install -y rsync unison rdiff python3 bc" >&2; exit 1; }
done
if [ -n "${FAILOVERD:-}" ]; then
  failoverd=$(realpath "$FAILOVERD")
else
  cargo build --release --locked --bin failoverd >/dev/null
  failoverd=$PWD/target/release/failoverd
fi
mkdir -p "$work"
if [ "$(cat "$work/tree.done" 2>/dev/null)" != "$files" ]; then
  rm -rf "$work/tree" && python3 "$anchors/mktree.py" "$work/tree" "$files" && echo "$files" > "$work/tree.done"
fi
if [ "$(cat "$work/data.done" 2>/dev/null)" != "$delta_mib $delta_edits" ]; then
  rm -rf "$work/data" && mkdir -p "$work/data"
  python3 "$anchors/mkdata.py" "$delta_mib" "$delta_edits" "$work/data" && echo "$delta_mib $delta_edits" > "$work/data.done"
fi

TIMEFORMAT=%R
seconds() { { time "$@" >/dev/null 2>&1; } 2>&1 | tail -1; }
median() { printf '%s\n' "$@" | sort -g | sed -n "$(( ($# + 1) / 2 ))p"; }
# Overwrites 100 bytes at the start of 100 files spread over the tree (pattern $2).
change100() {
  python3 - "$1" "$2" "$files" <<'PY'
import os, sys
root, pattern, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for k in range(100):
    i = k * (n // 100)
    path = os.path.join(root, f"d{i % 37}", f"s{i % 11}", f"f{i}.dat")
    with open(path, "r+b") as f:
        f.write(bytes([(pattern + k) % 256]) * 100)
PY
}

tree_bench() {  # NAME COMMAND...; runs COMMAND A B
  local name=$1; shift
  rm -rf "$work/$name" && mkdir -p "$work/$name/b" "$work/$name/state"
  cp -a "$work/tree" "$work/$name/a"
  sync
  local initial changed=() nochange=()
  initial=$(seconds "$@" "$work/$name/a" "$work/$name/b")
  for round in 1 2 3; do
    change100 "$work/$name/a" "$round"
    sleep 1.1
    changed+=("$(seconds "$@" "$work/$name/a" "$work/$name/b")")
  done
  for round in 1 2 3; do
    nochange+=("$(seconds "$@" "$work/$name/a" "$work/$name/b")")
  done
  local note=""
  if ! diff -r "$work/$name/a" "$work/$name/b" >"$work/$name.diff" 2>&1; then
    # Reported, not fatal: a tool that misses edits is a finding (Unison's fast check can).
    note=" (trees differ after the runs: $(grep -c . "$work/$name.diff") paths; see $work/$name.diff)"
    echo "warning: $name: trees differ:" >&2; head -5 "$work/$name.diff" >&2
  fi
  printf '| %s | %s | %s | %s |%s\n' "$name" "$initial" "$(median "${changed[@]}")" "$(median "${nochange[@]}")" "$note"
  rm -rf "$work/$name"
}

ours() { "$failoverd" mirror --once --state-dir "$work/ours/state" "$1" "$2"; }
ours_nofsync() { "$failoverd" mirror --once --danger-no-fsync --state-dir "$work/ours-no-fsync/state" "$1" "$2"; }
rsync_a() { rsync -a "$1/" "$2/"; }
unison_batch() { UNISON="$work/unison/state" unison "$1" "$2" -batch -auto -silent -times -perms 0; }

echo "## $files-file tree ($(du -sh "$work/tree" | cut -f1)), seconds (median of 3 for the last two)"
echo
echo "| tool | initial | 100 changed | no change |"
echo "| --- | --- | --- | --- |"
tree_bench ours ours
tree_bench ours-no-fsync ours_nofsync
tree_bench rsync rsync_a
tree_bench unison unison_batch
echo

repeats=${REPEATS:-5}
echo "## $delta_mib MiB file, $delta_edits edits (delta against the old version), median of $repeats (runs alternate)"
echo
d=$work/delta
ours_times=() rsync_times=()
# Each measured run is prepared the same way (fresh copies, then sync) and the order of the
# two alternates, so that neither inherits the other's write-back or freed pages.
# Reads the files a run reads into the page cache again: this machine's memory manager (DAMON
# here) evicts cold pages, and a run that reads from the disk measures the disk.
warm() { cat "$@" >/dev/null; }
ours_delta() {
  rm -rf "$d" && mkdir -p "$d/a" "$d/b" "$d/state"
  cp "$work/data/old.bin" "$d/a/file.bin" && cp "$work/data/old.bin" "$d/b/file.bin"
  sleep 1.1 # so that the index trusts the receiver's copy (ctime a second before the index)
  "$failoverd" mirror --once --state-dir "$d/state" "$d/a" "$d/b" >/dev/null
  cp "$work/data/new.bin" "$d/a/file.bin"
  sync
  warm "$d/a/file.bin" "$d/b/file.bin"
  local start
  start=$(date +%s.%N)
  summary=$("$failoverd" mirror --once --state-dir "$d/state" "$d/a" "$d/b")
  ours_times+=("$(echo "$(date +%s.%N) - $start" | bc)")
  cmp "$d/a/file.bin" "$d/b/file.bin"
}
rsync_delta() {
  rm -rf "$d" && mkdir -p "$d/rsync"
  cp "$work/data/old.bin" "$d/rsync/file.bin"
  sync
  warm "$work/data/new.bin" "$d/rsync/file.bin"
  local start
  start=$(date +%s.%N)
  stats=$(rsync --no-whole-file --stats "$work/data/new.bin" "$d/rsync/file.bin")
  rsync_times+=("$(echo "$(date +%s.%N) - $start" | bc)")
  cmp "$work/data/new.bin" "$d/rsync/file.bin"
}
for round in $(seq "$repeats"); do
  if [ $((round % 2)) -eq 1 ]; then ours_delta; rsync_delta; else rsync_delta; ours_delta; fi
done
echo "- failoverd mirror: $(median "${ours_times[@]}") s (runs: ${ours_times[*]}; scan with BLAKE3 of the new file, signature, delta, apply, verify, fsync): $summary"
echo "- rsync --no-whole-file: $(median "${rsync_times[@]}") s (runs: ${rsync_times[*]}); $(echo "$stats" | grep -E 'Literal data|Total bytes sent' | tr '\n' ';')"
mkdir -p "$d/rdiff"
sig=$(seconds rdiff signature "$work/data/old.bin" "$d/rdiff/sig")
del=$(seconds rdiff delta "$d/rdiff/sig" "$work/data/new.bin" "$d/rdiff/delta")
pat=$(seconds rdiff patch "$work/data/old.bin" "$d/rdiff/delta" "$d/rdiff/out")
cmp "$work/data/new.bin" "$d/rdiff/out"
echo "- rdiff: signature ${sig} s + delta ${del} s + patch ${pat} s; signature $(stat -c %s "$d/rdiff/sig") B, delta $(stat -c %s "$d/rdiff/delta") B"
rm -rf "$d"
