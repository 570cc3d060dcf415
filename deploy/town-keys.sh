#!/usr/bin/env bash
# Makes everything secret a town needs, in one folder to hand out host by host:
#   - HQ's signing key and the keys_dir HQ trusts (one key per shelter node and officer);
#   - each shelter's node key, each officer's and broadcaster's key;
#   - a random MQTT password per user, the embedded broker's password file (evac-hq passwd)
#     and, when mosquitto_passwd is installed, Mosquitto's password file and ACL;
#   - the broker's TLS CA, certificate and key (openssl), the certificate naming the broker's
#     host name and addresses;
#   - a certificate for HQ's answer endpoint ([answers] in hq.toml) under the same CA, for
#     --answers-host (default the broker's host): reference boxes (evac-stb, `ca` =
#     the town CA) check it. Stock TVs check HQ's certificate against the roots built into
#     the TV, which the town cannot change: for them the endpoint needs a certificate from a
#     public CA (ACME or the municipality's); this one is for boxes and tests.
#
#   deploy/town-keys.sh OUT --shelters 1,2,3 [--officers tanaka,sato] [--viewers hall]
#       [--broadcasters catv] [--broker-host hq.shiomihama.example] [--broker-ip 198.51.100.1]
#       [--answers-host answers.shiomihama.example]
#
# OUT must not exist yet (keys are never overwritten). Layout:
#   OUT/hq/        hq.key hq.pub keys/ mqtt-passwords          -> HQ's /etc/evac
#   OUT/shelter-N/ shelter-N.key shelter-N.pub hq.pub card.key ca.crt password
#                                                                 -> shelter N's /etc/evac
#   OUT/officer-NAME/, OUT/broadcaster-NAME/, OUT/viewer-NAME/ likewise
#   OUT/tls/       ca.crt ca.key (keep the CA key offline) broker.crt broker.key
#                  answers.crt answers.key (HQ's [answers] cert and key)
#   OUT/mosquitto/ passwd acl                                   -> the town Mosquitto
#   OUT/passwords.txt  every user's password in clear: hand out, then delete
# Tools: evac-hq, evac-shelter, evac-broadcaster on PATH (or EVAC_HQ=..., EVAC_SHELTER=...,
# EVAC_BROADCASTER=...), openssl.
set -euo pipefail

usage() { sed -n 2,27p "$0" >&2; exit 2; }
[ $# -ge 1 ] || usage
out=$1; shift
shelters=""; officers=""; viewers=""; broadcasters=""; host=""; ips=""; answers_host=""
while [ $# -gt 0 ]; do
  case "$1" in
    --shelters) shelters=$2; shift 2 ;;
    --officers) officers=$2; shift 2 ;;
    --viewers) viewers=$2; shift 2 ;;
    --broadcasters) broadcasters=$2; shift 2 ;;
    --broker-host) host=$2; shift 2 ;;
    --broker-ip) ips="$ips,$2"; shift 2 ;;
    --answers-host) answers_host=$2; shift 2 ;;
    *) usage ;;
  esac
done
[ -n "$shelters" ] || { echo "town-keys: --shelters is required (the ids in the town registry)" >&2; exit 2; }
if [ -e "$out" ]; then echo "town-keys: $out exists; keys are never overwritten" >&2; exit 1; fi
hq_bin=${EVAC_HQ:-evac-hq}
shelter_bin=${EVAC_SHELTER:-evac-shelter}
bc_bin=${EVAC_BROADCASTER:-evac-broadcaster}
split() { tr ',' ' ' <<<"$1"; }

umask 077
mkdir -p "$out/hq/keys" "$out/tls" "$out/mosquitto"
"$hq_bin" keygen --out "$out/hq/hq" >/dev/null
: > "$out/passwords.txt"
: > "$out/mosquitto/acl"

# password USER: a fresh random password, recorded for the embedded broker, Mosquitto and the
# hand-out list; prints it.
password() {
  local pw
  pw=$(openssl rand -hex 16)
  printf '%s' "$pw" | "$hq_bin" passwd --file "$out/hq/mqtt-passwords" --user "$1"
  if command -v mosquitto_passwd >/dev/null; then
    if [ -e "$out/mosquitto/passwd" ]; then
      mosquitto_passwd -b "$out/mosquitto/passwd" "$1" "$pw"
    else
      mosquitto_passwd -c -b "$out/mosquitto/passwd" "$1" "$pw"
    fi
  fi
  printf '%s %s\n' "$1" "$pw" >> "$out/passwords.txt"
  printf '%s' "$pw"
}

acl() { printf '%s\n' "$@" >> "$out/mosquitto/acl"; }

acl "# Made by deploy/town-keys.sh: the rights of deploy/mosquitto/acl for this town's users." \
    "user hq" "topic readwrite evac/v1/#" ""
password hq > "$out/hq/mqtt-password"

