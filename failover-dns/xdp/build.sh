#!/bin/sh
# Rebuilds the XDP program's object, redirect.o, from redirect.c: the object is committed (as
# Knot ships its own), so that building failover-dns with the feature `xdp` needs no C compiler.
# Run it after changing redirect.c and commit both; failover-dns/tests/xdp_program.rs checks that
# the committed object is what this script makes. Made with Debian 12's clang 14.
#
#   failover-dns/xdp/build.sh [OUTPUT]        (default: redirect.o beside this script)
#
# Needs: apt-get install -y clang
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/redirect.o}
command -v clang >/dev/null 2>&1 || { echo "error: clang missing; run: apt-get install -y clang" >&2; exit 1; }
# No -g: no BTF and no paths in the object, so it is the same wherever it is built.
cd "$here" && clang -O2 -Wall -Werror -target bpfel -c redirect.c -o "$out"
