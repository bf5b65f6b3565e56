#!/bin/sh
# Builds a small report with the wafbench binary and checks it: every SVG parses and the
# rule flamegraphs name rules, index.html is self-contained with filled tables, the stamps
# are there, flame-diff and profile work, and headless Chromium renders the page (skipped
# with a notice without chromium unless CI=true). The checks live in
# bench/tests/report_check.rs; this script is the one-line way to run them.
set -eu
cd "$(dirname "$0")/.."
exec cargo test -p wafbench --test report_check -- --test-threads=2 "$@"
