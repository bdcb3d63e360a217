#!/usr/bin/env bash
# make coverage: runs the test tiers of `make test` against an instrumented
# build and writes the report.
#
#   tests/coverage.sh COV_BUILD OUT_DIR
#
# COV_BUILD  a tree built with `--coverage -DFLIP_COVERAGE -O0` (the Makefile's
#            coverage target builds it); its counters are zeroed first.
# OUT_DIR    gets the HTML report (OUT_DIR/index.html) and the lcov
#            tracefiles (OUT_DIR/lcov/).
#
# Runs: the unit tests (each forked child flushes its counters:
# tests/lib/runner.c), every integration script (nodes are stopped with
# SIGTERM in cleanup, so they leave through exit and write their counters:
# tests/integration/lib.sh) and tests/chaos/test_fixture_stress.sh (seeds
# 1..2000). Left out: the quick chaos pass, unless COVERAGE_CHAOS=1 (about
# 3 minutes more), and the fuzz smoke test, whose clang-built harnesses
# write no gcov counters.
#
# Counted: server/ raft/ storage/ client/ proto/ lib/ (generated protobuf
# code, tests/ and bench/ are not). The output ends with one line per folder:
#   coverage FOLDER lines L% branches B%
# The exit status is non-zero when a test failed (the figures are still
# written, from that run).
set -uo pipefail

[ $# -eq 2 ] || {
    echo "usage: tests/coverage.sh COV_BUILD OUT_DIR" >&2
    exit 2
}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2
BUILD=$(cd "$1" && pwd) || exit 2
OUT=$2
FOLDERS="server raft storage client proto lib"
RC="--rc lcov_branch_coverage=1"

command -v lcov >/dev/null && command -v genhtml >/dev/null || {
    echo "coverage: lcov is not installed (deploy/install-deps.sh --coverage)" >&2
    exit 2
}
[ -x "$BUILD/tests/unit" ] || {
    echo "coverage: $BUILD is not built" >&2
    exit 2
}

rm -rf "$OUT"
mkdir -p "$OUT/lcov"
find "$BUILD" -name '*.gcda' -delete

failed=0
tests/run.sh "$BUILD" unit || failed=1
scripts=()
for s in tests/integration/test_*.sh tests/chaos/test_*.sh; do
    name=$(basename "$s" .sh)
    case "$name" in
    test_fuzz_smoke) continue ;;
    test_chaos_quick) [ "${COVERAGE_CHAOS:-0}" = 1 ] || continue ;;
    esac
    scripts+=("$name")
done
tests/run.sh "$BUILD" integration "${scripts[@]}" || failed=1

echo "== coverage: capturing counters"
lcov -q $RC --capture --directory "$BUILD/obj" --base-directory "$ROOT" \
    -o "$OUT/lcov/raw.info" 2>"$OUT/lcov/capture.log" || {
    tail -n 20 "$OUT/lcov/capture.log" >&2
    exit 1
}
patterns=()
for f in $FOLDERS; do
    patterns+=("$ROOT/$f/*")
done
# Only the project's own folders: drops gen/proto, tests/, bench/, /usr.
lcov -q $RC --extract "$OUT/lcov/raw.info" "${patterns[@]}" \
    -o "$OUT/lcov/flipd.info" >/dev/null || exit 1
genhtml -q $RC --branch-coverage --prefix "$ROOT" --title flipd \
    -o "$OUT" "$OUT/lcov/flipd.info" >"$OUT/lcov/genhtml.log" 2>&1 || {
    tail -n 20 "$OUT/lcov/genhtml.log" >&2
    exit 1
}
echo "== coverage: report in $OUT/index.html"
if [ "$failed" != 0 ]; then
    echo "coverage: a test FAILED; the figures below come from that run" >&2
fi

# "  lines......: 79.6% (1294 of 1625 lines)" -> 79.6
pct() {
    sed -nE "s/^ *$1\.*: ([0-9.]+)%.*/\1/p" | head -n 1
}

for f in $FOLDERS; do
    lcov -q $RC --extract "$OUT/lcov/flipd.info" "$ROOT/$f/*" \
        -o "$OUT/lcov/$f.info" >/dev/null 2>&1
    sum=$(lcov $RC --summary "$OUT/lcov/$f.info" 2>&1)
    l=$(echo "$sum" | pct lines)
    b=$(echo "$sum" | pct branches)
    echo "coverage $f lines ${l:-0.0}% branches ${b:-0.0}%"
done
exit "$failed"
