#!/usr/bin/env bash
# Builds evac's binaries once (profile `dist`: optimised, no debug info, stripped) and installs
# them with what a node needs beside them. Run as root from the source tree:
#
#   deploy/install.sh                  # binaries into /usr/local/bin, data into /usr/local/share/evac
#   deploy/install.sh --units          # also the systemd units and the service users
#   PREFIX=/opt/evac deploy/install.sh # elsewhere
#   deploy/install.sh --no-build       # install what target/dist already holds (built elsewhere)
#   TARGET=aarch64-unknown-linux-gnu deploy/install.sh --no-build   # a cross build (deploy/aarch64.md)
#
# Installs: evac-hq, evac-shelter, evac-broadcaster, evac-stb, evac-maps (and the dashboard
# and drill binaries when built); the public J-LIS JPKI CA certificates into
# /usr/share/evac/jpki (the path deploy/shelter.example.toml names); the sample town and the
# example configs into $PREFIX/share/evac. It never overwrites a config in /etc/evac.
set -euo pipefail
cd "$(dirname "$0")/.."

prefix=${PREFIX:-/usr/local}
share=${SHAREDIR:-/usr/share/evac}      # the JPKI roots (the shelter example names this path)
etc=${SYSCONFDIR:-/etc/evac}
unitdir=${UNITDIR:-/etc/systemd/system}
profile=${PROFILE:-dist}
build=1
units=0
for a in "$@"; do
  case "$a" in
    --no-build) build=0 ;;
    --units) units=1 ;;
    *) echo "usage: $0 [--no-build] [--units]" >&2; exit 2 ;;
  esac
done

bins=(evac-hq evac-shelter evac-broadcaster evac-stb evac-maps)
pkgs=(-p evac-hq -p evac-shelter -p evac-broadcaster -p evac-maps)
# The dashboard and the drill runner are built too, and installed when they have a binary.
pkgs+=(-p evac-dashboard -p evac-drills)
extras=(evac-dashboard evac-drills evac-drill)

target_args=()
tdir=${CARGO_TARGET_DIR:-target}
out=$tdir/$profile
if [ -n "${TARGET:-}" ]; then
  target_args=(--target "$TARGET")
  out=$tdir/$TARGET/$profile
fi

if [ "$build" = 1 ]; then
  bash deploy/packages.sh run
  cargo build --locked --profile "$profile" "${target_args[@]}" "${pkgs[@]}"
fi

install -d "$prefix/bin" "$prefix/share/evac/examples" "$share/jpki"
for b in "${extras[@]}"; do
  [ -x "$out/$b" ] && bins+=("$b")
done
for b in "${bins[@]}"; do
  if [ ! -x "$out/$b" ]; then
    echo "install: $out/$b is missing; build it first (drop --no-build)" >&2
    exit 1
  fi
  install -m 0755 "$out/$b" "$prefix/bin/$b"
done
install -m 0644 maps/data/town.geojson "$prefix/share/evac/town.geojson"
install -m 0644 deploy/*.example.toml "$prefix/share/evac/examples/"

# The JPKI roots are public data kept beside the project, not in it.
jpki=${EVAC_JPKI_DIR:-../shared/data/jpki}
if ls "$jpki"/auth_ca_*.pem >/dev/null 2>&1; then
  install -m 0644 "$jpki"/auth_ca_*.pem "$share/jpki/"
else
  echo "install: no JPKI CA certificates in $jpki (set EVAC_JPKI_DIR); put J-LIS's user-authentication" \
       "CA certificates (auth_ca_2023.pem, ...) into $share/jpki before starting a shelter" >&2
fi

install -d -m 0755 "$etc"
if [ "$units" = 1 ]; then
  for u in evac-hq evac-shelter evac-broadcaster; do
    id -u "$u" >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin "$u"
  done
  # Shelter nodes talk to pcscd, which lets only members of its group in on some systems.
  getent group pcscd >/dev/null && usermod -a -G pcscd evac-shelter || true
  install -d "$unitdir"
  install -m 0644 deploy/systemd/*.service "$unitdir/"
  command -v systemctl >/dev/null && systemctl daemon-reload || true
  echo "units installed: systemctl enable --now evac-hq (town hall), evac-shelter (each shelter), evac-broadcaster (head-end)"
fi
for b in "${bins[@]}"; do printf '%s ' "$prefix/bin/$b"; done
echo
ls -l "$out/evac-hq" "$out/evac-shelter" | awk '{print "size: " $5 " bytes " $NF}'
