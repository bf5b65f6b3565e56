#!/usr/bin/env bash
# The main job (the README's first set-up command): build wafbench and write the report to
# reports/latest (index.html, report.md, report.json). With CRS installed the report covers
# CRS at paranoia 1; without it, the embedded default rule set. The corpus is
# corpora/mixed.jsonl. Run as root on Debian, it first installs the ModSecurity peer and CRS
# when they are missing (set WAFBENCH_NO_APT=1 to skip that).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ] && [ -z "${WAFBENCH_NO_APT:-}" ] && command -v apt-get >/dev/null; then
  missing=()
  for p in modsecurity-crs libmodsecurity3; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]} (the ModSecurity peer and CRS)" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") >&2 ||
      echo "could not install ${missing[*]}; the report runs without them" >&2
  fi
fi

# The measuring build: `scripts/bolt.sh --pgo`, the `release-lto` profile (fat LTO, one
# codegen unit) built with profile-guided optimisation and then laid out by BOLT, both
# trained on corpora of its own. The engines' p50 measured lower than the plain
# `release-lto` build's in most alternating pairs (README, "The measuring build"); it takes
# about seven more minutes (three on a later run) and Debian's `llvm-22` and `bolt-22`,
# which bolt.sh installs when run as root. Set
# WAFBENCH_PLAIN_BUILD=1 for the plain build; it is also the fallback when that build fails
# (no root to install the tools, say), and the report's stamp says which build it measured.
bin=
if [ -z "${WAFBENCH_PLAIN_BUILD:-}" ]; then
  if bash scripts/bolt.sh --pgo; then
    bin=target/bolt/wafbench-bolt
  else
    echo "main.sh: the PGO+BOLT build failed; measuring the plain release-lto build" >&2
  fi
fi
if [ -z "$bin" ]; then
  cargo build --profile release-lto -p wafbench
  bin=target/release-lto/wafbench
fi
exec "$bin" report --out reports/latest "$@"
