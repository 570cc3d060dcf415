#!/usr/bin/env bash
# The main job: a drill of the sample town on one machine.
# Until the drill runner exists, it generates the sample town and prints its summary.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/packages.sh run
out=${EVAC_DRILL_OUT:-target/drill}
mkdir -p "$out"
cargo run --release --locked -q -p evac-maps -- generate --households 3000 --shelters 12 --seed 1 --out "$out"
cargo run --release --locked -q -p evac-maps -- summary "$out/town.geojson"
