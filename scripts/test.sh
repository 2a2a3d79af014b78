#!/usr/bin/env bash
# Runs every test of the workspace on a fresh Debian machine: installs what the tests need
# (dig, BIND, NSD, Knot, MariaDB, Chromium, aiosmtpd, python3, curl, openssl, chattr, setfacl,
# iproute2, nftables, clang, g++), then format, lints (the fuzz targets' too), and the tests (unit,
# integration against real servers on loopback, property tests, doc tests).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v dig >/dev/null 2>&1 || need+=(bind9-dnsutils)
# Real DNS servers the tests steer or feed: BIND (zone file, dynamic update), NSD and Knot
# (secondaries transferring from the built-in server).
command -v named >/dev/null 2>&1 || need+=(bind9)
command -v nsd >/dev/null 2>&1 || need+=(nsd)
command -v knotd >/dev/null 2>&1 || need+=(knot)
# MySQL checks, setup and fencing run against two real MariaDB servers.
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
# The status page is loaded in a real browser.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v python3 >/dev/null 2>&1 || need+=(python3)
# The admin listener over HTTPS is checked with curl, and a CA-style certificate made by openssl.
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# The two-sites lab (tests/sites_e2e.rs): network namespaces and nftables faults.
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v nft >/dev/null 2>&1 || need+=(nftables)
# The e-mail tests use Debian's aiosmtpd as a real SMTP server (with Debian's python3).
/usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1 || need+=(python3-aiosmtpd)
command -v chattr >/dev/null 2>&1 || need+=(e2fsprogs)
# The mirror's ACL test sets and reads ACLs with Debian's setfacl/getfacl.
command -v setfacl >/dev/null 2>&1 || need+=(acl)
# The AF_XDP listener's XDP program is rebuilt from its C source and compared with the committed
# object (failover-dns/tests/xdp_program.rs).
command -v clang >/dev/null 2>&1 || need+=(clang)
# The fuzz crate's libfuzzer-sys compiles libFuzzer (C++) even when only checked.
command -v g++ >/dev/null 2>&1 || need+=(g++)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: ${need[*]} missing and not root; run: sudo apt-get install -y ${need[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The fuzz targets (fuzz/: a workspace of its own, run with cargo-fuzz on nightly) keep building:
# formatted, linted and type-checked here on stable, without running the fuzzer.
cargo fmt --manifest-path fuzz/Cargo.toml -- --check
cargo clippy --manifest-path fuzz/Cargo.toml --all-targets --locked -- -D warnings
# The API docs build without a warning (broken or private links).
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked
# The pure core builds alone: failover-core without its runtime (no tokio, TLS, HTTP, SMTP).
cargo check -p failover-core --no-default-features --all-targets --locked
cargo clippy -p failover-core --no-default-features --all-targets --locked -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
  cargo test --workspace --locked --doc
else
  cargo test --workspace --locked --no-fail-fast
fi
