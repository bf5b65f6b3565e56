#!/usr/bin/env bash
# The project's test command (the README's second set-up command): every crate's unit and
# integration tests, built with optimisations because several run whole rule sets and corpora.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --release --no-fail-fast "$@"
