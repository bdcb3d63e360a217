#!/usr/bin/env bash
# flipd against etcd, and both against the disk, in one run on one machine.
#
#   bench/run.sh BUILD_DIR [--quick | --smoke] [--out FILE] [--no-save]
#                [--only-failover]
#   bench/run.sh BUILD_DIR --prepare
#
# (`make bench` runs --prepare, builds, then runs it; `make bench QUICK=1`
# passes --quick.) --prepare installs what the run needs and is missing:
# Debian's etcd-server and etcd-client; nothing else.
#
# 1. The disk's floor in the data directory: 4 KiB write + fdatasync
#    (bench/disk_floor); and the loopback fan-out floor for each N: one
#    small frame written by 3 processes to N TCP subscribers, nothing else
#    (bench/fanout_floor).
# 2. For flipd, then etcd (Debian's etcd-server, installed if missing),
#    each as a 3-node cluster on 127.0.0.1 with its default settings (fsync
#    on for both), data on the same filesystem, the same C client model
#    (bench/kvbench; fan-out: bench/fanout, --system flipd or etcd):
#      a. sequential flips, one client, back to back and 100 ms apart;
#      b. throughput with 32 and 128 flips in flight spread over the nodes;
#      c. fan-out to N subscribers spread over the nodes, 50 flips one at a
#         time: send -> last subscriber, and per subscriber; node RSS with
#         the largest N attached;
#      d. on a fresh cluster: 100,000 flips (128 in flight), then bytes on
#         disk (du of the three data directories);
#      e. failover: a writer flipping every 10 ms, kill -9 of the leader ->
#         first acked flip (5 trials, the node restarted in between); then
#         SIGTERM of the leader: failed flips, longest gap between acks,
#         and whether a flip was applied twice (from the key's history).
#      f. flipd only, on a fresh cluster, the documents' time promises
#         (bench/promises.py): leader lost -> subscriber told stale;
#         slow consumer cut off -> connection let go; every node down ->
#         `flipctl eval` from the last-known-good file. Each row shows
#         its documented target.
#      g. a large store (issue 9, bench/bigstore; bench_bigstore): per
#         size, a fresh cluster filled with 1 KiB values, the leader
#         probed; a follower's cold restart; the leader's whole-store
#         snapshot and that follower's catch-up by InstallSnapshot, the
#         leader probed and its memory watched (a leader whose RssAnon
#         passes BENCH_RSS_LIMIT_MB, default 6144, is killed); RSS. etcd,
#         first size only: fill, `etcdctl snapshot save`, defrag, restart.
#      h. flipd only: N subscribers connecting at once to the leader of a
#         fresh cluster (bench/fanout, window N), a writer and a probe of
#         the leader beside them (bench_flood).
# 3. One table: figure, flipd, etcd, ratio flipd/etcd, floor; with the
#    machine facts, written to bench/results/<date>.md (--quick:
#    <date>-quick.md; a second run the same day is appended) and stdout.
#
# --only-failover: the disk floor, the failover rows (e, for every system,
# on a fresh cluster without the 100,000 flips) and the stale notice of f;
# KILL_TRIALS=N and STALE_TRIALS=N (environment) override the trial
# counts, so that an A/B of election timings gets a stable median in a few
# minutes (e.g. KILL_TRIALS=7 with --quick). The other rows are then
# missing, so the exit status is 1.
#
# --quick: reduced sizes, about 3 minutes. --smoke: flipd only, tiny sizes,
# about a minute, nothing saved; exits 1 unless every flipd figure was
# produced (it asserts nothing about the values). --out FILE also writes
# the report there; --no-save skips bench/results.
#
# Ports, 127.0.0.1 only (above the ephemeral range 32768-60999, and apart
# from the other scripts' ranges): flipd clients BENCH_FLIPD_BASE+1..3 and
# raft +51..53 (default 62000: 62001-62003, 62051-62053); etcd clients
# BENCH_ETCD_BASE+1..3 and peers +51..53 (default 63000). Refuses to start
# if one is listening. Fan-out subscriber sockets bind to BENCH_SOURCE
# (default 127.0.0.2) so that 10,000 connections do not take ephemeral
# ports on 127.0.0.1.
#
# Data, logs and raw JSON live in a mktemp -d directory (under $TMPDIR or
# /tmp), removed at the end (KEEP=1 keeps it). A trap on EXIT, INT and TERM
# kills every process this script started. Every wait is bounded in
# iterations and time, every tool runs under `timeout`. Progress goes to
# stderr; the report to stdout. Exit status: 0 when every figure was
# measured for both systems (--smoke: flipd), 1 otherwise (the report
# still shows what was measured), 2 usage or setup errors.
#
# Benchmarks are not tests: nothing here gates on a time.
set -uo pipefail

usage() {
    echo "usage: $0 BUILD_DIR [--quick | --smoke] [--out FILE] [--no-save] [--only-failover]" >&2
    echo "       $0 BUILD_DIR --prepare" >&2
    exit 2
}

# Installs etcd-server and etcd-client if missing.
prepare() {
    local pkgs=()
    command -v etcd >/dev/null 2>&1 || pkgs+=(etcd-server)
    command -v etcdctl >/dev/null 2>&1 || pkgs+=(etcd-client)
    if [ ${#pkgs[@]} -gt 0 ]; then
        if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
            echo "run.sh: missing ${pkgs[*]}; install them (needs root and apt-get)" >&2
            return 1
        fi
        echo "run.sh: installing ${pkgs[*]}" >&2
        DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y \
            --no-install-recommends "${pkgs[@]}" >/dev/null ||
            { echo "run.sh: apt-get install ${pkgs[*]} failed" >&2; return 1; }
    fi
    # The Debian package may have started a default etcd (systemd); it
    # listens on 2379/2380, apart from the ports used here.
    return 0
}

[ $# -ge 1 ] || usage
if [ "${2:-}" = --prepare ]; then
    [ $# -eq 2 ] || usage
    prepare
    exit $?
fi
BUILD=$(cd "$1" 2>/dev/null && pwd) || {
    echo "run.sh: build dir '$1' not found" >&2
    exit 2
}
shift
MODE=full
OUT=""
SAVE=1
ONLY=""
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) MODE=quick ;;
    --smoke) MODE=smoke ;;
    --no-save) SAVE=0 ;;
    --only-failover) ONLY=failover ;;
    --out)
        [ $# -ge 2 ] || usage
        OUT=$2
        shift
        ;;
    *) usage ;;
    esac
    shift
