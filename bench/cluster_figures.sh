#!/usr/bin/env bash
# Measures the headline figures of a real 3-node flipd cluster on 127.0.0.1:
#
#   a. time to first leader after a cold start (and to the first acked set)
#   b. failover after kill -9 of the leader: kill -> first acked set
#      (flipctl polling), then the same seen by a running library writer
#   c. planned stop: SIGTERM of the leader under a running writer
#   d. sequential latency through the library (bench/seq_latency): sets back
#      to back, sets with 100 ms and 25 ms idle gaps, linearizable gets,
#      stale gets (from a follower and from the leader)
#
#   bench/cluster_figures.sh BUILD_DIR
#
# Needs BUILD_DIR/flipd, BUILD_DIR/flipctl and BUILD_DIR/bench/seq_latency
# (`make all`). Nodes listen on 127.0.0.1 only: client ports BASE+1..BASE+3,
# raft ports BASE+51..BASE+53, BASE = $FIG_BASE_PORT (default 26000). Data
# and logs live in a mktemp -d directory that is removed on exit (KEEP=1
# keeps it). Every node, and the background writer, is killed on exit,
# Ctrl-C or SIGTERM.
#
# Environment:
#   FLIPD_ARGS         flags for every node (default
#                      "--election-ms 500 --heartbeat-ms 10", the flipd
#                      defaults)
#   FIG_BASE_PORT      see above (default 26000)
#   FIG_COLD_TRIALS    cold starts for figure a (default 5)
#   FIG_FAILOVER_TRIALS  kill -9 trials for figure b (default 5)
#   FIG_WRITER_TRIALS  kill -9 / SIGTERM trials under a writer (default 3)
#   FIG_SET_N / FIG_GET_N / FIG_IDLE_N   sizes of the latency runs
#                      (default 2000 / 2000 / 200)
#   KEEP=1             keep the temp dir (logs, data, raw JSON)
#
# Prints progress to stderr and the figures, then a final table, to stdout.
# Every loop is bounded in iterations and wall time. Exit status 0 when
# every figure was measured, 1 when something failed (the table still shows
# what was measured).
set -uo pipefail

usage() {
    echo "usage: $0 BUILD_DIR" >&2
    exit 2
}

