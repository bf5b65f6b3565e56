#!/usr/bin/env bash
# Checks that two wafbench binaries make the same decisions, byte for byte (`eval` output),
# on the committed corpora: CRS at paranoia 1 and 4 when it is installed, else the embedded
# default rule set; native and lua-ffi. `.ci/run` holds the main job's measuring build
# (profile-guided, then laid out by BOLT) to the plain release build with it: a layout or
# profile-use miscompilation would show here before in a report.
# Usage: bash scripts/same-decisions.sh BIN_A BIN_B
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: bash scripts/same-decisions.sh BIN_A BIN_B" >&2; exit 2; }
# The binaries as given, from where the script was called; then the corpora from the root.
a=$(realpath "$1")
b=$(realpath "$2")
cd "$(dirname "$0")/.."
sets=("--rules crs --paranoia 1" "--rules crs --paranoia 4")
[ -d /usr/share/modsecurity-crs ] || sets=("--rules default")
fail=0
checked=0
for c in corpora/benign.jsonl corpora/attack.jsonl corpora/mixed.jsonl; do
  for s in "${sets[@]}"; do
    for e in native lua-ffi; do
      # shellcheck disable=SC2086 # $s holds several arguments
      da=$("$a" eval $s --corpus "$c" --engine "$e" | sha256sum)
      # shellcheck disable=SC2086
      db=$("$b" eval $s --corpus "$c" --engine "$e" | sha256sum)
      checked=$((checked + 1))
      if [ "$da" != "$db" ]; then
        echo "same-decisions: $c, $s, $e: the two binaries decide differently" >&2
        fail=1
      fi
    done
  done
done
[ "$fail" = 0 ] || exit 1
echo "same-decisions: $a and $b agree on all $checked corpus/rules/engine runs"
