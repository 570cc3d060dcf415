#!/bin/sh
# Validates PFIF 1.4 documents against the PFIF 1.4 specification's own schema
# (pfif-1.4.rnc, RELAX NG compact syntax): rnc2rng (Debian python3-rnc2rng) turns it into
# RELAX NG's XML syntax, xmllint (Debian libxml2-utils) validates with it.
#   hq/tests/data/pfif/validate.sh FILE...
set -eu
here=$(dirname "$0")
rng=$(mktemp)
trap 'rm -f "$rng"' EXIT
rnc2rng "$here/pfif-1.4.rnc" > "$rng"
xmllint --noout --relaxng "$rng" "$@"
