#!/usr/bin/env bash
# The test command: installs what the tests need, then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/packages.sh test
# The stock-TV tests (broadcaster/tests/bml.rs) drive web-bml in Chromium with playwright-core
# (no browser download); installed once, kept in /opt/webbml-driver.
export WEBBML_DRIVER_DIR="${WEBBML_DRIVER_DIR:-/opt/webbml-driver}"
if ! grep -qs '"version": "1.65.2"' "$WEBBML_DRIVER_DIR/node_modules/playwright-core/package.json"; then
  command -v npm >/dev/null || apt-get install -y -qq --no-install-recommends npm
  npm install --prefix "$WEBBML_DRIVER_DIR" playwright-core@1.65.2
fi
cargo test --workspace --locked "$@"
# The Mosquitto tests again from a clone under a private (0700) directory, as /root is.
bash .ci/private-clone.sh
