#!/usr/bin/env bash
# Rebuilds contracts/build/*.json from contracts/*.sol with a pinned solcjs (npm package `solc`).
# The compiler is installed once into contracts/.solc (ignored by git) and reused afterwards;
# re-running with unchanged sources rewrites byte-identical artifacts.
#
# Usage: scripts/build_contracts.sh            # builds every contract listed in CONTRACTS
# Env:   SOLC_VERSION (default below), EVM_VERSION (default cancun), SOLC_DIR, NPM
set -euo pipefail

SOLC_VERSION="${SOLC_VERSION:-0.8.28}"
EVM_VERSION="${EVM_VERSION:-cancun}"
CONTRACTS=(ERC20)

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
contracts_dir="$root/contracts"
solc_dir="${SOLC_DIR:-$contracts_dir/.solc}"
npm="${NPM:-npm}"

err() { echo "build_contracts: error: $*" >&2; exit 1; }

command -v node >/dev/null 2>&1 || err "node not found (need Node.js >= 18: apt-get install nodejs npm)"
command -v "$npm" >/dev/null 2>&1 || err "$npm not found (need npm to install solc@$SOLC_VERSION)"

installed_version() {
  node -e 'try { process.stdout.write(require(process.argv[1] + "/node_modules/solc/package.json").version) } catch (e) {}' "$solc_dir"
}

if [ "$(installed_version)" != "$SOLC_VERSION" ]; then
  echo "installing solc@$SOLC_VERSION into $solc_dir"
  mkdir -p "$solc_dir"
  # A private package.json keeps npm from walking up into some other project's tree.
  [ -f "$solc_dir/package.json" ] || printf '{\n  "private": true\n}\n' >"$solc_dir/package.json"
  if ! (cd "$solc_dir" && "$npm" install --no-audit --no-fund --save-exact --loglevel=error "solc@$SOLC_VERSION"); then
    err "npm install solc@$SOLC_VERSION failed (is the npm registry reachable?)"
  fi
  got="$(installed_version)"
  [ "$got" = "$SOLC_VERSION" ] || err "after install, $solc_dir has solc '${got:-none}', expected $SOLC_VERSION"
else
  echo "using solc@$SOLC_VERSION from $solc_dir"
fi

node "$root/scripts/solc_build.js" \
  --solc "$solc_dir" \
  --expect-version "$SOLC_VERSION" \
  --evm-version "$EVM_VERSION" \
  "$contracts_dir" "${CONTRACTS[@]}"
