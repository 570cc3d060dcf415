#!/usr/bin/env bash
# Proves the Mosquitto tests work from a clone under a private (0700) directory, as /root is:
# Mosquitto started as root drops to user `mosquitto` unless a test's config says `user root`,
# and that user cannot read files under such a directory.
# Cheap: only the tests that start Mosquitto run, and the build reuses the warm target
# directory (only the workspace's own crates are compiled again).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$repo/target}"
private="$(mktemp -d)" # mode 0700
trap 'rm -rf "$private"' EXIT
[ "$(stat -c %a "$private")" = 700 ] || { echo "mktemp -d did not make a 0700 directory" >&2; exit 1; }
git clone --quiet --no-hardlinks "$repo" "$private/evac"
cd "$private/evac"
export CARGO_TARGET_DIR="$target"
cargo test --locked -p evac-hq --test mosquitto
cargo test --locked -p evac-shelter --test replication mosquitto
cargo test --locked -p evac-broadcaster --test mqtt
