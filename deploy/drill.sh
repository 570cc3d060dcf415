#!/usr/bin/env bash
# The main job: a drill of the sample town on one machine.
# Builds the nodes and the drill runner (release), then runs drills/scenarios/sample-tsunami.toml:
# HQ (embedded broker, TLS only, with a CA made for the run), the broadcaster, one shelter node
# per shelter and the simulated residents, with every fault of the scenario, on a 60x drill
# clock; prints the summary. The report
# (report.json, arrivals.csv, curve.svg) and the run's data and logs go to $EVAC_DRILL_OUT
# (default target/drill). Extra arguments go to `evac-drill run` (e.g. --seed 2, --no-tv,
# --dashboard: the officers' dashboard on this terminal while it runs; quit it with q at the end).
# A first argument ending in .toml is another scenario instead of the sample's, e.g.
#   bash deploy/drill.sh drills/scenarios/city-300k.toml   (the 300,000-household city; long)
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/packages.sh run
out=${EVAC_DRILL_OUT:-target/drill}
cargo build --release --locked -q -p evac-hq -p evac-shelter -p evac-drills -p evac-dashboard
scenario=drills/scenarios/sample-tsunami.toml
if [[ "${1:-}" == *.toml ]]; then
  scenario=$1
  shift
fi
exec target/release/evac-drill run "$scenario" --tls --out "$out" "$@"
