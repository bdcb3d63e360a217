#!/usr/bin/env bash
# The benchmarks' smoke pass, so they do not rot: bench/run.sh --smoke runs
# every flipd figure of `make bench` at tiny sizes against a small cluster
# (no etcd) and fails unless each one was produced. Then every figure must
# be a sane number: finite, not negative; positive where zero is
# impossible (latencies, flips/s, memory, bytes on disk); p50 <= p99 <= max
# and median <= max within a group; no flip applied twice. Nothing is
# compared with a time target: benchmarks never gate on a time.
# The bench programs are not part of `make all`: `make test` builds them
# (bench-build); run alone, this builds them into BUILD_DIR with the
# sanitizers when BUILD_DIR is a SANITIZE=1 build.
#   test_bench_smoke.sh BUILD_DIR
set -euo pipefail
BUILD=${1:?usage: test_bench_smoke.sh BUILD_DIR}
BUILD=$(cd "$BUILD" && pwd)
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
san=
if grep -q -- '-fsanitize=' "$BUILD/.flags" 2>/dev/null; then
    san=SANITIZE=1
fi
# The build dir as the Makefile names it (relative to the repository),
# since the flags it records hold that path: another spelling rebuilds all.
rel=$(realpath --relative-to="$ROOT" "$BUILD")
make -C "$ROOT" --no-print-directory -s BUILD="$rel" $san bench-build >&2 || {
    echo "bench smoke: make bench-build failed" >&2
    exit 1
}
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
python3 - "$report" <<'PY' || exit 1
import math, re, sys
rows = []
for line in open(sys.argv[1]):
    if not line.startswith("| ") or line.startswith("| figure") or line.startswith("|---"):
        continue
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if cells[0].startswith("**"):
        continue
    rows.append((cells[0], cells[1]))
bad = []
vals = {}
for name, cell in rows:
    parts = [p.strip() for p in cell.split("/")]
    try:
        nums = [float(p.replace(",", "")) for p in parts]
    except ValueError:
        bad.append(f"{name}: {cell!r} is not a number")
        continue
    if any(not math.isfinite(x) or x < 0 for x in nums):
        bad.append(f"{name}: {cell} is negative or not finite")
        continue
    vals[name] = nums[0] if len(nums) == 1 else None
    positive = re.search(r"p50|p99|max|median|flips/s|RSS|bytes on disk|apparent|"
                         r"time to write|told|let go|cached value", name)
    if positive and min(nums) <= 0:
        bad.append(f"{name}: {cell}, want > 0")
    if "applied twice" in name and max(nums) != 0:
        bad.append(f"{name}: {cell}: a flip applied twice")
# p50 <= p99 <= max, median <= max, within one group of rows
for name, v in vals.items():
    for lo, hi in (("p50", "p99"), ("p99", "max"), ("median", "max")):
        if v is None or not re.search(r"\b%s\b" % lo, name):
            continue
        other = re.sub(r"\b%s\b" % lo, hi, name)
        w = vals.get(other)
        if w is not None and v > w:
            bad.append(f"{name} = {v} > {other} = {w}")
for b in bad:
    print("bench smoke: " + b, file=sys.stderr)
print(f"bench smoke: {len(rows)} figures checked, {len(bad)} not sane")
sys.exit(1 if bad else 0)
PY
echo "bench smoke: every flipd figure produced and sane"
