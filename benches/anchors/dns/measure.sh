#!/usr/bin/env bash
# Measures one DNS server already listening on 127.0.0.1:PORT with process id PID, authoritative
# for test.ru (zone.db): dnsperf throughput over queries.txt, and the server's own CPU time per
# answered query (all its threads and child processes, from /proc/PID/task/*/schedstat).
#
#   [CLIENTS=N] benches/anchors/dns/measure.sh NAME PORT PID [SECONDS]
#
# CLIENTS: dnsperf's client sockets (default 4). Few sockets let a server group the answers to one
# client (UDP GSO); resolver farms use a fresh source port per query, closer to CLIENTS=64.
# Single passes vary a lot on a shared machine: alternate the servers in rounds, compare ratios.
# Needs: apt-get install -y dnsperf bind9-dnsutils procps
set -u
if [ $# -lt 3 ]; then sed -n '2,11s/^# \{0,1\}//p' "$0" >&2; exit 2; fi
for tool in dnsperf dig pgrep; do
  command -v "$tool" >/dev/null || { echo "error: $tool missing; run: apt-get install -y dnsperf bind9-dnsutils procps" >&2; exit 1; }
done
name=$1 port=$2 pid=$3 secs=${4:-8}
HERE=$(cd "$(dirname "$0")" && pwd)
# CPU nanoseconds of a process, all its threads and all its descendants (NSD serves from children).
cpu_ns() {
  local t=0 p a
  for f in /proc/$1/task/*/schedstat; do read -r a _ < "$f" 2>/dev/null && t=$((t + a)); done
  for p in $(pgrep -P "$1"); do t=$((t + $(cpu_ns "$p"))); done
  echo $t
}
[ -d "/proc/$pid" ] || { echo "$name: no process $pid (did the server start? is port $port free?)"; exit 1; }
ans=$(dig +short +tries=1 +time=2 @127.0.0.1 -p "$port" test.ru A | head -1)
c0=$(cpu_ns "$pid")
out=$(dnsperf -s 127.0.0.1 -p "$port" -d "$HERE/queries.txt" -l "$secs" -c "${CLIENTS:-4}" -q 200 2>&1)
c1=$(cpu_ns "$pid")
done_q=$(echo "$out" | awk '/Queries completed/ {print $3}')
qps=$(echo "$out" | awk '/Queries per second/ {printf "%d", $4}')
lost=$(echo "$out" | awk '/Queries lost/ {print $3}')
nsq=$(( (c1 - c0) / (${done_q:-0} > 0 ? done_q : 1) ))
echo "$name answer=$ans qps=$qps lost=$lost server_cpu_ns_per_query=$nsq"
