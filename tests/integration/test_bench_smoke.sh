#!/usr/bin/env bash
# The benchmarks' smoke pass, so they do not rot: bench/run.sh --smoke runs
# every flipd figure of `make bench` at tiny sizes against a small cluster
# (no etcd) and fails unless each one was produced. It asserts nothing
# about the values: benchmarks never gate on a time.
#   test_bench_smoke.sh BUILD_DIR
set -euo pipefail
BUILD=${1:?usage: test_bench_smoke.sh BUILD_DIR}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
report=$(mktemp)
trap 'rm -f "$report"' EXIT
if ! timeout -k 10 300 "$ROOT/bench/run.sh" "$BUILD" --smoke --no-save --out "$report"; then
    echo "bench smoke: a figure is missing or a tool failed (report above)" >&2
    exit 1
fi
grep -q '^| figure |' "$report" || {
    echo "bench smoke: no table in the report" >&2
    exit 1
}
echo "bench smoke: every flipd figure produced"
