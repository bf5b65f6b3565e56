#!/usr/bin/env bash
# The `release-lto` build with its machine code laid out by BOLT (Debian `bolt-22`, the LLVM
# of rustc 1.95) from a training run, so that the code a decision runs sits in fewer cache
# lines; with `--pgo`, profile-guided optimisation first (Debian `llvm-22`'s `llvm-profdata`).
# Writes target/bolt/wafbench-bolt. `scripts/main.sh` measures its `--pgo` build (see the
# README, "Latency, the p50 gate, profiles and the report", for what each measured).
#
# Steps: with --pgo, build with `-Cprofile-generate`, run it over the training corpora and
# merge the profiles, and build again with `-Cprofile-use`. Every build keeps relocations
# (BOLT moves functions) and v0 symbol names (legacy names such as `..cmd..coldstart..` stop
# BOLT, which takes them for `.cold` fragments of another function; the PGO builds use the
# same names, so the profile matches). Then write an instrumented copy, run it over the
# training corpora, and lay the binary out from that profile. The training corpora are
# generated here with a seed of their own, never the committed corpora the benchmarks read.
# Usage: bash scripts/bolt.sh [--pgo] [--rules crs|default|PATH]
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  echo "usage: bash scripts/bolt.sh [--pgo] [--rules crs|default|PATH]" >&2
  exit 2
}

rules=crs
[ -d /usr/share/modsecurity-crs ] || rules=default
pgo=0
while [ $# -gt 0 ]; do
  case "$1" in
    --pgo) pgo=1; shift ;;
    --rules) [ $# -ge 2 ] || usage; rules=$2; shift 2 ;;
    *) usage ;;
  esac
done

BOLT=${LLVM_BOLT:-llvm-bolt-22}
MERGE=${MERGE_FDATA:-merge-fdata-22}
PROFDATA=${LLVM_PROFDATA:-llvm-profdata-22}
need=()
command -v "$BOLT" >/dev/null && command -v "$MERGE" >/dev/null || need+=(bolt-22)
[ "$pgo" = 0 ] || command -v "$PROFDATA" >/dev/null || need+=(llvm-22)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}") >&2
  else
    echo "bolt.sh: install Debian's ${need[*]} (or set LLVM_BOLT, MERGE_FDATA, LLVM_PROFDATA)" >&2
    exit 2
  fi
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The PGO profiles sit at fixed paths under target/, so that the flags cargo sees (and
# with them its fingerprints) are the same from one run to the next: a second run does not
# make the profile-generating build again unless sources changed (7 minutes -> 3 here).
prof=$PWD/target/bolt-profiles
flags="-Clink-arg=-Wl,--emit-relocs -Csymbol-mangling-version=v0"
export CARGO_TARGET_DIR=target/bolt

# The training corpora, written by whichever build comes first.
train() {
  local bin=$1
  for p in mixed benign; do
    [ -f "$work/$p.jsonl" ] ||
      "$bin" corpus gen --seed 7719 --count 1500 --profile "$p" --out "$work/$p.jsonl" >&2
  done
}

if [ "$pgo" = 1 ]; then
  rm -rf "$prof/raw"
  mkdir -p "$prof"
  CARGO_TARGET_DIR=target/bolt-pgo-gen RUSTFLAGS="$flags -Cprofile-generate=$prof/raw" \
    WAFBENCH_BUILD=pgo-training cargo build --profile release-lto -p wafbench
  gen=target/bolt-pgo-gen/release-lto/wafbench
  train "$gen"
  for p in mixed benign; do
    for e in native lua-ffi; do
      "$gen" eval --rules "$rules" --paranoia 1 --corpus "$work/$p.jsonl" --engine "$e" >/dev/null
    done
  done
  # rustc tracks this file, and training does not write the same counts twice, so the
  # profile-use build is made again every run; the profile-generating one is not.
  "$PROFDATA" merge -o "$prof/pgo.profdata" "$prof/raw" >&2
  flags="$flags -Cprofile-use=$prof/pgo.profdata"
fi

# The label reports carry (`build` in `latency --json` and the report's stamp).
label=bolt
[ "$pgo" = 0 ] || label=pgo+bolt
RUSTFLAGS="$flags" WAFBENCH_BUILD=$label cargo build --profile release-lto -p wafbench
bin=target/bolt/release-lto/wafbench
train "$bin"

"$BOLT" "$bin" -instrument -o "$work/instrumented" \
  -instrumentation-file="$work/prof" -instrumentation-file-append-pid >"$work/bolt.log" 2>&1 ||
  { cat "$work/bolt.log" >&2; exit 1; }
for p in mixed benign; do
  "$work/instrumented" latency --rules "$rules" --paranoia 1 --corpus "$work/$p.jsonl" \
    --engines native,lua,lua-ffi --repeat 1 --warmup 1 >/dev/null
done
"$MERGE" "$work"/prof.*.fdata >"$work/prof.fdata" 2>"$work/merge.log" ||
  { cat "$work/merge.log" >&2; exit 1; }
"$BOLT" "$bin" -o target/bolt/wafbench-bolt -data="$work/prof.fdata" \
  -reorder-blocks=ext-tsp -reorder-functions=cdsort -split-functions -split-all-cold \
  >"$work/bolt.log" 2>&1 || { cat "$work/bolt.log" >&2; exit 1; }
echo "wrote target/bolt/wafbench-bolt$([ "$pgo" = 1 ] && echo ' (PGO, then BOLT)')" >&2
