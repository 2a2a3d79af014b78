#!/usr/bin/env bash
# Starts BIND 9, NSD, Knot and gdnsd on loopback (ports 5301-5304, one UDP worker each), each
# authoritative for the same tiny zone (zone.db, test.ru), and measures each with measure.sh in
# one run; then the extra servers given as NAME PORT PID (started by the caller for the same zone).
#
#   benches/anchors/dns/run-anchors.sh [SECONDS] [NAME PORT PID]...
#
# benches/dns-anchors.sh runs it with failoverd. Run as root (the servers drop to root).
# Needs: apt-get install -y bind9 nsd knot gdnsd dnsperf bind9-dnsutils procps
set -u
PKGS="bind9 nsd knot gdnsd dnsperf bind9-dnsutils procps"
for tool in named nsd knotd gdnsd dnsperf dig pgrep; do
  command -v "$tool" >/dev/null || { echo "error: $tool missing; run: apt-get install -y $PKGS" >&2; exit 1; }
done
HERE=$(cd "$(dirname "$0")" && pwd)
SECS=${1:-8}
shift || true
W=$(mktemp -d)
GDPID=
cleanup() {
  [ -n "$GDPID" ] && kill "$GDPID" 2>/dev/null
  kill $(cat "$W/bind/named.pid" "$W/nsd/nsd.pid" "$W/knot/knot.pid" 2>/dev/null) 2>/dev/null
  sleep 1
  rm -rf "$W"
}
trap cleanup EXIT
cp "$HERE/zone.db" "$W/db.test.ru"
# BIND
mkdir -p "$W/bind"
cat > "$W/bind/named.conf" <<CONF
options { directory "$W/bind"; listen-on port 5301 { 127.0.0.1; }; listen-on-v6 { none; };
  recursion no; pid-file "$W/bind/named.pid"; };
zone "test.ru" { type master; file "$W/db.test.ru"; };
CONF
named -c "$W/bind/named.conf" -u root -n 1 2>/dev/null
# NSD
mkdir -p "$W/nsd"
cat > "$W/nsd/nsd.conf" <<CONF
server:
  ip-address: 127.0.0.1@5302
  username: ""
  zonesdir: "$W"
  database: ""
  pidfile: "$W/nsd/nsd.pid"
  xfrdfile: "$W/nsd/xfrd.state"
  zonelistfile: "$W/nsd/zone.list"
  server-count: 1
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
remote-control:
  control-enable: no
zone:
  name: test.ru
  zonefile: db.test.ru
CONF
nsd -c "$W/nsd/nsd.conf" 2>/dev/null
# Knot
mkdir -p "$W/knot"
cat > "$W/knot/knot.conf" <<CONF
server:
  listen: 127.0.0.1@5303
  rundir: "$W/knot"
  user: root:root
  udp-workers: 1
  tcp-workers: 1
database:
  storage: "$W/knot"
zone:
  - domain: test.ru
    file: "$W/db.test.ru"
CONF
knotd -c "$W/knot/knot.conf" -d 2>/dev/null
# gdnsd
mkdir -p "$W/gd/zones"; cp "$HERE/zone.db" "$W/gd/zones/test.ru"
printf 'options => {\n listen => [ 127.0.0.1:5304 ]\n udp_threads => 1\n tcp_threads => 1\n run_dir => %s\n state_dir => %s\n}\n' "$W/gd/run" "$W/gd/state" > "$W/gd/config"
gdnsd -c "$W/gd" -f start >"$W/gd/log" 2>&1 & GDPID=$!
# Wait until each answers (at most 10 s).
for port in 5301 5302 5303 5304; do
  for _ in $(seq 50); do
    dig +short +tries=1 +time=1 @127.0.0.1 -p "$port" test.ru SOA >/dev/null 2>&1 && break
    sleep 0.2
  done
done
"$HERE/measure.sh" bind9 5301 "$(cat "$W/bind/named.pid" 2>/dev/null || echo 0)" "$SECS"
"$HERE/measure.sh" nsd 5302 "$(cat "$W/nsd/nsd.pid" 2>/dev/null || echo 0)" "$SECS"
"$HERE/measure.sh" knot 5303 "$(cat "$W/knot/knot.pid" 2>/dev/null || echo 0)" "$SECS"
"$HERE/measure.sh" gdnsd 5304 "$GDPID" "$SECS"
# Extra targets: NAME PORT PID triples of servers started by the caller.
while [ $# -ge 3 ]; do "$HERE/measure.sh" "$1" "$2" "$3" "$SECS"; shift 3; done
