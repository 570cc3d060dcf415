#!/usr/bin/env bash
# Proves the Mosquitto tests work from a clone under a private (0700) directory, as /root is:
# Mosquitto started as root drops to user `mosquitto` unless a test's config says `user root`,
# and that user cannot read files under such a directory.
# Cheap: only the tests that start Mosquitto run. The clone builds into a target directory of
# its own (target/private-clone, kept between runs): sharing the checkout's would overwrite
# its binaries (target/debug/evac-*) with the clone's.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$repo/target}/private-clone"
private="$(mktemp -d)" # mode 0700
trap 'rm -rf "$private"' EXIT
[ "$(stat -c %a "$private")" = 700 ] || { echo "mktemp -d did not make a 0700 directory" >&2; exit 1; }
git clone --quiet --no-hardlinks "$repo" "$private/evac"
cd "$private/evac"
export CARGO_TARGET_DIR="$target"
cargo test --locked -p evac-hq --test mosquitto
cargo test --locked -p evac-shelter --test replication mosquitto
cargo test --locked -p evac-broadcaster --test mqtt
