#!/usr/bin/env bash
# The test command: installs what the tests need, then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/packages.sh test
cargo test --workspace --locked "$@"
# The Mosquitto tests again from a clone under a private (0700) directory, as /root is.
bash .ci/private-clone.sh
