#!/usr/bin/env bash
# Runs flipd's tests and prints the closing line CI reads.
#
#   tests/run.sh BUILD_DIR [unit|integration|all|check] [OPTION...] [NAME-SUBSTRING...]
#
# unit         BUILD_DIR/tests/unit (the C runner, one forked process per
#              test); its closing line "unit: N passed, N failed, N skipped"
#              is added to the totals.
# integration  every tests/integration/test_*.sh then tests/chaos/test_*.sh
#              (the checker's self-test, the netns mode's self-test and the
#              quick chaos pass), each run as
#              `test_x.sh BUILD_DIR` under `timeout -k 10 $TEST_TIMEOUT`
#              (default 600 s). Exit 0 = pass, 77 = skip, anything else =
#              fail. A failing script's output is kept in
#              BUILD_DIR/test-logs/NAME.log (emptied at each run) and its last
#              60 lines are printed; node logs stay in the test's temp dir.
# all          unit, then integration (`make test`).
# check        the fast tier (`make check`): unit, then only the integration
#              scripts of the check tier. A script is in the check tier iff
#              one of its first 15 lines is exactly `# tier: check`; give it
#              that line only if it takes under ~8 s on a plain build on an
#              idle machine and is deterministic (no chaos, fuzzing,
#              benchmarks or stress: those stay in `make test` only).
# NAME filters  optional substrings: only unit tests / scripts whose name
#              contains one of them run.
# Options (anywhere after the mode):
#   --fail-fast  stop at the first failure (also FAIL_FAST=1): the unit
#              runner is stopped at its first FAIL line, no further script
#              starts. `make mutants` runs check this way.
#   -jN        run up to N integration scripts at a time (also TEST_JOBS=N;
#              default 1). Scripts are independent: lib.sh gives each its
#              own temp dir and a free port range. Output stays per script.
#
# A skipped test says why: a script prints a line "skip: REASON" (lib.sh's
# skip does), a unit test "skipped: REASON" (runner_skip). Before the last
# line the run lists every skipped test with its reason.
#
# The last line is always exactly "N passed, N failed, N skipped"; the exit
# status is non-zero when anything failed.
set -uo pipefail

usage() {
    echo "usage: tests/run.sh BUILD_DIR [unit|integration|all|check] [--fail-fast] [-jN] [NAME...]" >&2
    exit 2
}

[ $# -ge 1 ] || usage
build_arg=$1
mode=${2:-all}
shift
[ $# -ge 1 ] && shift
case "$mode" in
unit | integration | all | check) ;;
*) usage ;;
esac
FAIL_FAST=${FAIL_FAST:-0}
TEST_JOBS=${TEST_JOBS:-1}
filters=()
for a in "$@"; do
    case "$a" in
    --fail-fast) FAIL_FAST=1 ;;
    -j[0-9]*) TEST_JOBS=${a#-j} ;;
    -*) usage ;;
    *) filters+=("$a") ;;
    esac
done
[ "$TEST_JOBS" -ge 1 ] 2>/dev/null || usage

[ -d "$build_arg" ] || {
    echo "run.sh: build directory '$build_arg' does not exist (run make first)" >&2
    exit 2
}
BUILD=$(cd "$build_arg" && pwd)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2
export BUILD

# Sanitizer defaults (a SANITIZE=1 build reads them; harmless otherwise).
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LC_ALL=C

TEST_TIMEOUT=${TEST_TIMEOUT:-600}
UNIT_TIMEOUT=${UNIT_TIMEOUT:-1800}
LOGDIR=$BUILD/test-logs # the failures of the last run only
rm -rf "$LOGDIR"
mkdir -p "$LOGDIR"

passed=0
failed=0
skipped=0
skip_reasons=() # "NAME: REASON", one per skipped test

now_ms() {
    local t
    t=$(date +%s%N)
    echo $((t / 1000000))
}

secs() { # elapsed ms -> "12.34"
    printf '%d.%02d' $(($1 / 1000)) $((($1 % 1000) / 10))
}

