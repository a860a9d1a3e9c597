#!/usr/bin/env bash
# Installs the Debian packages the build needs (as root), or prints the exact command.
set -euo pipefail
# prometheus (with promtool) and prometheus-node-exporter: the observability tests start them;
# systemd: systemd-analyze scores the unit; dpkg-dev, fakeroot, binutils: the package.
PKGS=(libclang-dev pkg-config build-essential libusb-1.0-0-dev libgmp-dev python3 python3-venv
  iproute2 curl prometheus prometheus-node-exporter systemd dpkg-dev fakeroot binutils)
missing=()
for p in "${PKGS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ]; then
    echo "installing missing system packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  else
    echo "missing system packages: ${missing[*]}" >&2
    echo "run: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust with rustup (https://rustup.rs), then re-run" >&2
  exit 1
fi