done
[ "$MODE" = smoke ] && SAVE=0

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FLIPD=$BUILD/flipd
FLIPCTL=$BUILD/flipctl
KV=$BUILD/bench/kvbench
FANOUT=$BUILD/bench/fanout
DISK=$BUILD/bench/disk_floor
FLOOR=$BUILD/bench/fanout_floor
REPORT=$REPO/bench/report.py
BIGSTORE=$BUILD/bench/bigstore
for bin in "$FLIPD" "$FLIPCTL" "$KV" "$FANOUT" "$DISK" "$FLOOR" "$BIGSTORE"; do
    [ -x "$bin" ] || {
        echo "run.sh: $bin is missing (make all bench-build)" >&2
        exit 2
    }
done
command -v python3 >/dev/null 2>&1 || {
    echo "run.sh: python3 is needed (reads the tools' JSON)" >&2
    exit 2
}

# ---- sizes -------------------------------------------------------------------

WANT_KILL_TRIALS=${KILL_TRIALS:-}
WANT_STALE_TRIALS=${STALE_TRIALS:-}
case "$MODE" in
full)
    SYSTEMS=(flipd etcd)
    DISK_N=1000 SEQ_N=2000 IDLE_N=200 LOAD_S=10 LOAD_WARM=1
    FAN_SIZES=(100 1000 10000) FAN_FLIPS=50 FILL=100000
    KILL_TRIALS=5 TERM_TRIALS=3 SIGNAL_AFTER_MS=1000 AFTER_MS=1000
    STALE_TRIALS=5
    ;;
quick)
    SYSTEMS=(flipd etcd)
    DISK_N=300 SEQ_N=300 IDLE_N=20 LOAD_S=3 LOAD_WARM=1
    FAN_SIZES=(100 1000) FAN_FLIPS=10 FILL=10000
    KILL_TRIALS=2 TERM_TRIALS=1 SIGNAL_AFTER_MS=500 AFTER_MS=500
    STALE_TRIALS=3
    ;;
smoke)
    SYSTEMS=(flipd)
    DISK_N=50 SEQ_N=30 IDLE_N=3 LOAD_S=1 LOAD_WARM=0
    FAN_SIZES=(50) FAN_FLIPS=5 FILL=2000
    KILL_TRIALS=1 TERM_TRIALS=1 SIGNAL_AFTER_MS=500 AFTER_MS=500
    STALE_TRIALS=1
    ;;
esac
# The large store and the subscriber flood (issue 9; bench_bigstore and
# bench_flood below): flags of BIG_VALUE bytes, one fresh cluster per size
# (etcd: the first size only); FLOOD_N subscribers at once on one node.
case "$MODE" in
full) BIG_SIZES=(100000 200000) FLOOD_N=10000 ;;
quick) BIG_SIZES=(20000) FLOOD_N=2000 ;;
smoke) BIG_SIZES=(2000) FLOOD_N=200 ;;
esac
BIG_VALUE=1024
BIG_CHURN=9000    # small writes past a stopped follower, one at a time
                  # (one raft entry each): > 2 x 4096, see bench_bigstore
BIG_RSS_LIMIT_MB=${BENCH_RSS_LIMIT_MB:-6144} # guard: a leader past it is killed
FLOOD_WRITER_MS=5 # the writer beside the flood: a flip every 5 ms
FLOOD_BASE_S=3    # its run before the flood
for v in "$WANT_KILL_TRIALS" "$WANT_STALE_TRIALS"; do
    [[ "$v" =~ ^([1-9][0-9]?)?$ ]] || { echo "run.sh: trial counts are 1-99" >&2; exit 2; }
done
[ "$ONLY" = failover ] && FAN_SIZES=()
KILL_TRIALS=${WANT_KILL_TRIALS:-$KILL_TRIALS}
STALE_TRIALS=${WANT_STALE_TRIALS:-$STALE_TRIALS}
FAN_GAP_MS=20
FAN_JITTER_MS=50 # flips fall at random points between raft heartbeats
WRITER_INTERVAL_MS=10

FB=${BENCH_FLIPD_BASE:-62000}
# shellcheck source=deploy/cluster.sh
. "$REPO/deploy/cluster.sh"
FLIPD_CLIENT_BASE=$FB
FLIPD_RAFT_BASE=$((FB + 50))
EB=${BENCH_ETCD_BASE:-63000}
SOURCE=${BENCH_SOURCE:-127.0.0.2}
NODES=(1 2 3)

MAIN_PID=$$
FLIPD_EXTRA=() # flags added to every flipd started (bench_bigstore)
declare -A PIDS=()   # "flipd:1" -> pid
ANOMALIES=()
START_S=$(date +%s)

say() {
    printf '%s %s\n' "$(date +%T)" "$*" >&2
}

anomaly() {
    ANOMALIES+=("$*")
    say "ANOMALY: $*"
}

die() {
    say "FATAL: $*"
    exit 1
}

# ---- cleanup -----------------------------------------------------------------

CLEANED=0
# shellcheck disable=SC2317 # runs from the EXIT trap
cleanup() {
    local rc=$? k pid
    [ "$BASHPID" = "$MAIN_PID" ] || return 0
    [ "$CLEANED" = 0 ] || return 0
    CLEANED=1
    trap - INT TERM
    for k in "${!PIDS[@]}"; do
        pid=${PIDS[$k]}
        [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    done
    for k in "${!PIDS[@]}"; do
        pid=${PIDS[$k]}
        [ -n "$pid" ] && wait "$pid" 2>/dev/null
    done
    if [ -n "${TMP:-}" ] && [ -d "$TMP" ]; then
        if [ "${KEEP:-0}" = 1 ]; then
            echo "run.sh: data, logs and JSON kept in $TMP" >&2
        else
            rm -rf "$TMP"
        fi
    fi
    exit "$rc"
}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/flipd-bench.XXXXXX") || {
    echo "run.sh: mktemp failed" >&2
    exit 2
}
RES=$TMP/results
mkdir -p "$RES"
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT
trap 'say "terminated"; exit 143' TERM

