#!/usr/bin/env bash
# Opt-in: the `release-lto` build with its machine code laid out by BOLT (Debian `bolt-22`,
# the LLVM of rustc 1.95) from a training run, so that the code a decision runs sits in fewer
# cache lines. Writes target/bolt/wafbench-bolt; `scripts/main.sh` keeps the plain build (see
# the README, "Latency, the p50 gate, profiles and the report", for what it measured).
#
# Steps: build with relocations kept (BOLT moves functions) and v0 symbol names (legacy names
# such as `..cmd..coldstart..` stop BOLT, which takes them for `.cold` fragments of another
# function), write an instrumented copy, run it over training corpora generated here with a
# seed of its own (not the committed corpora the benchmarks read), then lay the binary out
# from that profile.
# Usage: bash scripts/bolt.sh [--rules crs|default|PATH]
set -euo pipefail
cd "$(dirname "$0")/.."

rules=crs
[ -d /usr/share/modsecurity-crs ] || rules=default
if [ $# -eq 2 ] && [ "$1" = --rules ]; then
  rules=$2
elif [ $# -ne 0 ]; then
  echo "usage: bash scripts/bolt.sh [--rules crs|default|PATH]" >&2
  exit 2
fi

BOLT=${LLVM_BOLT:-llvm-bolt-22}
MERGE=${MERGE_FDATA:-merge-fdata-22}
if ! command -v "$BOLT" >/dev/null || ! command -v "$MERGE" >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bolt-22) >&2
  else
    echo "bolt.sh: $BOLT or $MERGE not found; install Debian's bolt-22 (or set LLVM_BOLT and MERGE_FDATA)" >&2
    exit 2
  fi
fi

export CARGO_TARGET_DIR=target/bolt
RUSTFLAGS="-Clink-arg=-Wl,--emit-relocs -Csymbol-mangling-version=v0" \
  cargo build --profile release-lto -p wafbench
bin=target/bolt/release-lto/wafbench

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$BOLT" "$bin" -instrument -o "$work/instrumented" \
  -instrumentation-file="$work/prof" -instrumentation-file-append-pid >"$work/bolt.log" 2>&1 ||
  { cat "$work/bolt.log" >&2; exit 1; }
for p in mixed benign; do
  "$bin" corpus gen --seed 7719 --count 1500 --profile "$p" --out "$work/$p.jsonl" >&2
  "$work/instrumented" latency --rules "$rules" --paranoia 1 --corpus "$work/$p.jsonl" \
    --engines native,lua,lua-ffi --repeat 1 --warmup 1 >/dev/null
done
"$MERGE" "$work"/prof.*.fdata >"$work/prof.fdata" 2>"$work/merge.log" ||
  { cat "$work/merge.log" >&2; exit 1; }
"$BOLT" "$bin" -o target/bolt/wafbench-bolt -data="$work/prof.fdata" \
  -reorder-blocks=ext-tsp -reorder-functions=cdsort -split-functions -split-all-cold \
  >"$work/bolt.log" 2>&1 || { cat "$work/bolt.log" >&2; exit 1; }
echo "wrote target/bolt/wafbench-bolt" >&2
