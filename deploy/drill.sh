#!/usr/bin/env bash
# The main job: a drill of the sample town on one machine.
# Builds the nodes and the drill runner (release), then runs drills/scenarios/sample-tsunami.toml:
# HQ (embedded broker, TLS only, with a CA made for the run), the broadcaster, one shelter node
# per shelter and the simulated residents, with every fault of the scenario, on a 60x drill
# clock; prints the summary. The report
# (report.json, arrivals.csv, curve.svg) and the run's data and logs go to $EVAC_DRILL_OUT
# (default target/drill). Extra arguments go to `evac-drill run` (e.g. --seed 2, --no-tv,
# --dashboard: the officers' dashboard on this terminal while it runs; quit it with q at the end).
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/packages.sh run
out=${EVAC_DRILL_OUT:-target/drill}
cargo build --release --locked -q -p evac-hq -p evac-shelter -p evac-drills -p evac-dashboard
exec target/release/evac-drill run drills/scenarios/sample-tsunami.toml --tls --out "$out" "$@"
