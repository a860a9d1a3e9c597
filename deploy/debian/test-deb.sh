#!/bin/sh
# Tests a harmony-appliance .deb without installing it on this machine:
#
#   deploy/debian/test-deb.sh DEB
#
# 1. contents (dpkg-deb -c / -I / -e): every expected path, owners and modes, the control
#    fields, conffiles, maintainer scripts (POSIX sh), the unit's key lines, the hardening
#    score (systemd-analyze security --offline=true, exposure at most 2.0) and
#    systemd-analyze verify, the default config parsed by the packaged binary;
# 2. the maintainer scripts in a fake root (DPKG_ROOT, package extracted with dpkg-deb -x):
#    fresh install, data written to /var/lib/harmony, upgrade, remove, purge; the data must
#    survive every step, and the host must be left untouched;
# 3. the same fresh install with systemd-sysusers and systemd-tmpfiles hidden (the fallback
#    through useradd and plain mkdir/chown).
#
# Prints one line per check; exits non-zero if any failed. Needs root (for the fake root's
# chown); re-runs itself under fakeroot when started as another user and fakeroot exists.
set -eu

if [ "$(id -u)" != 0 ]; then
    if command -v fakeroot >/dev/null && [ -z "${FAKEROOTKEY:-}" ]; then
        exec fakeroot "$0" "$@"
    fi
    echo "test-deb: run as root (or install fakeroot)" >&2
    exit 2
fi