# node DIR NAME TOOL: a key pair in DIR, HQ's public key and the CA beside it.
node() {
  mkdir -p "$out/$1"
  "$3" keygen --out "$out/$1/$2" >/dev/null
  cp "$out/hq/hq.pub" "$out/$1/hq.pub"
}

for s in $(split "$shelters"); do
  node "shelter-$s" "shelter-$s" "$shelter_bin"
  "$hq_bin" card-key --hq-key "$out/hq/hq.key" --out "$out/shelter-$s/card.key" >/dev/null
  cp "$out/shelter-$s/shelter-$s.pub" "$out/hq/keys/"
  password "shelter-$s" > "$out/shelter-$s/password"
  acl "user shelter-$s" "topic write evac/v1/+/shelter/$s/events" "topic write evac/v1/+/shelter/$s/state" \
      "topic read evac/v1/+/shelter/$s/ack" "topic read evac/v1/+/registry/#" ""
done
for o in $(split "$officers"); do
  node "officer-$o" "officer-$o" "$hq_bin"
  cp "$out/officer-$o/officer-$o.pub" "$out/hq/keys/"
  password "officer-$o" > "$out/officer-$o/password"
  acl "user officer-$o" "topic write evac/v1/+/cmd/$o" "topic read evac/v1/+/cmd/$o/reply" \
      "topic read evac/v1/+/status" "topic read evac/v1/+/status/part/+" "topic read evac/v1/+/orders" "topic read evac/v1/+/air/+" \
      "topic read evac/v1/+/registry" "topic read evac/v1/+/registry/#" "topic read evac/v1/+/alerts" "topic read evac/v1/+/shelter/+/state" ""
done
for v in $(split "$viewers"); do
  mkdir -p "$out/viewer-$v"
  cp "$out/hq/hq.pub" "$out/viewer-$v/hq.pub"
  password "viewer-$v" > "$out/viewer-$v/password"
  acl "user viewer-$v" "topic read evac/v1/+/status" "topic read evac/v1/+/status/part/+" "topic read evac/v1/+/orders" \
      "topic read evac/v1/+/air/+" "topic read evac/v1/+/registry" "topic read evac/v1/+/registry/#" "topic read evac/v1/+/alerts" "topic read evac/v1/+/shelter/+/state" ""
done
for b in $(split "$broadcasters"); do
  node "broadcaster-$b" "broadcaster-$b" "$bc_bin"
  password "broadcaster-$b" > "$out/broadcaster-$b/password"
  acl "user broadcaster-$b" "topic read evac/v1/+/orders" "topic read evac/v1/+/air/#" \
      "topic readwrite evac/v1/+/alerts" ""
done

# The broker's TLS: a town CA (10 years) and the broker's certificate (2 years) for its host
# name and addresses. Clients trust only this CA (ca.crt), never the system's.
san="DNS:localhost,IP:127.0.0.1"
[ -n "$host" ] && san="DNS:$host,$san"
for ip in $(split "${ips#,}"); do san="$san,IP:$ip"; done
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
  -subj "/CN=evac town CA" -keyout "$out/tls/ca.key" -out "$out/tls/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -subj "/CN=${host:-evac broker}" -keyout "$out/tls/broker.key" -out "$out/tls/broker.csr" 2>/dev/null
openssl x509 -req -in "$out/tls/broker.csr" -CA "$out/tls/ca.crt" -CAkey "$out/tls/ca.key" \
  -CAcreateserial -days 730 -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$san") \
  -out "$out/tls/broker.crt" 2>/dev/null
# HQ's answer endpoint: the same CA, its own key (2 years), its host name and the broker's
# addresses (HQ serves both).
answers_host=${answers_host:-$host}
asan="$san"
[ -n "$answers_host" ] && [ "$answers_host" != "$host" ] && asan="DNS:$answers_host,$asan"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -subj "/CN=${answers_host:-evac answers}" -keyout "$out/tls/answers.key" -out "$out/tls/answers.csr" 2>/dev/null
openssl x509 -req -in "$out/tls/answers.csr" -CA "$out/tls/ca.crt" -CAkey "$out/tls/ca.key" \
  -CAcreateserial -days 730 -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$asan") \
  -out "$out/tls/answers.crt" 2>/dev/null
rm -f "$out/tls/broker.csr" "$out/tls/answers.csr" "$out/tls/ca.srl"
for d in "$out"/shelter-* "$out"/officer-* "$out"/broadcaster-* "$out"/viewer-*; do
  [ -d "$d" ] && cp "$out/tls/ca.crt" "$d/ca.crt"
done
cp "$out/tls/ca.crt" "$out/hq/ca.crt"
chmod 0644 "$out"/*/*.pub "$out"/*/ca.crt "$out/tls/broker.crt" "$out/tls/answers.crt"
echo "town keys in $out: hand each folder to its host; keep tls/ca.key offline; delete passwords.txt once handed out"
