#!/usr/bin/env bash
# Builds the Debian package of failoverd with dpkg-deb (no cargo-deb: dpkg-deb is on every
# Debian machine, and the package needs maintainer scripts, conffiles and generated man pages and
# completions that a plain file list would not give).
#
#   packaging/deb/build.sh [--binary PATH] [--out DIR] [--compression xz|gzip|zstd|none]
#
# Without --binary it runs `cargo build --release --locked --bin failoverd` and packages
# target/release/failoverd (stripped). Prints the path of the .deb it wrote (default out:
# target/debian/). Where each file goes is listed in docs/operations.md ("The Debian package").
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
binary=""
out="$repo/target/debian"
compression="xz"
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --compression) compression="$2"; shift 2 ;;
    *) echo "error: unknown argument $1 (expected --binary PATH, --out DIR, --compression xz|gzip|zstd|none)" >&2; exit 2 ;;
  esac
done
for tool in dpkg-deb dpkg gzip; do
  command -v "$tool" >/dev/null || { echo "error: $tool is needed: apt-get install dpkg gzip" >&2; exit 1; }
done
if [ -z "$binary" ]; then
  (cd "$repo" && cargo build --release --locked --bin failoverd)
  binary="$repo/target/release/failoverd"
fi
[ -x "$binary" ] || { echo "error: $binary is not an executable (build failoverd first, or pass --binary)" >&2; exit 1; }

version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -1)-1"
arch="$(dpkg --print-architecture)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
root="$work/failoverd"

# The program. A release binary is stripped (its debug info stays in target/).
install -D -m 0755 "$binary" "$root/usr/bin/failoverd"
if [ "$binary" = "$repo/target/release/failoverd" ] && command -v strip >/dev/null; then
  strip --strip-debug "$root/usr/bin/failoverd"
fi

# The units, pointing at the packaged binary and documentation.
for unit in failoverd.service failoverd-witness.service; do
  install -D -m 0644 "$repo/packaging/$unit" "$root/usr/lib/systemd/system/$unit"
  sed -i -e 's|/usr/local/bin/failoverd|/usr/bin/failoverd|g' \
    -e 's|/usr/local/share/doc/failover/docs/|/usr/share/doc/failoverd/|g' \
    -e 's|/usr/local/share/doc/failover/|/usr/share/doc/failoverd/|g' \
    "$root/usr/lib/systemd/system/$unit"
done

# The default config (conffiles: an edited one is kept on upgrade).
install -D -m 0640 "$here/failoverd.toml" "$root/etc/failoverd/failoverd.toml"
install -D -m 0640 "$here/db.example.com" "$root/etc/failoverd/db.example.com"

# Man pages and completions, made by the binary itself (clap_mangen, clap_complete).
man="$root/usr/share/man/man1"
install -d "$man"
"$root/usr/bin/failoverd" man --dir "$man"
gzip -9n "$man"/*.1
"$root/usr/bin/failoverd" completions bash > "$work/bash"
"$root/usr/bin/failoverd" completions zsh > "$work/zsh"
"$root/usr/bin/failoverd" completions fish > "$work/fish"
install -D -m 0644 "$work/bash" "$root/usr/share/bash-completion/completions/failoverd"
install -D -m 0644 "$work/zsh" "$root/usr/share/zsh/vendor-completions/_failoverd"
install -D -m 0644 "$work/fish" "$root/usr/share/fish/vendor_completions.d/failoverd.fish"

# Documentation: the README, the config reference, operations, examples, the dashboard.
doc="$root/usr/share/doc/failoverd"
install -D -m 0644 "$repo/README.md" "$doc/README.md"
install -m 0644 "$repo/docs/config.md" "$repo/docs/operations.md" "$doc/"
install -D -m 0644 "$repo/examples/failoverd.toml" "$doc/examples/failoverd.toml"
install -m 0644 "$repo/examples/db.test.ru" "$doc/examples/"
install -m 0644 "$repo/packaging/grafana-dashboard.json" "$doc/examples/"
install -m 0644 "$repo/packaging/failoverd.service.d/paths.conf" "$repo/packaging/failoverd.service.d/xdp.conf" "$doc/examples/"
cat > "$doc/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: failover
Files: *
License: MIT or Apache-2.0
 On Debian systems the Apache License 2.0 is in /usr/share/common-licenses/Apache-2.0.
EOF
printf 'failoverd (%s) unstable; urgency=medium\n\n  * Package built from the failover repository.\n\n -- failover maintainers <failover@example.invalid>  %s\n' \
  "$version" "$(date -R -d @"${SOURCE_DATE_EPOCH:-$(date +%s)}")" | gzip -9n > "$doc/changelog.Debian.gz"

# The libraries the binary links (glibc, libgcc_s for unwinding); the newest glibc symbol
# version it uses is the least libc6 it runs on (what dpkg-shlibdeps would say).
glibc=""
if command -v objdump >/dev/null; then
  glibc="$(objdump -T "$binary" | grep -o 'GLIBC_[0-9.]*' | sed 's/^GLIBC_//' | sort -uV | tail -1)"
fi
depends="libc6${glibc:+ (>= $glibc)}, libgcc-s1, passwd"

# Control: the package, its conffiles and maintainer scripts.
install -d -m 0755 "$root/DEBIAN"
cat > "$root/DEBIAN/control" <<EOF
Package: failoverd
Version: $version
Architecture: $arch
Maintainer: failover maintainers <failover@example.invalid>
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Depends: $depends
Section: net
Priority: optional
Homepage: https://example.invalid/failover
Description: keeps a website up across two servers
 failoverd probes every server's services, decides with hysteresis and an
 optional witness which servers the site's names point at, and serves that
 answer from its own authoritative DNS server (or steers BIND); it mirrors
 the web root both ways and watches and fences a MySQL/MariaDB pair.
EOF
printf '/etc/failoverd/failoverd.toml\n/etc/failoverd/db.example.com\n' > "$root/DEBIAN/conffiles"
install -m 0755 "$here/postinst" "$here/prerm" "$here/postrm" "$root/DEBIAN/"

install -d "$out"
deb="$out/failoverd_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Z"$compression" --build "$root" "$deb" >/dev/null
echo "$deb"