[ $# -eq 1 ] || usage
BUILD=$(cd "$1" 2>/dev/null && pwd) || {
    echo "cluster_figures: build dir '$1' not found" >&2
    exit 2
}
FLIPD=$BUILD/flipd
FLIPCTL=$BUILD/flipctl
SEQ=$BUILD/bench/seq_latency
for bin in "$FLIPD" "$FLIPCTL" "$SEQ"; do
    [ -x "$bin" ] || {
        echo "cluster_figures: $bin is missing (make all)" >&2
        exit 2
    }
done
command -v python3 >/dev/null 2>&1 || {
    echo "cluster_figures: python3 is needed to read seq_latency's JSON" >&2
    exit 2
}

BASE=${FIG_BASE_PORT:-26000}
COLD_TRIALS=${FIG_COLD_TRIALS:-5}
FAILOVER_TRIALS=${FIG_FAILOVER_TRIALS:-5}
WRITER_TRIALS=${FIG_WRITER_TRIALS:-3}
SET_N=${FIG_SET_N:-2000}
GET_N=${FIG_GET_N:-2000}
IDLE_N=${FIG_IDLE_N:-200}
read -r -a NODE_ARGS <<<"${FLIPD_ARGS:---election-ms 500 --heartbeat-ms 10}"

NODES=(1 2 3)
CADDR=()
RADDR=()
CLUSTER=""
ENDPOINTS=""
for i in "${NODES[@]}"; do
    CADDR[i]=127.0.0.1:$((BASE + i))
    RADDR[i]=127.0.0.1:$((BASE + 50 + i))
    CLUSTER+="${CLUSTER:+,}$i=${RADDR[i]}/${CADDR[i]}"
    ENDPOINTS+="${ENDPOINTS:+,}${CADDR[i]}"
done

MAIN_PID=$$
PIDS=()        # node id -> pid of the running flipd ("" when stopped)
WRITER_PID=""  # background seq_latency
LOGDIR=""      # where node_start appends node logs
ANOMALIES=()   # unexpected events, printed at the end
FAILED=0

say() {
    printf '%s %s\n' "$(date +%T.%3N)" "$*" >&2
}

anomaly() {
    ANOMALIES+=("$*")
    say "ANOMALY: $*"
}

die() {
    say "FATAL: $*"
    FAILED=1
    exit 1
}

# ---- cleanup ---------------------------------------------------------------

# shellcheck disable=SC2317 # used by cleanup
is_our_child() {
    [ -n "$1" ] && [ "$(awk '{print $4}' "/proc/$1/stat" 2>/dev/null)" = "$MAIN_PID" ]
}

CLEANED=0
# shellcheck disable=SC2317 # runs from the EXIT trap
cleanup() {
    local rc=$? pid f
    [ "$BASHPID" = "$MAIN_PID" ] || return 0
    [ "$CLEANED" = 0 ] || return 0
    CLEANED=1
    trap - INT TERM
    exec 3>&2 2>/dev/null
    for pid in "${PIDS[@]}" "$WRITER_PID"; do
        if is_our_child "$pid"; then
            kill -9 "$pid" 2>/dev/null || true
        fi
    done
    for pid in "${PIDS[@]}" "$WRITER_PID"; do
        [ -z "$pid" ] || wait "$pid" 2>/dev/null || true
    done
    exec 2>&3 3>&-
    if [ -n "${TMP:-}" ] && [ -d "$TMP" ]; then
        if [ "$rc" != 0 ]; then
            for f in "$TMP"/*/n*.log "$TMP"/n*.log; do
                [ -f "$f" ] || continue
                echo "---- last 15 lines of $f" >&2
                tail -n 15 "$f" >&2
            done
        fi
        if [ "${KEEP:-0}" = 1 ]; then
            echo "cluster_figures: logs and data kept in $TMP" >&2
        else
            rm -rf "$TMP"
        fi
    fi
    exit "$rc"
}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/flipd-figures.XXXXXX") || {
    echo "cluster_figures: mktemp failed" >&2
    exit 1
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT
trap 'say "terminated"; exit 143' TERM

# ---- time and numbers ------------------------------------------------------

# NOW_US: wall clock in microseconds, without forking (bash 5).
now_us() {
    NOW_US=${EPOCHREALTIME//[!0-9]/}
}

# us -> "12.3" (ms, one decimal)
fmt_ms() {
    local us=$1
    printf '%d.%d' $((us / 1000)) $(((us % 1000) / 100))
}

# Median of microsecond integers (mean of the two middle ones when even).
median_us() {
    local sorted n
    [ $# -gt 0 ] || {
        echo 0
        return
    }
    mapfile -t sorted < <(printf '%s\n' "$@" | sort -n)
    n=${#sorted[@]}
    if ((n % 2 == 1)); then
        echo "${sorted[n / 2]}"
    else
        echo $(((sorted[n / 2 - 1] + sorted[n / 2]) / 2))
    fi
}

list_ms() {
    local out="" v
    for v in "$@"; do
        out+="${out:+ }$(fmt_ms "$v")"
    done
    echo "$out"
}

# ---- ports -----------------------------------------------------------------

# Listening sockets only: TIME_WAIT leftovers of a previous run do not stop
# a bind (libuv sets SO_REUSEADDR).
port_busy() {
    if command -v ss >/dev/null 2>&1; then
        [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]
    else
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
    fi
}

busy=""
for i in "${NODES[@]}"; do
    for p in $((BASE + i)) $((BASE + 50 + i)); do
        if port_busy "$p"; then
            busy+=" $p"
        fi
    done
done
[ -z "$busy" ] || die "port(s)$busy in use; set FIG_BASE_PORT to another range"

# ---- nodes -----------------------------------------------------------------

# node_start I DATA_PARENT: starts node I on DATA_PARENT/nI, log in
# $LOGDIR/nI.log (appended).
node_start() {
    local i=$1 parent=$2
    mkdir -p "$parent/n$i"
    echo "=== $(date +%T.%3N) start n$i" >>"$LOGDIR/n$i.log"
    "$FLIPD" --id "$i" --data "$parent/n$i" --client "${CADDR[i]}" \
        --raft "${RADDR[i]}" --cluster "$CLUSTER" \
        ${NODE_ARGS[@]+"${NODE_ARGS[@]}"} \
        >>"$LOGDIR/n$i.log" 2>&1 </dev/null &
    PIDS[i]=$!
}

node_alive() {
    local pid=${PIDS[$1]:-}
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# node_wait_exit I TIMEOUT_S: waits until node I has exited; sets EXIT_RC
# (the exit status, or "hung" after SIGKILL at the timeout) and EXIT_US
# (when the exit was seen).
node_wait_exit() {
    local i=$1 timeout=$2 pid=${PIDS[$1]:-} n rc=0
    EXIT_RC=""
    for ((n = 0; n < timeout * 100; n++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.01
    done
    now_us
    EXIT_US=$NOW_US
    if kill -0 "$pid" 2>/dev/null; then
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        EXIT_RC=hung
    else
        wait "$pid" 2>/dev/null || rc=$?
        EXIT_RC=$rc
    fi
    PIDS[i]=""
}

node_kill9() {
    local i=$1
    node_alive "$i" || return 0
    kill -9 "${PIDS[i]}" 2>/dev/null || true
    wait "${PIDS[i]}" 2>/dev/null || true
    PIDS[i]=""
}

stop_all() {
    local i
    for i in "${NODES[@]}"; do
        node_alive "$i" && kill -TERM "${PIDS[i]}" 2>/dev/null
    done
    for i in "${NODES[@]}"; do
        [ -n "${PIDS[i]:-}" ] || continue
        node_wait_exit "$i" 10
        if [ "$EXIT_RC" != 0 ]; then
            anomaly "n$i: SIGTERM stop (all nodes) ended with status" \
                "$EXIT_RC (see $LOGDIR/n$i.log)"
        fi
    done
}

# Nodes we started that are no longer running, although nobody stopped them.
check_alive() {
    local i
    for i in "${NODES[@]}"; do
        if [ -n "${PIDS[i]:-}" ] && ! kill -0 "${PIDS[i]}" 2>/dev/null; then
            local rc=0
            wait "${PIDS[i]}" 2>/dev/null || rc=$?
            PIDS[i]=""
            anomaly "n$i exited on its own (status $rc); log $LOGDIR/n$i.log"
            tail -n 20 "$LOGDIR/n$i.log" >&2
        fi
    done
}

# ---- cluster state ---------------------------------------------------------

# status_read: one `flipctl --json status` to every node; sets ST_OUT,
# ST_REACH (reachable nodes), ST_LEADERS (ids reporting role leader),
# ST_MINAPP / ST_MAXAPP (applied revisions of the reachable nodes).
status_read() {
    local line app
    ST_OUT=$("$FLIPCTL" --endpoints "$ENDPOINTS" --json --timeout 200 status \
        2>/dev/null) || true
    ST_REACH=0
    ST_LEADERS=()
    ST_MINAPP=""
    ST_MAXAPP=""
    while IFS= read -r line; do
        [[ $line =~ \"id\":([0-9]+) ]] || continue
        local id=${BASH_REMATCH[1]}
        [[ $line == *'"reachable":true'* ]] || continue
        ST_REACH=$((ST_REACH + 1))
        if [[ $line == *'"role":"leader"'* ]]; then
            ST_LEADERS+=("$id")
        fi
        if [[ $line =~ \"applied_revision\":([0-9]+) ]]; then
            app=${BASH_REMATCH[1]}
            if [ -z "$ST_MINAPP" ] || [ "$app" -lt "$ST_MINAPP" ]; then
                ST_MINAPP=$app
            fi
            if [ -z "$ST_MAXAPP" ] || [ "$app" -gt "$ST_MAXAPP" ]; then
                ST_MAXAPP=$app
            fi
        fi
    done <<<"$ST_OUT"
}

# wait_converged TIMEOUT_S: all three reachable, exactly one leader, equal
# applied revisions. Sets LEADER.
wait_converged() {
    local timeout=$1 n
    LEADER=""
    for ((n = 0; n < timeout * 20; n++)); do
        status_read
        if [ "$ST_REACH" = 3 ] && [ "${#ST_LEADERS[@]}" = 1 ] &&
            [ -n "$ST_MINAPP" ] && [ "$ST_MINAPP" = "$ST_MAXAPP" ]; then
            LEADER=${ST_LEADERS[0]}
            return 0
        fi
        check_alive
        sleep 0.05
    done
    say "wait_converged: not converged after ${timeout}s; last status:"
    printf '%s\n' "$ST_OUT" >&2
    return 1
}

# poll_set KEY VALUE TIMEOUT_S: `flipctl set` every 10 ms until one is
# acknowledged. Sets POLL_US (time of the success, 0 if none) and
# POLL_TRIES.
poll_set() {
    local key=$1 value=$2 timeout=$3 deadline
    now_us
    deadline=$((NOW_US + timeout * 1000000))
    POLL_US=0
    POLL_TRIES=0
    while [ "$POLL_TRIES" -lt $((timeout * 100)) ]; do
        POLL_TRIES=$((POLL_TRIES + 1))
        if "$FLIPCTL" --endpoints "$ENDPOINTS" --timeout 100 \
            set "$key" "$value" >/dev/null 2>&1; then
            now_us
            POLL_US=$NOW_US
            return 0
        fi
        now_us
        [ "$NOW_US" -lt "$deadline" ] || break
        sleep 0.01
    done
    return 1
}

# jfield FILE NAME: one top-level field of seq_latency's JSON output.
jfield() {
    python3 -c '
import json, sys
try:
    d = json.load(open(sys.argv[1]))
    v = d[sys.argv[2]]
except Exception:
    print("-")
    sys.exit(0)
if isinstance(v, dict):
    print(", ".join("%s: %s" % kv for kv in v.items()) or "none")
elif isinstance(v, bool):
    print("true" if v else "false")
elif v is None:
    print("-")
else:
    print(v)
' "$1" "$2"
}

# Waits (bounded) for the background writer; sets WRITER_RC.
writer_wait() {
    local timeout=$1 n
    WRITER_RC=""
    for ((n = 0; n < timeout * 20; n++)); do
        kill -0 "$WRITER_PID" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$WRITER_PID" 2>/dev/null; then
        kill -9 "$WRITER_PID" 2>/dev/null || true
        anomaly "writer (seq_latency) still running after ${timeout}s; killed"
    fi
    WRITER_RC=0
    wait "$WRITER_PID" 2>/dev/null || WRITER_RC=$?
    WRITER_PID=""
}

# ---- machine facts ---------------------------------------------------------

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
FS_TMP=$(df -T "$TMP" 2>/dev/null | awk 'NR == 2 {print $2}')
cat <<EOF
flipd cluster figures, $(date -u +%Y-%m-%dT%H:%M:%SZ)
  machine   nproc $(nproc), kernel $(uname -r), $(awk '/MemTotal/ {printf "%.1f GiB RAM", $2 / 1048576}' /proc/meminfo)
  cpu       $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
  data dir  $TMP ($FS_TMP)
  flipd     ${NODE_ARGS[*]:-<defaults>}
  load      $LOAD_START (1/5/15 min, at start)
  ports     client $((BASE + 1))-$((BASE + 3)), raft $((BASE + 51))-$((BASE + 53))

EOF

# Results, in microseconds.
COLD_LEADER=()
COLD_WRITE=()
FAIL_SET=()
FAIL_TRIES=()

# ---- a. time to first leader, cold start -----------------------------------

echo "a. cold start: 3 fresh data dirs, processes started -> status shows a leader -> first acked set"
for ((k = 1; k <= COLD_TRIALS; k++)); do
    dir=$TMP/cold$k
    LOGDIR=$dir
    mkdir -p "$dir"
    now_us
    t0=$NOW_US
    for i in "${NODES[@]}"; do
        node_start "$i" "$dir"
    done
    t_leader=0
    leader=""
    # 10 ms between polls, at most 30 s / 3000 polls.
    for ((n = 0; n < 3000; n++)); do
        status_read
        if [ "${#ST_LEADERS[@]}" -ge 1 ]; then
            now_us
            t_leader=$((NOW_US - t0))
            leader=${ST_LEADERS[*]}
            break
        fi
        now_us
        [ $((NOW_US - t0)) -lt 30000000 ] || break
        sleep 0.01
    done
    if [ -z "$leader" ]; then
        check_alive
        anomaly "cold start $k: no leader within 30 s"
        FAILED=1
        stop_all
        continue
    fi
    if poll_set bench.cold "$k" 10; then
        t_write=$((POLL_US - t0))
        COLD_LEADER+=("$t_leader")
        COLD_WRITE+=("$t_write")
        printf '  trial %d: leader n%s after %s ms, first acked set after %s ms\n' \
            "$k" "$leader" "$(fmt_ms "$t_leader")" "$(fmt_ms "$t_write")"
    else
        anomaly "cold start $k: leader n$leader seen, but no set acked within 10 s"
        FAILED=1
    fi
    stop_all
    rm -rf "${dir:?}"/n1 "${dir:?}"/n2 "${dir:?}"/n3
done
if [ ${#COLD_LEADER[@]} -gt 0 ]; then
    printf '  median: leader %s ms, first acked set %s ms\n\n' \
        "$(fmt_ms "$(median_us "${COLD_LEADER[@]}")")" \
        "$(fmt_ms "$(median_us "${COLD_WRITE[@]}")")"
fi

# ---- the long-lived cluster for b, c, d ------------------------------------

MAIN=$TMP/main
LOGDIR=$MAIN
mkdir -p "$MAIN"
for i in "${NODES[@]}"; do
    node_start "$i" "$MAIN"
done
wait_converged 30 || die "the cluster for b-d did not converge"
poll_set bench.failover 0 10 || die "no acked set on the fresh cluster"

# ---- b. failover after kill -9 of the leader -------------------------------

echo "b. failover: kill -9 the leader -> first acked 'flipctl set' (polled every 10 ms, --timeout 100)"
for ((k = 1; k <= FAILOVER_TRIALS; k++)); do
    wait_converged 60 || die "failover trial $k: cluster did not converge"
    old=$LEADER
    now_us
    t0=$NOW_US
    node_kill9 "$old"
    if poll_set bench.failover "$k" 30; then
        dt=$((POLL_US - t0))
        FAIL_SET+=("$dt")
        FAIL_TRIES+=("$POLL_TRIES")
        status_read
        printf '  trial %d: killed n%s, first acked set after %s ms (%d attempts), new leader n%s\n' \
            "$k" "$old" "$(fmt_ms "$dt")" "$POLL_TRIES" "${ST_LEADERS[*]:-?}"
    else
        anomaly "failover trial $k: no set acked within 30 s of killing n$old"
        FAILED=1
    fi
    check_alive
    node_start "$old" "$MAIN"
done
if [ ${#FAIL_SET[@]} -gt 0 ]; then
    printf '  median: %s ms\n\n' "$(fmt_ms "$(median_us "${FAIL_SET[@]}")")"
fi

# run_writer_trial KIND K: KIND is KILL or TERM. A seq_latency writer
# (--idle-ms 5, 5 s per-op deadline) runs; 1 s in, the leader gets the
# signal. Sets W_* results.
W_OK=()
W_FAILED=()
W_STALL=()
W_KIND=()
W_STOP=()
run_writer_trial() {
    local kind=$1 k=$2 old out t0 stop_note=""
    wait_converged 60 || die "writer trial $kind $k: cluster did not converge"
    old=$LEADER
    out=$TMP/writer-$kind-$k
    "$SEQ" --endpoints "$ENDPOINTS" --n 500 --idle-ms 5 --timeout 5000 \
        --max-seconds 60 --key "bench.writer.$kind" --errors 20 --json \
        --samples "$out.samples" \
        >"$out.json" 2>"$out.err" &
    WRITER_PID=$!
    sleep 1
    now_us
    t0=$NOW_US
    if [ "$kind" = KILL ]; then
        node_kill9 "$old"
    else
        kill -TERM "${PIDS[old]}" 2>/dev/null || true
        node_wait_exit "$old" 10
        stop_note="n$old exited with status $EXIT_RC after $(fmt_ms $((EXIT_US - t0))) ms"
        if [ "$EXIT_RC" != 0 ]; then
            anomaly "planned stop $k: n$old SIGTERM exit status $EXIT_RC"
        fi
        W_STOP+=("$((EXIT_US - t0))")
    fi
    writer_wait 90
    if [ "$WRITER_RC" = 2 ]; then
        anomaly "writer trial $kind $k: seq_latency setup failed: $(head -c 300 "$out.err")"
    fi
    status_read
    local ok failed stall errs
    ok=$(jfield "$out.json" ok)
    failed=$(jfield "$out.json" failed)
    stall=$(jfield "$out.json" max_ms)
    errs=$(jfield "$out.json" errors)
    W_KIND+=("$kind")
    W_OK+=("$ok")
    W_FAILED+=("$failed")
    W_STALL+=("$stall")
    printf '  trial %d: %s n%s; writer ok %s, failed %s, slowest acked set %s ms; new leader n%s%s\n' \
        "$k" "$([ "$kind" = KILL ] && echo "kill -9" || echo "SIGTERM")" \
        "$old" "$ok" "$failed" "$stall" "${ST_LEADERS[*]:-?}" \
        "${stop_note:+; $stop_note}"
    if [ "$failed" != 0 ]; then
        echo "    errors: $errs"
        sed 's/^/    /' "$out.err" | head -n 5
    fi
    check_alive
    node_start "$old" "$MAIN"
}

echo "b2. failover seen by a library writer: seq_latency --n 500 --idle-ms 5 --timeout 5000; kill -9 the leader 1 s in"
for ((k = 1; k <= WRITER_TRIALS; k++)); do
    run_writer_trial KILL "$k"
done
echo

# ---- c. planned stop -------------------------------------------------------

echo "c. planned stop: same writer; SIGTERM the leader 1 s in (it should hand leadership over)"
for ((k = 1; k <= WRITER_TRIALS; k++)); do
    run_writer_trial TERM "$k"
done
echo

# ---- d. sequential latency through the library ------------------------------

LAT_NAME=()
LAT_FILE=()
run_latency() {
    local name=$1 file=$TMP/lat-${#LAT_NAME[@]}.json rc=0
    shift
    wait_converged 60 || die "latency '$name': cluster did not converge"
    "$SEQ" --max-seconds 120 --json "$@" >"$file" 2>"$file.err" || rc=$?
    LAT_NAME+=("$name")
    LAT_FILE+=("$file")
    if [ "$rc" != 0 ]; then
        anomaly "latency '$name': seq_latency exit $rc: $(head -c 300 "$file.err")"
    fi
    printf '  %-34s ok %s/%s  p50 %s  p90 %s  p99 %s  max %s ms  %s ops/s\n' \
        "$name" "$(jfield "$file" ok)" "$(jfield "$file" count)" \
        "$(jfield "$file" p50_ms)" "$(jfield "$file" p90_ms)" \
        "$(jfield "$file" p99_ms)" "$(jfield "$file" max_ms)" \
        "$(jfield "$file" throughput_ops_s)"
}

echo "d. sequential latency, one client (bench/seq_latency), all 3 nodes up"
wait_converged 60 || die "latency: cluster did not converge"
follower=""
for i in "${NODES[@]}"; do
    if [ "$i" != "$LEADER" ]; then
        follower=$i
        break
    fi
done
run_latency "set back to back (n $SET_N)" --endpoints "$ENDPOINTS" \
    --n "$SET_N" --key bench.seq
run_latency "set, 100 ms idle (n $IDLE_N)" --endpoints "$ENDPOINTS" \
    --n "$IDLE_N" --idle-ms 100 --key bench.seq
run_latency "set, 25 ms idle (n $IDLE_N)" --endpoints "$ENDPOINTS" \
    --n "$IDLE_N" --idle-ms 25 --key bench.seq
run_latency "set int counter (n $SET_N)" --endpoints "$ENDPOINTS" \
    --n "$SET_N" --value int --key bench.seq.int
run_latency "get linearizable (n $GET_N)" --endpoints "$ENDPOINTS" \
    --n "$GET_N" --get --key bench.seq
run_latency "get stale, follower n$follower (n $GET_N)" \
    --endpoints "${CADDR[follower]}" --n "$GET_N" --stale-get --key bench.seq
run_latency "get stale, leader n$LEADER (n $GET_N)" \
    --endpoints "${CADDR[LEADER]}" --n "$GET_N" --stale-get --key bench.seq
echo

check_alive
stop_all

# ---- final table -----------------------------------------------------------

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
echo "==== summary ($(date -u +%Y-%m-%dT%H:%M:%SZ); nproc $(nproc); kernel $(uname -r); /tmp on $FS_TMP; load $LOAD_START -> $LOAD_END)"
echo "flipd ${NODE_ARGS[*]:-<defaults>}"
echo
printf '%-44s %-7s %-40s %s\n' "figure" "trials" "each (ms)" "median (ms)"
row() {
    local name=$1
    shift
    if [ $# -eq 0 ]; then
        printf '%-44s %-7s %-40s %s\n' "$name" 0 "-" "-"
    else
        printf '%-44s %-7s %-40s %s\n' "$name" "$#" "$(list_ms "$@")" \
            "$(fmt_ms "$(median_us "$@")")"
    fi
}
row "a. cold start -> leader in status" "${COLD_LEADER[@]}"
row "a. cold start -> first acked set" "${COLD_WRITE[@]}"
row "b. kill -9 leader -> first acked set" "${FAIL_SET[@]}"
if [ ${#W_STOP[@]} -gt 0 ]; then
    row "c. SIGTERM leader -> process exited" "${W_STOP[@]}"
fi
echo
printf '%-44s %-8s %-8s %s\n' "writer under leader loss (n 500, idle 5 ms)" "ok" "failed" "slowest acked set (ms)"
for idx in "${!W_KIND[@]}"; do
    printf '%-44s %-8s %-8s %s\n' \
        "$([ "${W_KIND[idx]}" = KILL ] && echo "b2. kill -9" || echo "c. SIGTERM")" \
        "${W_OK[idx]}" "${W_FAILED[idx]}" "${W_STALL[idx]}"
done
echo
printf '%-40s %-10s %-8s %-8s %-8s %-8s %s\n' "latency (one client, sequential)" "ok/count" "p50" "p90" "p99" "max" "ops/s"
for idx in "${!LAT_NAME[@]}"; do
    f=${LAT_FILE[idx]}
    printf '%-40s %-10s %-8s %-8s %-8s %-8s %s\n' "${LAT_NAME[idx]}" \
        "$(jfield "$f" ok)/$(jfield "$f" count)" "$(jfield "$f" p50_ms)" \
        "$(jfield "$f" p90_ms)" "$(jfield "$f" p99_ms)" \
        "$(jfield "$f" max_ms)" "$(jfield "$f" throughput_ops_s)"
done
echo
if [ ${#ANOMALIES[@]} -gt 0 ]; then
    echo "anomalies:"
    printf '  - %s\n' "${ANOMALIES[@]}"
    FAILED=1
else
    echo "anomalies: none"
fi
exit "$FAILED"