[ $# -eq 1 ] || { echo "usage: $0 DEB" >&2; exit 2; }
case "$1" in /*) deb=$1 ;; *) deb=$(pwd)/$1 ;; esac
[ -f "$deb" ] || { echo "test-deb: no such file: $deb" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

pkg=harmony-appliance
unit_path=/lib/systemd/system/$pkg.service
max_exposure=2.0

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   - $*"; }
bad() { failed=$((failed + 1)); echo "FAIL - $*"; }
# check DESCRIPTION COMMAND...: runs COMMAND (output kept for failures).
check() {
    desc=$1
    shift
    if "$@" >"$tmp/out" 2>&1; then ok "$desc"; else bad "$desc"; sed 's/^/       /' "$tmp/out"; fi
}

echo "# package: $deb"

# ---------------------------------------------------------------------------------------
# 1. Contents
# ---------------------------------------------------------------------------------------
dpkg-deb -c "$deb" >"$tmp/contents"
dpkg-deb -I "$deb" >"$tmp/info"
dpkg-deb -e "$deb" "$tmp/control"
mkdir "$tmp/x"
dpkg-deb -x "$deb" "$tmp/x"

# has_entry MODE PATH: `dpkg-deb -c` lists PATH with that mode string, owned root/root.
has_entry() {
    awk -v m="$1" -v p=".$2" '$1 == m && $2 == "root/root" && $NF == p { f = 1 } END { exit !f }' \
        "$tmp/contents"
}
for e in \
    "-rwxr-xr-x /usr/bin/$pkg" \
    "-rw-r--r-- $unit_path" \
    "-rw-r--r-- /lib/systemd/system/harmony-cpu-performance.service" \
    "-rw-r--r-- /usr/lib/sysusers.d/$pkg.conf" \
    "-rw-r--r-- /usr/lib/tmpfiles.d/$pkg.conf" \
    "-rw-r--r-- /lib/udev/rules.d/70-yubihsm2.rules" \
    "-rw-r--r-- /usr/lib/sysctl.d/90-$pkg.conf" \
    "-rw-r--r-- /etc/harmony/config.toml" \
    "-rw-r--r-- /usr/share/$pkg/prometheus/prometheus.yml" \
    "-rw-r--r-- /usr/share/$pkg/yubihsm/default.toml" \
    "-rw-r--r-- /usr/share/doc/$pkg/copyright" \
    "-rw-r--r-- /usr/share/doc/$pkg/operator-guide.md" \
    "-rw-r--r-- /usr/share/doc/$pkg/hsm.md" \
    "drwxr-xr-x /usr/share/$pkg/grafana/"; do
    check "contains $e (root/root)" has_entry "${e%% *}" "${e#* }"
done
# Whatever deploy/prometheus and deploy/grafana hold in this checkout is in the package.
for d in prometheus grafana; do
    [ -d "$repo/deploy/$d" ] || continue
    (cd "$repo/deploy/$d" && find . -type f ! -name '*~' ! -name '.*') | sort | while read -r f; do
        has_entry -rw-r--r-- "/usr/share/$pkg/$d/${f#./}" || echo "missing /usr/share/$pkg/$d/${f#./}"
    done >"$tmp/missing"
    check "every file of deploy/$d is under /usr/share/$pkg/$d" test ! -s "$tmp/missing"
    [ -s "$tmp/missing" ] && sed 's/^/       /' "$tmp/missing"
done
check "every entry is owned by root/root" \
    awk '$2 != "root/root" { print; bad = 1 } END { exit bad }' "$tmp/contents"
check "no directory is group- or world-writable" \
    awk '$1 ~ /^d/ && ($1 ~ /^d....w/ || $1 ~ /^d.......w/) { print; bad = 1 } END { exit bad }' \
    "$tmp/contents"
check "the package does not own /var/lib/harmony (dpkg must never remove it)" \
    sh -c "! grep -q ' \./var/lib/harmony' '$tmp/contents'"

field() { sed -n "s/^ $1: //p" "$tmp/info"; }
check "Package is $pkg" test "$(field Package)" = "$pkg"
if [ -f "$repo/Cargo.toml" ]; then
    want=$(awk '/^\[/ { p = ($0 == "[workspace.package]") }
        p && /^version[ \t]*=/ { gsub(/^[^"]*"|".*$/, ""); print; exit }' "$repo/Cargo.toml")
    check "Version $(field Version) is the workspace version $want" test "$(field Version)" = "$want"
fi
check "Architecture is amd64" test "$(field Architecture)" = amd64
for d in libc6 libgmp10 libusb-1.0-0; do
    check "Depends names $d" sh -c "printf '%s\n' '$(field Depends)' | grep -q '\\b$d\\b'"
done
for f in Maintainer Section Priority Description Installed-Size; do
    check "control has $f" test -n "$(field "$f")"
done
check "conffiles is exactly /etc/harmony/config.toml" \
    test "$(cat "$tmp/control/conffiles")" = /etc/harmony/config.toml
for s in postinst prerm postrm; do
    check "$s is executable" test -x "$tmp/control/$s"
    check "$s parses as POSIX sh (dash -n)" dash -n "$tmp/control/$s"
    check "$s uses set -e" grep -qx 'set -e' "$tmp/control/$s"
    if command -v checkbashisms >/dev/null; then
        check "$s has no bashisms" checkbashisms "$tmp/control/$s"
    fi
done

# The unit's key lines.
unit=$tmp/x$unit_path
for l in \
    "Type=notify" "NotifyAccess=main" "WatchdogSec=30s" "Restart=on-failure" \
    "ExecStart=/usr/bin/$pkg run --data-dir /var/lib/harmony --config /etc/harmony/config.toml" \
    "User=harmony" "Group=harmony" "StateDirectory=harmony" "StateDirectoryMode=0700" \
    "LoadCredential=keystore-password:/etc/harmony/credentials/keystore-password" \
    "LoadCredential=hsm-password:/etc/harmony/credentials/hsm-password" \
    "LimitMEMLOCK=64M" "LimitNOFILE=65536" "UMask=0077" \
    "DevicePolicy=closed" "DeviceAllow=char-usb_device rw" \
    "CapabilityBoundingSet=" "AmbientCapabilities=" "NoNewPrivileges=yes" \
    "ProtectSystem=strict" "ProtectHome=yes" "PrivateTmp=yes" "ProtectProc=invisible" \
    "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK" \
    "MemoryDenyWriteExecute=yes" "SystemCallFilter=@system-service" \
    "SystemCallFilter=~@privileged @resources" "SystemCallErrorNumber=EPERM" \
    "SystemCallArchitectures=native" "WantedBy=multi-user.target"; do
    check "unit: $l" grep -qxF -- "$l" "$unit"
done
check "unit: no DynamicUser, no IPAddressDeny" sh -c "! grep -Eq '^(DynamicUser|IPAddressDeny)=' '$unit'"

if command -v systemd-analyze >/dev/null; then
    systemd-analyze security --offline=true "$unit" >"$tmp/security" 2>&1 || true
    exposure=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' "$tmp/security")
    check "systemd-analyze security: exposure ${exposure:-?} <= $max_exposure" \
        awk -v e="$exposure" -v m="$max_exposure" 'BEGIN { exit !(e != "" && e + 0 <= m + 0) }'
    # verify, with ExecStart pointing at the extracted binary (the real path does not exist
    # here); any message (unknown key, bad value) counts as a failure.
    mkdir "$tmp/verify"
    sed "s#^ExecStart=/usr/bin/$pkg #ExecStart=$tmp/x/usr/bin/$pkg #" "$unit" \
        >"$tmp/verify/$pkg.service"
    check "systemd-analyze verify reports nothing" \
        sh -c "out=\$(systemd-analyze verify '$tmp/verify/$pkg.service' 2>&1); printf '%s\n' \"\$out\"; test -z \"\$out\""
else
    bad "systemd-analyze not found: cannot score the unit"
fi

# The default configuration, parsed by the packaged binary.
if "$tmp/x/usr/bin/$pkg" --data-dir "$tmp/nodata" --config "$tmp/x/etc/harmony/config.toml" \
    config show >"$tmp/config" 2>&1; then
    ok "the packaged binary parses /etc/harmony/config.toml (config show)"
    # value SECTION KEY: the key's value in `config show`.
    value() { awk -v s="[$1]" -v k="$2" '/^\[/ { in_s = ($0 == s) } in_s && $1 == k { print $3 }' "$tmp/config"; }
    check "config: rpc.listen is loopback 127.0.0.1:9500" test "$(value rpc listen)" = '"127.0.0.1:9500"'
    check "config: metrics.listen is loopback 127.0.0.1:9900" test "$(value metrics listen)" = '"127.0.0.1:9900"'
    check "config: keys.backend is yubihsm" test "$(value keys backend)" = '"yubihsm"'
    check "config: no test-only consensus switch" \
        sh -c "! grep -Eq '^(double_sign|forge_vrf)_for_tests = true' '$tmp/config'"
else
    bad "the packaged binary parses /etc/harmony/config.toml (config show)"
    sed 's/^/       /' "$tmp/config"
fi

# ---------------------------------------------------------------------------------------
# 2. Maintainer scripts in a fake root
# ---------------------------------------------------------------------------------------
host_state() {
    { cat /etc/passwd /etc/group; ls -la /etc/systemd/system/multi-user.target.wants 2>/dev/null
      ls -ld /var/lib/harmony /etc/harmony 2>&1; } | cksum
}
host_before=$(host_state)

# script ROOT NAME ARGS...: runs a maintainer script with DPKG_ROOT=ROOT.
script() {
    r=$1
    s=$2
    shift 2
    DPKG_ROOT=$r "$tmp/control/$s" "$@" >"$tmp/script.out" 2>&1
}
# run_step ROOT DESCRIPTION SCRIPT ARGS...
run_step() {
    r=$1
    d=$2
    shift 2
    if script "$r" "$@"; then
        ok "$d"
    else
        bad "$d (exit $?)"
        sed 's/^/       | /' "$tmp/script.out"
    fi
}
stat_is() { test "$(stat -c "$1" "$2")" = "$3"; }
uid_in() { awk -F: -v n="$2" '$1 == n { print $3 }' "$1/etc/passwd"; }
gid_in() { awk -F: -v n="$2" '$1 == n { print $3 }' "$1/etc/group"; }
wants=/etc/systemd/system/multi-user.target.wants/$pkg.service

# after_install ROOT LABEL: the state a configured package must leave.
after_install() {
    r=$1
    l=$2
    u=$(uid_in "$r" harmony)
    g=$(gid_in "$r" harmony)
    check "$l: user harmony exists in the fake root (uid ${u:-none})" test -n "$u"
    check "$l: group harmony exists in the fake root (gid ${g:-none})" test -n "$g"
    check "$l: harmony's home is /var/lib/harmony, no login shell" \
        grep -Eq '^harmony:[^:]*:[0-9]+:[0-9]+:[^:]*:/var/lib/harmony:/(usr/)?s?bin/(nologin|false)$' \
        "$r/etc/passwd"
    check "$l: /var/lib/harmony is 0700 harmony:harmony" \
        stat_is '%a %u %g' "$r/var/lib/harmony" "700 $u $g"
    check "$l: /etc/harmony/credentials is 0700 root:root" \
        stat_is '%a %u %g' "$r/etc/harmony/credentials" "700 0 0"
}

# survives ROOT LABEL: the data written after the first install is intact.
survives() {
    check "$2: /var/lib/harmony and its files survive" \
        sh -c "test -d '$1/var/lib/harmony' &&
               test \"\$(cat '$1/var/lib/harmony/guard/guard.log')\" = 'slot 42 signed' &&
               test \"\$(cat '$1/var/lib/harmony/db/mdbx.dat')\" = 'blocks'"
}

fr=$tmp/root
mkdir "$fr"
dpkg-deb -x "$deb" "$fr"

echo "# fake root $fr: fresh install"
run_step "$fr" "postinst configure (fresh install) succeeds" postinst configure ""
after_install "$fr" "fresh install"
check "fresh install: says the service is not started" grep -q "NOT started" "$tmp/script.out"
if command -v systemctl >/dev/null; then
    check "fresh install: unit enabled offline (multi-user.target.wants symlink)" \
        test -L "$fr$wants"
fi

mkdir -p "$fr/var/lib/harmony/guard" "$fr/var/lib/harmony/db"
echo 'slot 42 signed' >"$fr/var/lib/harmony/guard/guard.log"
echo 'blocks' >"$fr/var/lib/harmony/db/mdbx.dat"
u=$(uid_in "$fr" harmony)
chown -R "$u:$(gid_in "$fr" harmony)" "$fr/var/lib/harmony"

echo "# upgrade from 0.0.9"
run_step "$fr" "prerm upgrade succeeds" prerm upgrade 0.1.0
survives "$fr" "after prerm upgrade"
dpkg-deb -x "$deb" "$fr" # dpkg unpacks the new version over the old one
run_step "$fr" "postinst configure 0.0.9 (upgrade) succeeds" postinst configure 0.0.9
survives "$fr" "after upgrade"
after_install "$fr" "upgrade"
check "upgrade: one harmony user, not two" test "$(grep -c '^harmony:' "$fr/etc/passwd")" = 1
check "upgrade: owner of the data unchanged" \
    stat_is '%u' "$fr/var/lib/harmony/guard/guard.log" "$u"

echo "# remove"
run_step "$fr" "prerm remove succeeds" prerm remove
survives "$fr" "after prerm remove"
# What dpkg does between prerm and postrm: delete the package's files except conffiles.
awk '$1 !~ /^d/ { sub(/^\./, "", $NF); print $NF }' "$tmp/contents" |
    grep -vxF -f "$tmp/control/conffiles" | while read -r f; do rm -f "$fr$f"; done
run_step "$fr" "postrm remove succeeds" postrm remove
survives "$fr" "after remove"
check "remove: the conffile stays" test -f "$fr/etc/harmony/config.toml"

echo "# purge"
rm -f "$fr/etc/harmony/config.toml" # dpkg removes conffiles before postrm purge
run_step "$fr" "postrm purge succeeds" postrm purge
survives "$fr" "after purge"
check "purge: says where the data stays" grep -q "/var/lib/harmony" "$tmp/script.out"
check "purge: the enable symlink is gone" test ! -e "$fr$wants" -a ! -L "$fr$wants"
check "purge: /etc/harmony/credentials is kept" test -d "$fr/etc/harmony/credentials"

# ---------------------------------------------------------------------------------------
# 3. Without systemd-sysusers and systemd-tmpfiles
# ---------------------------------------------------------------------------------------
echo "# fresh install without systemd-sysusers and systemd-tmpfiles"
mkdir "$tmp/bin"
old_ifs=$IFS
IFS=:
for d in $PATH; do
    for f in "$d"/*; do
        n=${f##*/}
        case "$n" in systemd-sysusers | systemd-tmpfiles) continue ;; esac
        [ -x "$f" ] && [ ! -e "$tmp/bin/$n" ] && ln -s "$f" "$tmp/bin/$n"
    done
done
IFS=$old_ifs
fr2=$tmp/root2
mkdir "$fr2"
dpkg-deb -x "$deb" "$fr2"
if PATH=$tmp/bin script "$fr2" postinst configure ""; then
    ok "postinst configure (fallback: useradd, mkdir/chown) succeeds"
else
    bad "postinst configure (fallback: useradd, mkdir/chown) succeeds"
    sed 's/^/       | /' "$tmp/script.out"
fi
after_install "$fr2" "fallback install"

check "the host was not touched (users, groups, enabled units, /var/lib/harmony)" \
    test "$(host_state)" = "$host_before"

echo "# $passed passed, $failed failed"
[ "$failed" -eq 0 ]
