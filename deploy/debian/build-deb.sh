#!/bin/sh
# Builds harmony-appliance_<version>_<arch>.deb with dpkg-deb from a staging tree.
#
#   deploy/debian/build-deb.sh [BIN] [OUTDIR]
#
# BIN     the node binary (default target/release/harmony-appliance, else target/debug/...
#         with a warning). Its debug info is stripped in the package (symbols stay, so
#         backtraces keep function names); BIN itself is not modified.
# OUTDIR  where the .deb goes (default target/debian). Prints the .deb's path last.
#
# Runs from any directory; relative arguments are taken relative to the current one. Needs
# dpkg-deb; dpkg-shlibdeps (dpkg-dev) computes Depends when present, else the script maps
# the binary's NEEDED libraries to packages with `dpkg -S`.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
pkgname=harmony-appliance

die() { echo "build-deb: $*" >&2; exit 1; }
abspath() { case "$1" in /*) echo "$1" ;; *) echo "$(pwd)/$1" ;; esac; }

bin=${1:-}
if [ -n "$bin" ]; then
    bin=$(abspath "$bin")
elif [ -x "$repo/target/release/$pkgname" ]; then
    bin=$repo/target/release/$pkgname
elif [ -x "$repo/target/debug/$pkgname" ]; then
    bin=$repo/target/debug/$pkgname
    echo "build-deb: warning: no release build, packaging the debug binary $bin" >&2
else
    die "no binary: build one (cargo build --release -p appliance) or pass its path"
fi
[ -x "$bin" ] || die "$bin is not an executable file"
outdir=$(abspath "${2:-$repo/target/debian}")

command -v dpkg-deb >/dev/null || die "dpkg-deb not found (apt-get install dpkg)"

# version = "..." under [workspace.package] in the workspace Cargo.toml.
version=$(awk '
    /^\[/ { in_pkg = ($0 == "[workspace.package]") }
    in_pkg && /^version[ \t]*=/ { gsub(/^[^"]*"|".*$/, ""); print; exit }
' "$repo/Cargo.toml")
[ -n "$version" ] || die "no version under [workspace.package] in $repo/Cargo.toml"
arch=$(dpkg --print-architecture)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Staging tree at debian/<package> so that dpkg-shlibdeps finds the binary where it expects.
root=$work/debian/$pkgname
mkdir -p "$root/DEBIAN"

# inst MODE SRC DEST: copy one file into the staging tree, parent directories 0755.
inst() {
    [ -f "$2" ] || die "missing $2"
    install -D -m "$1" "$2" "$root$3"
}
# instdir SRCDIR DEST: copy a directory's files (recursively) as 0644, directories 0755.
instdir() {
    [ -d "$1" ] || { echo "build-deb: warning: $1 does not exist, skipped" >&2; return 0; }
    (cd "$1" && find . -type f ! -name '*~' ! -name '.*') | sort | while read -r f; do
        install -D -m 0644 "$1/$f" "$root$2/${f#./}"
    done
}

# The node.
inst 0755 "$bin" /usr/bin/$pkgname
if command -v strip >/dev/null; then
    strip --strip-debug "$root/usr/bin/$pkgname"
fi

# systemd, users, directories, udev, sysctl.
inst 0644 "$repo/deploy/systemd/$pkgname.service" /lib/systemd/system/$pkgname.service
inst 0644 "$repo/firmware-config/cpu/harmony-cpu-performance.service" \
    /lib/systemd/system/harmony-cpu-performance.service
inst 0644 "$here/$pkgname.sysusers" /usr/lib/sysusers.d/$pkgname.conf
inst 0644 "$here/$pkgname.tmpfiles" /usr/lib/tmpfiles.d/$pkgname.conf
inst 0644 "$repo/firmware-config/udev/70-yubihsm2.rules" /lib/udev/rules.d/70-yubihsm2.rules
inst 0644 "$repo/firmware-config/sysctl/90-$pkgname.conf" /usr/lib/sysctl.d/90-$pkgname.conf

# Configuration (a conffile: dpkg keeps the operator's edits across upgrades).
inst 0644 "$here/config.toml" /etc/harmony/config.toml
printf '%s\n' /etc/harmony/config.toml >"$root/DEBIAN/conffiles"

# Monitoring and provisioning material, copied as found at build time.
instdir "$repo/deploy/prometheus" /usr/share/$pkgname/prometheus
instdir "$repo/deploy/grafana" /usr/share/$pkgname/grafana
inst 0644 "$repo/firmware-config/yubihsm/default.toml" /usr/share/$pkgname/yubihsm/default.toml

# Documentation.
doc=/usr/share/doc/$pkgname
inst 0644 "$repo/README.md" $doc/README.md
for f in operator-guide hsm metrics staking; do
    inst 0644 "$repo/docs/$f.md" $doc/$f.md
done
inst 0644 "$repo/firmware-config/README.md" $doc/firmware-config.md
inst 0644 "$repo/firmware-config/cpu/README.md" $doc/cpu-irq-numa.md
license=$(awk -F'"' '/^license[ \t]*=/ { print $2; exit }' "$repo/Cargo.toml")
cat >"$root$doc/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: $pkgname
Source: $(awk -F'"' '/^repository[ \t]*=/ { print $2; exit }' "$repo/Cargo.toml")

Files: *
License: ${license:-see the source repository}
 On Debian systems the full text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
EOF
chmod 0644 "$root$doc/copyright"

# Maintainer scripts.
for s in postinst prerm postrm; do
    install -m 0755 "$here/$s" "$root/DEBIAN/$s"
done

# Depends from the libraries the binary links.
depends=
if command -v dpkg-shlibdeps >/dev/null; then
    printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' $pkgname $pkgname \
        >"$work/debian/control"
    depends=$(cd "$work" && dpkg-shlibdeps -O -e"debian/$pkgname/usr/bin/$pkgname" 2>/dev/null |
        sed -n 's/^shlibs:Depends=//p') || depends=
fi
if [ -z "$depends" ]; then
    # Fallback: the package owning each NEEDED library; libc6 at the newest GLIBC_ version.
    glibc=$(objdump -T "$bin" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
    for lib in $(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
        path=$(ldconfig -p | awk -v l="$lib" '$1 == l && /x86-64/ { print $NF; exit }')
        [ -n "$path" ] || continue
        p=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -1 | cut -d: -f1) || continue
        case "$p" in libc6) p="libc6 (>= $glibc)" ;; esac
        case ", $depends, " in *", $p, "*) ;; *) depends=${depends:+$depends, }$p ;; esac
    done
fi
[ -n "$depends" ] || die "could not compute Depends"

installed_size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<EOF
Package: $pkgname
Version: $version
Architecture: $arch
Maintainer: harmony-appliance maintainers <maintainers@example.invalid>
Installed-Size: $installed_size
Depends: $depends
Recommends: systemd (>= 248)
Section: net
Priority: optional
Homepage: $(awk -F'"' '/^repository[ \t]*=/ { print $2; exit }' "$repo/Cargo.toml")
Description: Harmony-style FBFT validator node for bare metal
 harmony-appliance runs one validator of a Harmony-style chain: FBFT consensus
 with BLS signatures over QUIC, EVM execution, staking, JSON-RPC and Prometheus
 metrics. BLS keys are sealed under a YubiHSM 2 (or kept in EIP-2335 keystores)
 and every signature passes a durable double-sign guard.
 .
 The package installs a hardened systemd unit (not started on installation),
 the harmony system user, a default configuration with RPC and metrics on
 loopback, a udev rule for the YubiHSM 2, UDP buffer sysctls for QUIC, and
 Prometheus and Grafana material under /usr/share/harmony-appliance.
 /var/lib/harmony is never removed, not even on purge.
EOF

# Tree hygiene: files 0644 unless set above, directories 0755; dpkg-deb records root:root.
find "$root" -type d -exec chmod 0755 {} +

mkdir -p "$outdir"
deb=$outdir/${pkgname}_${version}_${arch}.deb
dpkg-deb --build --root-owner-group "$root" "$deb" >/dev/null
echo "$deb"
