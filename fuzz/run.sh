#!/usr/bin/env bash
# Runs every fuzz target for SECONDS seconds each (default 600), one after the other under
# `nice -n 10`, and reports per target: executions, executions per second, corpus size and the
# crashes found (inputs in fuzz/artifacts/TARGET/).
#
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`). Each target
# starts from its committed seeds (fuzz/corpus/TARGET) and grows its corpus in fuzz/work/TARGET,
# which git ignores; a later run starts from both. Logs: fuzz/work/TARGET.log.
#
# Usage: fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"

seconds=${1:-600}
shift || true
if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

nice -n 10 cargo +nightly fuzz build
summary=()
found=0
for target in "${targets[@]}"; do
  mkdir -p "work/$target" "artifacts/$target"
  log="work/$target.log"
  before=$(find "artifacts/$target" -type f | wc -l)
  echo "== $target: ${seconds}s"
  # A crash stops the run (libFuzzer exits non-zero): reported below, the other targets go on.
  status=0
  nice -n 10 cargo +nightly fuzz run "$target" "work/$target" "corpus/$target" -- \
    -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"$log" 2>&1 || status=$?
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  per_second=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  corpus=$(grep -o 'corp: [0-9]*/[0-9a-zA-Z]*' "$log" | tail -n 1 | sed 's/corp: //')
  crashes=$(( $(find "artifacts/$target" -type f | wc -l) - before ))
  found=$(( found + crashes ))
  summary+=("$(printf '%-16s %12s %8s %14s %7s %6s' "$target" "${executions:-?}" \
    "${per_second:-?}" "${corpus:-?}" "$crashes" "$status")")
  if [ "$crashes" -gt 0 ]; then
    ls -t "artifacts/$target" | head -n "$crashes" | sed "s|^|  artifacts/$target/|"
    grep -m 3 -E 'panicked|ERROR: (libFuzzer|AddressSanitizer)' "$log" || true
  fi
done

echo
printf '%-16s %12s %8s %14s %7s %6s\n' target executions exec/s "corpus (n/b)" crashes exit
for line in "${summary[@]}"; do
  echo "$line"
done
[ "$found" -eq 0 ]