selected() {
    local f
    [ ${#filters[@]} -eq 0 ] && return 0
    for f in "${filters[@]}"; do
        case "$1" in *"$f"*) return 0 ;; esac
    done
    return 1
}

# ---- unit -------------------------------------------------------------------

# --fail-fast: the runner writes to `out` in the background (shown live) and
# is stopped (timeout's TERM reaches its whole process group, forked tests
# included) at its first FAIL line; sets unit_stopped=1 then.
unit_fail_fast() {
    local bin=$1 out=$2 pid tpid
    unit_stopped=0
    : >"$out" # before tail opens it
    timeout -k 10 "$UNIT_TIMEOUT" "$bin" ${filters[@]+"${filters[@]}"} \
        >"$out" 2>&1 </dev/null &
    pid=$!
    tail -n +1 -f --pid="$pid" "$out" &
    tpid=$!
    while kill -0 "$pid" 2>/dev/null; do # bounded by UNIT_TIMEOUT
        if grep -q '^FAIL ' "$out"; then
            kill -TERM "$pid" 2>/dev/null
            unit_stopped=1
            break
        fi
        sleep 0.2
    done
    wait "$pid"
    unit_rc=$?
    wait "$tpid" 2>/dev/null
}

run_unit() {
    local bin=$BUILD/tests/unit out=$LOGDIR/unit.log rc line up uf us
    if [ ! -x "$bin" ]; then
        echo "FAIL  unit: $bin is missing (build it with make)"
        failed=$((failed + 1))
        return
    fi
    echo "== unit ($bin)"
    if [ "$FAIL_FAST" = 1 ]; then
        unit_fail_fast "$bin" "$out"
        rc=$unit_rc
        if [ "$unit_stopped" = 1 ]; then
            up=$(grep -c '^ok ' "$out")
            uf=$(grep -c '^FAIL ' "$out")
            us=$(grep -c '^skip ' "$out")
            echo "unit: stopped at the first failure (--fail-fast)"
            passed=$((passed + up))
            failed=$((failed + uf))
            skipped=$((skipped + us))
            return
        fi
    else
        timeout -k 10 "$UNIT_TIMEOUT" "$bin" ${filters[@]+"${filters[@]}"} 2>&1 |
            tee "$out"
        rc=${PIPESTATUS[0]}
    fi
    line=$(grep -E '^unit: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$out" | tail -n 1)
    if [ -z "$line" ]; then
        if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
            echo "FAIL  unit: runner timed out after ${UNIT_TIMEOUT}s"
        else
            echo "FAIL  unit: runner ended without its closing line (exit $rc)"
        fi
        failed=$((failed + 1))
        return
    fi
    read -r up uf us <<<"$(echo "$line" | sed -E 's/^unit: ([0-9]+) passed, ([0-9]+) failed, ([0-9]+) skipped$/\1 \2 \3/')"
    passed=$((passed + up))
    failed=$((failed + uf))
    skipped=$((skipped + us))
    # the runner prints the child's "  skipped: WHY" before "skip  NAME"
    while IFS= read -r line; do
        skip_reasons+=("unit $line")
    done < <(awk '/^  skipped: / { why = substr($0, 12) }
        /^skip  / { print $2 ": " (why == "" ? "no reason printed" : why); why = "" }' "$out")
    if [ "$rc" != 0 ] && [ "$uf" = 0 ]; then
        echo "FAIL  unit: runner exited $rc"
        failed=$((failed + 1))
    fi
    [ "$rc" = 0 ] && rm -f "$out"
}

# ---- integration ------------------------------------------------------------

in_check_tier() {
    head -n 15 "$1" | grep -x '# tier: check' >/dev/null # not -q: no SIGPIPE under pipefail
}

# Runs one script; writes "RC MS" to LOGDIR/.NAME.rc when done.
run_script() {
    local s=$1 name log t0 rc
    name=$(basename "$s" .sh)
    log=$LOGDIR/$name.log
    t0=$(now_ms)
    if [ -x "$s" ]; then
        timeout -k 10 "$TEST_TIMEOUT" "$s" "$BUILD" >"$log" 2>&1 </dev/null
    else
        timeout -k 10 "$TEST_TIMEOUT" bash "$s" "$BUILD" >"$log" 2>&1 </dev/null
    fi
    rc=$?
    echo "$rc $(($(now_ms) - t0))" >"$LOGDIR/.$name.rc"
}

# Prints and counts the result run_script left for NAME.
report_script() {
    local name=$1 log=$LOGDIR/$1.log rc ms took
    read -r rc ms <"$LOGDIR/.$name.rc"
    rm -f "$LOGDIR/.$name.rc"
    took=$(secs "$ms")
    case "$rc" in
    0)
        printf 'ok    %-48s %6ss\n' "$name" "$took"
        passed=$((passed + 1))
        rm -f "$log"
        ;;
    77)
        why=$(sed -n 's/.*skip: //p' "$log" | tail -n 1 | cut -c1-200)
        printf 'skip  %-48s %6ss  (%s)\n' "$name" "$took" "${why:-no reason printed}"
        skip_reasons+=("$name: ${why:-no reason printed}")
        skipped=$((skipped + 1))
        rm -f "$log"
        ;;
    *)
        if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
            printf 'FAIL  %-48s %6ss  (timed out after %ss)\n' "$name" "$took" "$TEST_TIMEOUT"
        else
            printf 'FAIL  %-48s %6ss  (exit %s)\n' "$name" "$took" "$rc"
        fi
        echo "---- last 60 lines of $name (full output: $log)"
        tail -n 60 "$log" | sed 's/^/    /'
        echo "---- end of $name"
        failed=$((failed + 1))
        ;;
    esac
}

