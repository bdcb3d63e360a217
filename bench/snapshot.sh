#!/usr/bin/env bash
# bench/snapshot.sh BUILD: `make bench-snapshot`. What a snapshot of a large
# store costs a real 3-node cluster (review M3): its leader's loop stall and
# the leadership changes it causes.
#
# Three flipd processes on 127.0.0.1 with flipd's default timeouts (election
# 500 ms, heartbeat 10 ms) and snapshot settings; bench/snapshot_stall fills
# FILL_MB (default 210) MB of 60 KB values (fewer entries than the 4096 of
# the snapshot threshold, so no snapshot yet; each value is stored twice,
# flag and change log, so the store holds about 420 MB), then for MEASURE_S (default
# 20) seconds writes small values one at a time (every node crosses its
# threshold and snapshots the whole store, several times) while probing the
# leader's status every 2 ms. Reports the probe's latency (its max bounds
# the longest loop stall), the snapshots taken and the leadership changes,
# counted in the node logs. Nothing is asserted: benchmarks never gate on a
# time. About 45 s; needs about 3 GB of disk under TMPDIR. THRESHOLD=N sets
# --snapshot-threshold (make bench-snapshot first runs it with none taken,
# to show what the machine's own load costs the probe).
#
# SNAPSHOT_STALL=path runs another build of the probe (e.g. this one against
# an older flipd: it only speaks the client protocol). KEEP=1 keeps logs.
# STRACE=1 also traces the probed leader's io_destroy calls during the
# measurement (strace -f -T; attaching slows every syscall of the leader, so
# take the stall figures from a run without it) and reports them per thread:
# the loop thread (tid = pid) and the others (known-issues #11).
# PERF=FILE also samples every node's loop thread with call graphs during
# the measurement (perf record -g: cpu-clock, and sched_switch for where it
# blocks) into FILE, and reports per loop thread its longest turn of work
# and its longest wait outside epoll_wait (bench/perfloop.py): the exact
# figures behind a node's "loop: one turn held the loop" warnings and its
# Status loop_* (whose split between blocking and waiting for a CPU is an
# estimate). Needs perf (linux-perf).
set -euo pipefail
FILL_MB=${FILL_MB:-210}
MEASURE_S=${MEASURE_S:-20}
# shellcheck disable=SC2034 # read by lib.sh (its defaults only when unset)
FLIPD_ARGS=(--snapshot-threshold "${THRESHOLD:-4096}" --snapshot-trailing 1024)
. "$(dirname "$0")/../tests/integration/lib.sh" "$@"
STALL=${SNAPSHOT_STALL:-$BUILD/bench/snapshot_stall}
[ -x "$STALL" ] || fail "$STALL is missing (make bench-build)"

snap_re='fsm: snapshot (at|of) index'
count() { cat "$TMP"/n*.log | grep -cE -- "$1" || true; }

cluster_start 3
leader=$(wait_leader 30) || fail "no leader"
say "filling $FILL_MB MB through node $leader"
"$STALL" --endpoints "$(endpoints)" --probe "$(client_addr "$leader")" \
    --fill-mb "$FILL_MB" --seconds 0 | tee "$TMP/fill.txt"
snaps0=$(count "$snap_re")
leaders0=$(count '-> leader')
leader=$(wait_leader 30) || fail "no leader after the fill"
say "measuring for $MEASURE_S s, probing node $leader"
if [ -n "${STRACE:-}" ]; then
    strace -f -T -e trace=io_destroy -o "$TMP/strace.txt" \
        -p "$(node_pid "$leader")" 2>/dev/null &
    strace_pid=$!
    sleep 1 # attached
fi
if [ -n "${PERF:-}" ]; then
    perf record -q -e cpu-clock -e sched:sched_switch -g -o "$PERF" \
        -t "$(node_pid 1),$(node_pid 2),$(node_pid 3)" 2>/dev/null &
    perf_pid=$!
fi
"$STALL" --endpoints "$(endpoints)" --probe "$(client_addr "$leader")" \
    --seconds "$MEASURE_S" | tee "$TMP/measure.txt"
if [ -n "${PERF:-}" ]; then
    kill -INT "$perf_pid" 2>/dev/null || true
    wait "$perf_pid" 2>/dev/null || true
    perf script -i "$PERF" -F tid,time,period,event,trace,ip,sym \
        >"$TMP/perf.txt" 2>/dev/null || true
    python3 "$(dirname "$0")/perfloop.py" "$TMP/perf.txt" || true
fi
if [ -n "${STRACE:-}" ]; then
    kill -INT "$strace_pid" 2>/dev/null || true
    wait "$strace_pid" 2>/dev/null || true
    # "TID io_destroy(CTX) = 0 <SECONDS>", one line per call, or its
    # "TID <... io_destroy resumed>) = 0 <SECONDS>" half when calls overlap
    awk -v loop="$(node_pid "$leader")" '
        /io_destroy(\(| resumed>)/ && match($0, /<[0-9.]+>$/) {
            t = substr($0, RSTART + 1, RLENGTH - 2) * 1000
            k = ($1 == loop) ? "loop_thread" : "other_threads"
            n[k]++; sum[k] += t; if (t > max[k]) max[k] = t
        }
        END {
            split("loop_thread other_threads", ks, " ")
            for (i = 1; i <= 2; i++) {
                k = ks[i]
                printf "io_destroy_%s %d calls, mean %.1f ms, max %.1f ms\n",
                    k, n[k], n[k] ? sum[k] / n[k] : 0, max[k]
            }
        }' "$TMP/strace.txt"
fi
snaps=$(($(count "$snap_re") - snaps0))
leader_snaps=$(grep -cE -- "$snap_re" "$(node_log "$leader")" || true)
changes=$(($(count '-> leader') - leaders0))
echo "snapshots_taken $snaps (by the probed leader: $leader_snaps)"
echo "leadership_changes $changes"
{ grep -hE -- "$snap_re" "$TMP"/n*.log || true; } | sed "s/^/  /" | tail -n 12
du -sh "$TMP"/n1 | sed 's/^/data_dir_node1 /'
