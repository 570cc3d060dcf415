#!/usr/bin/env bash
# Installs the Debian packages evac needs, only those missing, so it is safe to run again.
#   deploy/packages.sh run    packages to run a drill
#   deploy/packages.sh test   packages the test suite needs as well
set -euo pipefail

run_pkgs=(pkg-config libpcsclite-dev)
# chromium and nodejs: the stock-TV tests run web-bml in headless Chromium (broadcaster/tests/bml.rs);
# libxml2-utils and python3-rnc2rng: the PFIF export is validated against the PFIF 1.4 schema
test_pkgs=(pcscd vsmartcard-vpcd mosquitto mosquitto-clients ffmpeg python3 python3-crcmod openssl tmux iproute2 systemd chromium nodejs libxml2-utils python3-rnc2rng)

case "${1:-run}" in
  run) wanted=("${run_pkgs[@]}") ;;
  test) wanted=("${run_pkgs[@]}" "${test_pkgs[@]}") ;;
  *) echo "usage: $0 run|test" >&2; exit 2 ;;
esac

missing=()
for p in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${missing[*]}; run this as root or install them" >&2
  exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Don't let package scripts start system services (the tests start their own pcscd and
# brokers on ports of their choosing).
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}"