# Reports the scripts of `running` that have ended; keeps the others.
reap_scripts() {
    local n still=()
    for n in ${running[@]+"${running[@]}"}; do
        if [ -e "$LOGDIR/.$n.rc" ]; then
            report_script "$n"
        else
            still+=("$n")
        fi
    done
    running=(${still[@]+"${still[@]}"})
}

run_integration() {
    local scripts=() s name what=integration
    running=()
    [ "$1" = check ] && what="integration, check tier"
    for s in tests/integration/test_*.sh tests/chaos/test_*.sh; do
        [ -e "$s" ] || continue
        if [ "$1" = check ] && ! in_check_tier "$s"; then
            continue
        fi
        selected "$(basename "$s" .sh)" && scripts+=("$s")
    done
    echo "== $what (${#scripts[@]} scripts, timeout ${TEST_TIMEOUT}s each, $TEST_JOBS at a time)"
    for s in ${scripts[@]+"${scripts[@]}"}; do
        name=$(basename "$s" .sh)
        if [ "$TEST_JOBS" = 1 ]; then
            [ "$FAIL_FAST" = 1 ] && [ "$failed" != 0 ] && break
            run_script "$s"
            report_script "$name"
            continue
        fi
        # at most TEST_JOBS at once; each is bounded by TEST_TIMEOUT
        while reap_scripts && [ "${#running[@]}" -ge "$TEST_JOBS" ]; do
            sleep 0.2
        done
        [ "$FAIL_FAST" = 1 ] && [ "$failed" != 0 ] && break
        run_script "$s" &
        running+=("$name")
    done
    while reap_scripts && [ "${#running[@]}" -gt 0 ]; do
        sleep 0.2
    done
    wait
}

case "$mode" in
unit) run_unit ;;
integration) run_integration all ;;
all)
    run_unit
    run_integration all
    ;;
check)
    run_unit
    if [ "$FAIL_FAST" = 1 ] && [ "$failed" != 0 ]; then
        echo "== integration, check tier: not run (--fail-fast)"
    else
        run_integration check
    fi
    ;;
esac

rmdir "$LOGDIR" 2>/dev/null
if [ ${#skip_reasons[@]} -gt 0 ]; then
    echo "skipped, and why:"
    printf '  %s\n' "${skip_reasons[@]}"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