# ---- checks ------------------------------------------------------------------

if [[ " ${SYSTEMS[*]} " == *" etcd "* ]] && ! command -v etcd >/dev/null 2>&1; then
    say "etcd is missing: installing Debian's etcd-server and etcd-client"
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y \
            etcd-server etcd-client >"$TMP/apt.log" 2>&1 ||
            { tail -n 20 "$TMP/apt.log" >&2; die "apt-get install etcd-server failed"; }
    else
        die "etcd not found; install etcd-server (root and apt-get needed)"
    fi
fi
if [[ " ${SYSTEMS[*]} " == *" etcd "* ]]; then
    command -v etcdctl >/dev/null 2>&1 || die "etcdctl missing (apt-get install etcd-client)"
fi

busy=""
for i in "${NODES[@]}"; do
    for p in $((FB + i)) $((FB + 50 + i)) $((EB + i)) $((EB + 50 + i)); do
        flipd_port_busy "$p" && busy+=" $p"
    done
done
[ -z "$busy" ] || die "port(s)$busy in use; set BENCH_FLIPD_BASE / BENCH_ETCD_BASE"

# Subscribers and nodes need descriptors: 10,000 + spare in one process.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
MAXN=0
for n in "${FAN_SIZES[@]}" "$FLOOD_N"; do
    [ "$n" -gt "$MAXN" ] && MAXN=$n
done
if [ "$NOFILE" != unlimited ] && [ $((MAXN + 100)) -gt "$NOFILE" ]; then
    die "N=$MAXN subscribers need $((MAXN + 100)) descriptors; ulimit -Hn is $NOFILE"
fi
SOURCE_ARGS=()
if [ "$SOURCE" != none ] &&
    python3 -c 'import socket, sys; socket.socket().bind((sys.argv[1], 0))' "$SOURCE" 2>/dev/null; then
    SOURCE_ARGS=(--source "$SOURCE")
else
    say "warning: cannot bind $SOURCE; subscribers use the default source address"
fi

# ---- machine facts -----------------------------------------------------------

