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

# The measuring build: the release profile with fat LTO and one codegen unit (Cargo.toml's
# `release-lto`), 1-2% fewer instructions and 2% fewer cold-cache lines per decision than
# `--release` (callgrind gauges, CRS PL1, mixed first 300).
cargo build --profile release-lto -p wafbench
exec target/release-lto/wafbench report --out reports/latest "$@"