FS_TYPE=$(df -PT "$TMP" 2>/dev/null | awk 'NR == 2 {print $2}')
FS_DEV=$(df -PT "$TMP" 2>/dev/null | awk 'NR == 2 {print $1}')
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
GIT_REV=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo "?")
if [ -n "$(git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
    GIT_REV="$GIT_REV+dirty"
fi
ETCD_VERSION=-
if command -v etcd >/dev/null 2>&1; then
    ETCD_VERSION=$(etcd --version 2>/dev/null | awk '/etcd Version/ {print $3}')
fi
# shellcheck disable=SC1003,SC1091 # tr's quote set; os-release exists
python3 - "$RES/meta.json" <<EOF
import json, sys
json.dump({
    "mode": "$MODE",
    "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
    "host": "$(hostname)",
    "cores": $(nproc),
    "cpu": "$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo | tr -d '"\\')",
    "ram_gib": $(awk '/MemTotal/ {printf "%.1f", $2 / 1048576}' /proc/meminfo),
    "kernel": "$(uname -r)",
    "os": "$(. /etc/os-release 2>/dev/null; echo "${PRETTY_NAME:-?}")",
    "fs": "$FS_TYPE",
    "fs_dev": "$FS_DEV",
    "data_dir": "$TMP",
    "load_start": "$LOAD_START",
    "flipd_rev": "$GIT_REV",
    "etcd_version": "$ETCD_VERSION",
    "systems": "${SYSTEMS[*]}",
    "fan_sizes": "${FAN_SIZES[*]}",
    "fan_flips": $FAN_FLIPS,
    "fill": $FILL,
    "seq_n": $SEQ_N,
    "idle_n": $IDLE_N,
    "load_s": $LOAD_S,
    "kill_trials": $KILL_TRIALS,
    "term_trials": $TERM_TRIALS,
    "stale_trials": $STALE_TRIALS,
    "writer_interval_ms": $WRITER_INTERVAL_MS,
    "nofile": "$NOFILE",
    "only": "$ONLY",
    "big_sizes": "${BIG_SIZES[*]}",
    "big_value": $BIG_VALUE,
    "flood_n": $FLOOD_N,
    "flood_writer_ms": $FLOOD_WRITER_MS,
    "big_churn": $BIG_CHURN,
    "big_rss_limit_mb": $BIG_RSS_LIMIT_MB,
}, open(sys.argv[1], "w"), indent=1)
EOF
say "bench ($MODE): data in $TMP ($FS_TYPE on $FS_DEV), load $LOAD_START"

# ---- clusters ----------------------------------------------------------------

# flipd nodes start and stop through deploy/cluster.sh, as make run's
# and the tests' do.
FLIPD_CLUSTER=$(flipd_spec ${#NODES[@]})
ETCD_CLUSTER=""
for i in "${NODES[@]}"; do
    ETCD_CLUSTER+="${ETCD_CLUSTER:+,}e$i=http://127.0.0.1:$((EB + 50 + i))"
done

caddr() { # SYS I -> client host:port
    if [ "$1" = flipd ]; then
        flipd_client_addr "$2"
    else
        echo "127.0.0.1:$((EB + $2))"
    fi
}

all_endpoints() {
    echo "$(caddr "$1" 1),$(caddr "$1" 2),$(caddr "$1" 3)"
}

# The leader first, then the others: writers start on the leader.
leader_first() { # SYS LEADER
    local e i
    e=$(caddr "$1" "$2")
    for i in "${NODES[@]}"; do
        [ "$i" = "$2" ] || e+=",$(caddr "$1" "$i")"
    done
    echo "$e"
}

node_start() { # SYS I DIR
    local sys=$1 i=$2 dir=$3
    mkdir -p "$dir"
    if [ "$sys" = flipd ]; then
        flipd_node_start "$FLIPD" "$i" "$dir/n$i" "$dir/n$i.log" \
            "$(flipd_client_addr "$i")" "$(flipd_raft_addr "$i")" \
            "$FLIPD_CLUSTER" ${FLIPD_EXTRA[@]+"${FLIPD_EXTRA[@]}"}
        PIDS[$sys:$i]=$FLIPD_PID
        return
    else
        # Debian's etcd 3.4 defaults: heartbeat 100 ms, election 1000 ms,
        # snapshot-count 100000, fsync on (no --unsafe-no-fsync).
        env -u ETCD_DATA_DIR -u ETCD_NAME etcd --name "e$i" \
            --data-dir "$dir/n$i" \
            --listen-client-urls "http://$(caddr etcd "$i")" \
            --advertise-client-urls "http://$(caddr etcd "$i")" \
            --listen-peer-urls "http://127.0.0.1:$((EB + 50 + i))" \
            --initial-advertise-peer-urls "http://127.0.0.1:$((EB + 50 + i))" \
            --initial-cluster "$ETCD_CLUSTER" --initial-cluster-state new \
            --initial-cluster-token "flipd-bench-$MAIN_PID" \
            --logger zap --log-outputs stderr \
            >>"$dir/n$i.log" 2>&1 </dev/null &
    fi
    PIDS[$sys:$i]=$!
}

# Nodes that exited although nobody stopped them.
check_alive() { # SYS DIR
    local i rc pid
    for i in "${NODES[@]}"; do
        pid=${PIDS[$1:$i]:-}
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            rc=0
            wait "$pid" 2>/dev/null || rc=$?
            PIDS[$1:$i]=""
            anomaly "$1 n$i exited on its own (status $rc); log tail:"
            tail -n 15 "$2/n$i.log" >&2
        fi
    done
}

# SIGTERM, wait up to 15 s, else SIGKILL. Sets STOP_RC.
node_stop() { # SYS I
    local pid=${PIDS[$1:$2]:-}
    STOP_RC=""
    [ -n "$pid" ] || return 0
    flipd_node_stop "$pid" 15
    STOP_RC=$FLIPD_STOP_RC
    PIDS[$1:$2]=""
}

cluster_stop() { # SYS
    local i
    for i in "${NODES[@]}"; do
        node_stop "$1" "$i"
        if [ -n "$STOP_RC" ] && [ "$STOP_RC" != 0 ] &&
            { [ "$1" = flipd ] || [ "$STOP_RC" != 143 ]; }; then
            anomaly "$1 n$i: SIGTERM at the end of a phase: exit status $STOP_RC"
        fi
    done
}

# Sets LEADER (node number) once all three answer, agree on one leader and
# have applied the same index. 10 polls a second, at most TIMEOUT_S.
wait_converged() { # SYS DIR TIMEOUT_S
    local sys=$1 dir=$2 timeout=$3 n out
    LEADER=""
    for ((n = 0; n < timeout * 10; n++)); do
        if [ "$sys" = flipd ]; then
            out=$(timeout 5 "$FLIPCTL" --endpoints "$(all_endpoints flipd)" \
                --json --timeout 300 status 2>/dev/null)
        else
            out=$(timeout 5 etcdctl --endpoints "$(all_endpoints etcd)" \
                --command-timeout=1s --dial-timeout=1s endpoint status \
                -w json 2>/dev/null)
        fi
        LEADER=$(printf '%s' "$out" |
            python3 "$REPORT" leader "$sys" "$(all_endpoints "$sys")" 2>/dev/null)
        [ -n "$LEADER" ] && return 0
        check_alive "$sys" "$dir"
        sleep 0.1
    done
    say "$sys: not converged after ${timeout}s; last status: $out"
    return 1
}

cluster_start() { # SYS DIR
    local i
    for i in "${NODES[@]}"; do
        node_start "$1" "$i" "$2"
    done
    wait_converged "$1" "$2" 60
}

# run_tool NAME SECONDS CMD...: runs a tool under timeout, JSON to
# $RES/NAME.json, stderr to $RES/NAME.err; notes a non-zero exit.
run_tool() {
    local name=$1 secs=$2 rc=0
    shift 2
    timeout -k 5 "$secs" "$@" >"$RES/$name.json" 2>"$RES/$name.err" || rc=$?
    if [ "$rc" != 0 ]; then
        anomaly "$name: exit status $rc: $(head -c 300 "$RES/$name.err" | tr '\n' ' ')"
    fi
    return 0
}

rss_of() { # PID -> VmRSS kB
    awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo -1
}

# Key history after a writer trial: was any flip applied twice?
# The watch never ends by itself: 2 s is plenty to replay a few hundred
# changes; a history that did not reach the last ack is not counted.
dup_check() { # SYS NAME PREFIX
    local sys=$1 name=$2 prefix=$3 from last
    read -r from last < <(python3 -c 'import json,sys
try:
    d = json.load(open(sys.argv[1]))
    print(max(int(d["first_revision"]) - 1, 1), int(d["last_revision"]))
except Exception:
    print(0, 0)' "$RES/$name.json")
    [ "${from:-0}" != 0 ] || return 0
    if [ "$sys" = flipd ]; then
        timeout 2 "$FLIPCTL" --endpoints "$(all_endpoints flipd)" --json \
            watch "$prefix" --from-revision "$from" >"$RES/$name.hist" 2>/dev/null
    else
        timeout 2 etcdctl --endpoints "$(all_endpoints etcd)" watch \
            --rev "$from" --prefix "$prefix" -w json >"$RES/$name.hist" 2>/dev/null
    fi
    python3 "$REPORT" dups "$sys" "$RES/$name.hist" "$last" \
        >"$RES/$name.dups.json" 2>/dev/null || echo '{}' >"$RES/$name.dups.json"
    if ! grep -q '"complete": true' "$RES/$name.dups.json"; then
        anomaly "$sys $name: key history incomplete; flips applied twice not checked"
    fi
}

# ---- the phases --------------------------------------------------------------

bench_system() { # SYS
    local sys=$1 dir=$TMP/$1 n pids i k trial fanbin leader eps pid
    local kv=("$KV" --system "$sys")

    # a-c on one cluster.
    if [ -z "$ONLY" ]; then
    say "$sys: starting 3 nodes"
    cluster_start "$sys" "$dir/a" || { anomaly "$sys: cluster did not converge"; cluster_stop "$sys"; return; }
    leader=$LEADER
    eps=$(leader_first "$sys" "$leader")
    say "$sys: leader n$leader; sequential latency"
    run_tool "$sys-seq" 300 "${kv[@]}" --endpoints "$eps" --mode seq \
        --n "$SEQ_N" --warmup 20 --max-seconds 240
    run_tool "$sys-idle" 300 "${kv[@]}" --endpoints "$eps" --mode seq \
        --n "$IDLE_N" --idle-ms 100 --warmup 2 --max-seconds 240
    for k in 32 128; do
        say "$sys: throughput, $k in flight"
        wait_converged "$sys" "$dir/a" 30 || anomaly "$sys: not converged before load $k"
        run_tool "$sys-load$k" 120 "${kv[@]}" --endpoints "$(all_endpoints "$sys")" \
            --mode load --inflight "$k" --seconds "$LOAD_S" \
            --warmup-seconds "$LOAD_WARM" --max-seconds 90
    done
    pids="${PIDS[$sys:1]},${PIDS[$sys:2]},${PIDS[$sys:3]}"
    echo "{\"pids\":[${pids}],\"rss_kb\":[$(rss_of "${PIDS[$sys:1]}"),$(rss_of "${PIDS[$sys:2]}"),$(rss_of "${PIDS[$sys:3]}")]}" \
        >"$RES/$sys-rss-idle.json"
    for n in "${FAN_SIZES[@]}"; do
        wait_converged "$sys" "$dir/a" 30 || anomaly "$sys: not converged before fan-out $n"
        say "$sys: fan-out to $n subscribers"
        run_tool "$sys-fan$n" 300 "$FANOUT" --system "$sys" \
            --endpoints "$(leader_first "$sys" "$LEADER")" --n "$n" \
            --flips "$FAN_FLIPS" --gap-ms "$FAN_GAP_MS" \
            --gap-jitter-ms "$FAN_JITTER_MS" --attach-seconds 90 \
            --max-seconds 240 --rss-pids "$pids" \
            ${SOURCE_ARGS[@]+"${SOURCE_ARGS[@]}"}
        sed 's/^/    /' "$RES/$sys-fan$n.err" | head -n 5 >&2
        sleep 2 # let the nodes close the N connections
    done
    check_alive "$sys" "$dir/a"
    cluster_stop "$sys"
    fi

    # d-e on a fresh cluster.
    say "$sys: fresh cluster$([ "$ONLY" = failover ] && echo " for the failover trials")"
    cluster_start "$sys" "$dir/b" || { anomaly "$sys: fresh cluster did not converge"; cluster_stop "$sys"; return; }
    if [ -z "$ONLY" ]; then
    say "$sys: $FILL flips, 128 in flight"
    run_tool "$sys-fill" 600 "${kv[@]}" --endpoints "$(all_endpoints "$sys")" \
        --mode load --inflight 128 --count "$FILL" --keys 1000 \
        --prefix bench.fill. --max-seconds 500
    sleep 1
    {
        printf '{"flips":%s,"allocated":[' "$FILL"
        for i in "${NODES[@]}"; do
            printf '%s%s' "$([ "$i" = 1 ] || echo ,)" "$(du -s --block-size=1 "$dir/b/n$i" | cut -f1)"
        done
        printf '],"apparent":['
        for i in "${NODES[@]}"; do
            printf '%s%s' "$([ "$i" = 1 ] || echo ,)" "$(du -s --apparent-size --block-size=1 "$dir/b/n$i" | cut -f1)"
        done
        printf ']}\n'
    } >"$RES/$sys-du.json"
    fi

    for kind in kill term; do
        local trials=$KILL_TRIALS sig=9
        if [ "$kind" = term ]; then
            trials=$TERM_TRIALS sig=15
        fi
        for ((trial = 1; trial <= trials; trial++)); do
            wait_converged "$sys" "$dir/b" 60 || { anomaly "$sys: no leader before $kind trial $trial"; break; }
            leader=$LEADER
            pid=${PIDS[$sys:$leader]}
            say "$sys: $kind trial $trial: signal $sig to leader n$leader (pid $pid) under a writer"
            run_tool "$sys-$kind$trial" 60 "${kv[@]}" \
                --endpoints "$(leader_first "$sys" "$leader")" --mode writer \
                --interval-ms "$WRITER_INTERVAL_MS" --signal-pid "$pid" \
                --signal "$sig" --signal-after-ms "$SIGNAL_AFTER_MS" \
                --after-ms "$AFTER_MS" \
                --max-seconds 30 --prefix "bench.$kind$trial."
            # The signalled node: reap it (SIGTERM: it must exit by itself).
            local n2 rc=0
            for ((n2 = 0; n2 < 1500; n2++)); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.01
            done
            if kill -0 "$pid" 2>/dev/null; then
                anomaly "$sys: n$leader still running 15 s after signal $sig; killed"
                kill -9 "$pid" 2>/dev/null
                rc=hung
            fi
            wait "$pid" 2>/dev/null || rc=$?
            echo "{\"exit\":\"$rc\"}" >"$RES/$sys-$kind$trial.exit.json"
            # etcd re-raises SIGTERM after its clean shutdown: 143.
            if [ "$kind" = term ] && [ "$rc" != 0 ] &&
                { [ "$sys" = flipd ] || [ "$rc" != 143 ]; }; then
                anomaly "$sys: n$leader exit status after SIGTERM: $rc"
            fi
            PIDS[$sys:$leader]=""
            dup_check "$sys" "$sys-$kind$trial" "bench.$kind$trial."
            node_start "$sys" "$leader" "$dir/b"
        done
    done
    wait_converged "$sys" "$dir/b" 60 || anomaly "$sys: not converged at the end"
    check_alive "$sys" "$dir/b"
    cluster_stop "$sys"
    for i in "${NODES[@]}"; do
        if grep -qE '"level":"(panic|fatal)"|panic:|Assertion|AddressSanitizer' "$dir"/*/n"$i".log 2>/dev/null; then
            anomaly "$sys n$i log: $(grep -hE -m1 '"level":"(panic|fatal)"|panic:|Assertion|AddressSanitizer' "$dir"/*/n"$i".log | head -c 200)"
        fi
    done
}

# The documents' time promises (flipd only, default flags): the stale
# notice after leader loss, the slow-consumer close, fail-static start
# (bench/promises.py). The failover promise is the kill -9 rows above.
bench_promises() {
    local dir=$TMP/flipd/c trial w x i key rev
    say "flipd: documented time promises on a fresh cluster"
    cluster_start flipd "$dir" || { anomaly "flipd: promises cluster did not converge"; cluster_stop flipd; return; }
    for ((trial = 1; trial <= STALE_TRIALS; trial++)); do
        wait_converged flipd "$dir" 60 || { anomaly "flipd: no leader before stale trial $trial"; break; }
        w=$((LEADER % 3 + 1))
        x=$((w % 3 + 1))
        say "flipd: stale trial $trial: subscriber on n$w, kill -9 of n$LEADER and n$x"
        run_tool "flipd-stale$trial" 60 python3 "$REPO/bench/promises.py" stale \
            "$(caddr flipd "$w")" "${PIDS[flipd:$LEADER]}" "${PIDS[flipd:$x]}"
        for i in "$LEADER" "$x"; do
            wait "${PIDS[flipd:$i]}" 2>/dev/null
            PIDS[flipd:$i]=""
            node_start flipd "$i" "$dir"
        done
    done
    if [ "$ONLY" = failover ]; then
        # the restarted nodes must be up (signal handlers set) before SIGTERM
        wait_converged flipd "$dir" 60 || anomaly "flipd: no leader after the stale trials"
        cluster_stop flipd
        return
    fi
    wait_converged flipd "$dir" 60 || anomaly "flipd: no leader before the slow-consumer trial"
    say "flipd: slow consumer on n$LEADER: cut-off -> connection let go"
    run_tool flipd-slow 150 python3 "$REPO/bench/promises.py" slow \
        "$(caddr flipd "$LEADER")" "$dir/n$LEADER.log"
    key=bench.promise.static
    rev=$(timeout 10 "$FLIPCTL" --endpoints "$(all_endpoints flipd)" set "$key" false --type bool 2>/dev/null)
    timeout 10 "$FLIPCTL" --endpoints "$(all_endpoints flipd)" watch bench.promise. \
        --cache "$dir/lkg" --until-revision "${rev:-1}" --timeout 5000 >/dev/null 2>&1 ||
        anomaly "flipd: the watch wrote no last-known-good file"
    for i in "${NODES[@]}"; do
        kill -9 "${PIDS[flipd:$i]}" 2>/dev/null
        wait "${PIDS[flipd:$i]}" 2>/dev/null
        PIDS[flipd:$i]=""
    done
    say "flipd: fail-static: eval with every node down"
    run_tool flipd-failstatic 60 python3 "$REPO/bench/promises.py" failstatic \
        "$FLIPCTL" "$(all_endpoints flipd)" "$dir/lkg" "$key"
}

# ---- large store and subscriber flood (issue 9) -----------------------------

# {"rss_kb":[...],"hwm_kb":[...]} of the three nodes of SYS (-1: not running).
# {"rss_kb":[...],"hwm_kb":[...],"anon_kb":[...],"file_kb":[...]} of the
# three nodes of SYS (-1: not running).
nodes_rss_json() { # SYS
    local i pid f k
    local -A v=()
    for i in "${NODES[@]}"; do
        pid=${PIDS[$1:$i]:-}
        for f in VmRSS VmHWM RssAnon RssFile; do
            k=-1
            if [ -n "$pid" ] && [ -r "/proc/$pid/status" ]; then
                k=$(awk -v f="$f:" '$1 == f {print $2}' "/proc/$pid/status")
            fi
            v[$f]+="${v[$f]:+,}${k:--1}"
        done
    done
    echo "{\"rss_kb\":[${v[VmRSS]}],\"hwm_kb\":[${v[VmHWM]}],\"anon_kb\":[${v[RssAnon]}],\"file_kb\":[${v[RssFile]}]}"
}

lines_of() { # FILE... -> lines in all of them
    cat "$@" 2>/dev/null | wc -l
}

# Once converged (else LEADER=FALLBACK), a follower stopped (SIGTERM) and
# started again, timed by `bigstore wait` into SYS-TAG-restart.json: flipd
# until live with the leader's applied index, etcd until a linearizable
# range is answered there.
cold_restart() { # SYS DIR TAG FALLBACK_LEADER
    local sys=$1 dir=$2 tag=$3 f t0
    wait_converged "$sys" "$dir" 60 || anomaly "$sys: $tag not converged before the restart"
    LEADER=${LEADER:-$4}
    f=$((LEADER % 3 + 1))
    say "$sys: $tag: n$f stopped and cold-started"
    node_stop "$sys" "$f"
    t0=$(date +%s%N)
    node_start "$sys" "$f" "$dir"
    run_tool "$sys-$tag-restart" 300 "$BIGSTORE" wait --system "$sys" \
        --node "$(caddr "$sys" "$f")" --leader "$(caddr "$sys" "$LEADER")" \
        --t0-ns "$t0" --max-seconds 240
}

# flipd with N flags of BIG_VALUE bytes on a fresh cluster (default flags
# but for a 1 GiB store budget), RSS after each step:
# 1. the fill, the leader probed;
# 2. a follower stopped (SIGTERM) and cold-started, timed until live;
# 3. that follower stopped again; small writes, one at a time (one raft
#    entry each), make the leader snapshot the whole store and drop its
#    log past it, the leader probed: with threshold 4096 and trailing 1024
#    the second snapshot after the stop is sure to, so BIG_CHURN > 2 x 4096;
# 4. the follower restarted and timed until it applied the leader's index
#    (through an InstallSnapshot: its log says "restored snapshot"), the
#    leader probed and its RssAnon watched: past BIG_RSS_LIMIT_MB the
#    leader is killed (a guard for the machine) and the size ends there.
# Leadership changes are counted in the node logs from the fill to the end
# of the catch-up (before any guard kill).
bench_bigstore() { # N
    local n=$1 tag=big$1 dir=$TMP/flipd/big$1 leader f t0 snaps lc fsnaps
    FLIPD_EXTRA=(--max-store-bytes 1073741824)
    say "flipd: large store: $n flags of $BIG_VALUE bytes, fresh cluster"
    if ! cluster_start flipd "$dir"; then
        anomaly "flipd: $tag cluster did not converge"
        cluster_stop flipd
        FLIPD_EXTRA=()
        return
    fi
    leader=$LEADER
    lc=$(cat "$dir"/n*.log | grep -c -- '-> leader')
    snaps=$(lines_of "$dir/n$leader.log")
    run_tool "flipd-$tag-fill" 900 "$BIGSTORE" fill --system flipd \
        --endpoints "$(leader_first flipd "$leader")" --n "$n" \
        --value-bytes "$BIG_VALUE" --threads 32 \
        --probe "$(caddr flipd "$leader")" --max-seconds 800
    python3 "$REPORT" snaplog "$dir/n$leader.log" "$snaps" \
        >"$RES/flipd-$tag-fill-snaps.json"
    sleep 1
    nodes_rss_json flipd >"$RES/flipd-$tag-rss-fill.json"
    echo "{\"allocated\":$(du -s --block-size=1 "$dir/n$leader" | cut -f1)}" \
        >"$RES/flipd-$tag-du.json"
    cold_restart flipd "$dir" "$tag" "$leader"
    leader=$LEADER
    f=$((leader % 3 + 1))
    nodes_rss_json flipd >"$RES/flipd-$tag-rss-restart.json"

    say "flipd: $tag: n$f stopped; $BIG_CHURN small writes (leader n$leader snapshots the store)"
    node_stop flipd "$f"
    snaps=$(lines_of "$dir/n$leader.log")
    run_tool "flipd-$tag-churn" 300 "$BIGSTORE" fill --system flipd \
        --endpoints "$(leader_first flipd "$leader")" --n "$BIG_CHURN" \
        --keys 64 --value-bytes 16 --prefix big.tick. --threads 1 \
        --probe "$(caddr flipd "$leader")" --max-seconds 240
    sleep 2 # the last snapshot finishes off the loop
    python3 "$REPORT" snaplog "$dir/n$leader.log" "$snaps" \
        >"$RES/flipd-$tag-churn-snaps.json"

    say "flipd: $tag: n$f restarted: catch-up by InstallSnapshot"
    fsnaps=$(lines_of "$dir/n$f.log")
    t0=$(date +%s%N)
    node_start flipd "$f" "$dir"
    run_tool "flipd-$tag-catchup" 300 "$BIGSTORE" wait --system flipd \
        --node "$(caddr flipd "$f")" --leader "$(caddr flipd "$leader")" \
        --probe "$(caddr flipd "$leader")" --t0-ns "$t0" --max-seconds 240 \
        --watch-pid "${PIDS[flipd:$leader]}" --rss-limit-mb "$BIG_RSS_LIMIT_MB"
    nodes_rss_json flipd >"$RES/flipd-$tag-rss-catchup.json"
    echo "{\"leader_changes\":$(($(cat "$dir"/n*.log | grep -c -- '-> leader') - lc))}" \
        >"$RES/flipd-$tag-changes.json"
    if grep -q '"rss_limit_hit":true' "$RES/flipd-$tag-catchup.json"; then
        anomaly "flipd: $tag: the leader's RssAnon passed $BIG_RSS_LIMIT_MB MiB during the catch-up: leader killed"
        kill -9 "${PIDS[flipd:$leader]}" 2>/dev/null
        wait "${PIDS[flipd:$leader]}" 2>/dev/null
        PIDS[flipd:$leader]=""
    fi
    echo "{\"installs\":$(tail -n +"$((fsnaps + 1))" "$dir/n$f.log" | grep -c 'fsm: restored snapshot')}" \
        >"$RES/flipd-$tag-installs.json"
    check_alive flipd "$dir"
    cluster_stop flipd
    FLIPD_EXTRA=()
}

# etcd with the same N values on a fresh cluster (Debian's defaults): the
# fill, `etcdctl snapshot save` from the leader, defrag of the leader, a
# follower's cold restart (until it serves a linearizable range), RSS.
bench_bigstore_etcd() { # N
    local n=$1 tag=big$1 dir=$TMP/etcd/big$1 leader t0 t1
    say "etcd: large store: $n values of $BIG_VALUE bytes, fresh cluster"
    if ! cluster_start etcd "$dir"; then
        anomaly "etcd: $tag cluster did not converge"
        cluster_stop etcd
        return
    fi
    leader=$LEADER
    run_tool "etcd-$tag-fill" 900 "$BIGSTORE" fill --system etcd \
        --endpoints "$(all_endpoints etcd)" --n "$n" \
        --value-bytes "$BIG_VALUE" --threads 32 --max-seconds 800
    sleep 1
    nodes_rss_json etcd >"$RES/etcd-$tag-rss-fill.json"
    t0=$(date +%s%N)
    if timeout 300 etcdctl --endpoints "$(caddr etcd "$leader")" snapshot save \
        "$dir/snap.db" >"$RES/etcd-$tag-snapsave.err" 2>&1; then
        t1=$(date +%s%N)
        echo "{\"ms\":$(((t1 - t0) / 1000000)),\"bytes\":$(stat -c %s "$dir/snap.db")}" \
            >"$RES/etcd-$tag-snapsave.json"
    else
        anomaly "etcd: snapshot save failed: $(head -c 200 "$RES/etcd-$tag-snapsave.err")"
    fi
    rm -f "$dir/snap.db"
    t0=$(date +%s%N)
    if timeout 300 etcdctl --endpoints "$(caddr etcd "$leader")" \
        --command-timeout=240s defrag >"$RES/etcd-$tag-defrag.err" 2>&1; then
        t1=$(date +%s%N)
        echo "{\"ms\":$(((t1 - t0) / 1000000))}" >"$RES/etcd-$tag-defrag.json"
    else
        anomaly "etcd: defrag failed: $(head -c 200 "$RES/etcd-$tag-defrag.err")"
    fi
    cold_restart etcd "$dir" "$tag" "$leader"
    leader=$LEADER
    nodes_rss_json etcd >"$RES/etcd-$tag-rss-restart.json"
    echo "{\"allocated\":$(du -s --block-size=1 "$dir/n$leader" | cut -f1)}" \
        >"$RES/etcd-$tag-du.json"
    check_alive etcd "$dir"
    cluster_stop etcd
}

# FLOOD_N subscribers (one TCP connection each, bench/fanout with a window
# of all of them) connecting at once to the leader of a fresh cluster, each
# to a prefix of 100 flags: time until every one has its snapshot
# (SNAPSHOT_END; the node sends the live heartbeat right after), the
# leader's RSS before and with them attached, and a writer flipping another
# key every FLOOD_WRITER_MS: its latency before the flood and during it.
bench_flood() {
    local dir=$TMP/flipd/flood leader eps wpid ppid pid i
    say "flipd: subscriber flood: $FLOOD_N at once on the leader, fresh cluster"
    if ! cluster_start flipd "$dir"; then
        anomaly "flipd: flood cluster did not converge"
        cluster_stop flipd
        return
    fi
    leader=$LEADER
    pid=${PIDS[flipd:$leader]}
    eps=$(leader_first flipd "$leader")
    run_tool flipd-flood-seed 120 "$BIGSTORE" fill --system flipd \
        --endpoints "$eps" --n 100 --value-bytes 64 --threads 4 \
        --prefix bench.flood. --max-seconds 100
    run_tool flipd-flood-base 120 "$BIGSTORE" writer --endpoints "$eps" \
        --interval-ms "$FLOOD_WRITER_MS" --seconds "$FLOOD_BASE_S" \
        --key bench.floodw
    echo "{\"rss_kb\":$(rss_of "$pid")}" >"$RES/flipd-flood-rss-before.json"
    timeout -k 5 300 "$BIGSTORE" writer --endpoints "$eps" \
        --interval-ms "$FLOOD_WRITER_MS" --seconds 280 --key bench.floodw \
        --ready-file "$TMP/flood-writer.ready" \
        >"$RES/flipd-flood-writer.json" 2>"$RES/flipd-flood-writer.err" &
    wpid=$!
    PIDS[bench:floodwriter]=$wpid
    timeout -k 5 300 "$BIGSTORE" probe --probe "$(caddr flipd "$leader")" \
        --seconds 280 --ready-file "$TMP/flood-probe.ready" \
        >"$RES/flipd-flood-probe.json" 2>"$RES/flipd-flood-probe.err" &
    ppid=$!
    PIDS[bench:floodprobe]=$ppid
    # both running (their SIGTERM handlers in place), at most 10 s
    for ((i = 0; i < 100; i++)); do
        [ -e "$TMP/flood-writer.ready" ] && [ -e "$TMP/flood-probe.ready" ] && break
        sleep 0.1
    done
    sleep 0.3
    run_tool flipd-flood 300 "$FANOUT" --endpoints "$(caddr flipd "$leader")" \
        --n "$FLOOD_N" --window "$FLOOD_N" --flips 5 --gap-ms 20 \
        --prefix bench.flood. --key bench.flood.k --attach-seconds 120 \
        --max-seconds 240 --rss-pids "$pid" \
        ${SOURCE_ARGS[@]+"${SOURCE_ARGS[@]}"}
    kill -TERM "$wpid" "$ppid" 2>/dev/null
    wait "$wpid" "$ppid" 2>/dev/null
    PIDS[bench:floodwriter]=""
    PIDS[bench:floodprobe]=""
    sed 's/^/    /' "$RES/flipd-flood.err" | head -n 5 >&2
    sleep 1
    echo "{\"rss_kb\":$(rss_of "$pid")}" >"$RES/flipd-flood-rss-after.json"
    check_alive flipd "$dir"
    cluster_stop flipd
}

bench_issue9() {
    local n first=1
    for n in "${BIG_SIZES[@]}"; do
        bench_bigstore "$n"
        if [ "$first" = 1 ] && [[ " ${SYSTEMS[*]} " == *" etcd "* ]]; then
            bench_bigstore_etcd "$n"
        fi
        first=0
    done
    bench_flood
}

say "disk floor: $DISK_N x 4 KiB write + fdatasync in $TMP"
run_tool disk 120 "$DISK" --dir "$TMP" --n "$DISK_N"
for n in ${FAN_SIZES[@]+"${FAN_SIZES[@]}"}; do
    say "fan-out floor: one frame to $n loopback subscribers from 3 processes"
    run_tool "floor-fan$n" 180 "$FLOOR" --n "$n" --senders 3 \
        --rounds "$FAN_FLIPS" --max-seconds 120 \
        ${SOURCE_ARGS[@]+"${SOURCE_ARGS[@]}"}
    sleep 1
done

for sys in "${SYSTEMS[@]}"; do
    bench_system "$sys"
done
bench_promises
[ "$ONLY" = failover ] || bench_issue9

# ---- report ------------------------------------------------------------------

ELAPSED=$(($(date +%s) - START_S))
printf '%s\n' "${ANOMALIES[@]+"${ANOMALIES[@]}"}" >"$RES/anomalies.txt"
python3 - "$RES/meta.json" "$ELAPSED" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
m["elapsed_s"] = int(sys.argv[2])
m["load_end"] = sys.argv[3]
json.dump(m, open(sys.argv[1], "w"), indent=1)
EOF

REPORT_MD=$TMP/report.md
rc=0
python3 "$REPORT" table "$RES" >"$REPORT_MD" || rc=$?
cat "$REPORT_MD"
if [ -n "$OUT" ]; then
    cp "$REPORT_MD" "$OUT"
fi
if [ "$SAVE" = 1 ]; then
    mkdir -p "$REPO/bench/results"
    day=$(date -u +%Y-%m-%d)
    file=$REPO/bench/results/$day.md
    [ "$MODE" = quick ] && file=$REPO/bench/results/$day-quick.md
    if [ -s "$file" ]; then
        { echo; echo "---"; echo; cat "$REPORT_MD"; } >>"$file"
    else
        cp "$REPORT_MD" "$file"
    fi
    say "report written to ${file#"$REPO"/}"
fi
# rc: 0 all figures present, 1 some missing (report.py decides).
[ "$rc" = 0 ] || exit 1
exit 0
