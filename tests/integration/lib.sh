#!/usr/bin/env bash
# shellcheck shell=bash
# tests/integration/lib.sh: sourced by every tests/integration/test_*.sh.
#
# It starts real flipd processes on 127.0.0.1, each with its own data dir
# under a fresh temp dir, and always tears them down (trap on EXIT). A test:
#
#   #!/usr/bin/env bash
#   # One sentence: the behaviour this test proves.
#   set -euo pipefail
#   . "$(dirname "$0")/lib.sh" "$@"          # $1 = BUILD_DIR
#   cluster_start 3
#   leader=$(wait_leader 15) || fail "no leader"
#   rev=$(fctl set checkout.new_flow true) || fail "set failed"
#   node_kill "$leader"                       # kill -9
#   wait_leader 15 >/dev/null || fail "no new leader"
#   assert_eq "$(fctl get checkout.new_flow)" true "value after failover"
#
# Exit codes: 0 pass, 77 skip (call `skip WHY`), anything else fail.
#
# What you get after sourcing:
#   BUILD FLIPD FLIPCTL  absolute paths to the build dir and the binaries
#   TMP                  this test's temp dir: nI/ (data), nI.log (stderr)
#   BASE_PORT            node I listens on client BASE_PORT+I and raft
#                        BASE_PORT+50+I (set BASE_PORT in the environment to
#                        pin it; otherwise a free range is picked)
#   CLUSTER_SIZE         set by cluster_start
#   FLIPD_ARGS           array of flags given to every node; defaults to the
#                        fast test timeouts. Append before cluster_start, e.g.
#                        FLIPD_ARGS+=(--snapshot-threshold 64)
#
# Functions (none of them may run inside $(...) unless noted "echoes":
# a subshell cannot record pids or fail the test):
#   cluster_start N [ARGS..]   start nodes 1..N (ARGS added to each command)
#   node_start I [ARGS..]      start (or restart) node I on its data dir
#   node_kill I [SIG]          send SIG (default KILL); for terminating
#                              signals wait (bounded) until it is gone
#   node_stop I                SIGTERM, wait; returns the node's exit status
#   node_restart I [ARGS..]    kill -9 if running, then node_start
#   node_pid I                 echoes the pid ("" when not running)
#   node_alive I               true while the process exists
#   node_log I                 echoes the log path
#   client_addr I / raft_addr I / endpoints     echo addresses
#   wait_port I TIMEOUT_S      until node I accepts TCP on its client port
#   wait_leader TIMEOUT_S      echoes the leader id once exactly one
#                              reachable node says "leader" and no reachable
#                              node names another leader; returns 1 on timeout
#   fctl ARGS..                BUILD/flipctl --endpoints <all nodes> ARGS..
#   fctl_node I ARGS..         flipctl talking to node I only
#   json_get KEY..             reads JSON on stdin, prints the value at the
#                              path (object keys or array indexes); strings
#                              raw, everything else as JSON (true, 12, null)
#   wait_until TIMEOUT_S CMD.. run CMD every 0.1 s until it succeeds
#   expect_rc RC CMD..         run CMD, fail unless it exits with RC
#   assert_eq GOT WANT [WHAT]  fail unless equal
#   say MSG / fail MSG / skip WHY
#
# cleanup (trap on EXIT; INT/TERM exit 130/143 and so run it too) stops
# every process this test started (SIGTERM, then SIGKILL after
# LIB_CLEANUP_WAIT_S, default 10), reaps them, fails the test if any node log
# holds a sanitizer report, and removes TMP unless KEEP=1 or the test failed:
# then it prints the tail of each node log and where the logs are.
#
# Every loop here is bounded in iterations and in wall time.

# ---- setup -----------------------------------------------------------------

if [ -z "${1:-}" ]; then
    echo "usage: $0 BUILD_DIR" >&2
    exit 2
fi
BUILD=$(cd "$1" 2>/dev/null && pwd) || {
    echo "$0: build dir '$1' not found" >&2
    exit 2
}
FLIPD=$BUILD/flipd
FLIPCTL=$BUILD/flipctl
TEST_NAME=$(basename "$0" .sh)
CLUSTER_SIZE=0
LIB_MAX_NODES=${LIB_MAX_NODES:-7}
LIB_MAIN_PID=$$
LIB_FAIL_MSG=""
LIB_CLEANED=0
NODE_PIDS=()
NODE_RC=()
NODE_JOINED=()
FCTL_DEADLINE_S=${FCTL_DEADLINE_S:-20}
if [ -z "${FLIPD_ARGS+set}" ]; then
    FLIPD_ARGS=(--election-ms 300 --heartbeat-ms 30)
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

say() {
    printf '%s [%s] %s\n' "$(date +%T.%3N)" "$TEST_NAME" "$*" >&2
}

fail() {
    LIB_FAIL_MSG="$*"
    say "FAIL: $*"
    exit 1
}

skip() {
    say "skip: $*"
    exit 77
}

now_ms() {
    local t
    t=$(date +%s%N)
    echo $((t / 1000000))
}

# ---- teardown --------------------------------------------------------------

# True when PID is a live (or zombie) child of this test: guards every kill
# against a pid the kernel has reused for something else.
is_our_child() {
    [ -n "$1" ] && [ "$(awk '{print $4}' "/proc/$1/stat" 2>/dev/null)" = "$LIB_MAIN_PID" ]
}

# Waits (at most TIMEOUT_S, in 0.05 s steps) until no node process of this
# test is still running; a zombie counts as ended.
cleanup_wait() {
    local deadline=$(($(now_ms) + $1 * 1000)) n pid live
    for ((n = 0; n < $1 * 20 + 1; n++)); do
        live=0
        for pid in "${NODE_PIDS[@]}"; do
            if is_our_child "$pid" &&
                [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]; then
                live=1
                break
            fi
        done
        [ "$live" = 1 ] && [ "$(now_ms)" -lt "$deadline" ] || return 0
        sleep 0.05
    done
}

LIB_SAN_RE='ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: (Address|Undefined|Leak)Sanitizer'

cleanup() {
    local rc=$? pid f
    [ "$BASHPID" = "$LIB_MAIN_PID" ] || return 0
    [ "$LIB_CLEANED" = 0 ] || return 0
    LIB_CLEANED=1
    trap - INT TERM
    # bash reports "NNN Killed ..." for each job; that is noise here.
    exec 3>&2 2>/dev/null
    # SIGTERM first (continued, in case a test paused it), so that a node
    # leaves through its orderly exit and a coverage build writes its
    # counters; whatever still runs after LIB_CLEANUP_WAIT_S gets SIGKILL.
    for pid in "${NODE_PIDS[@]}"; do
        if is_our_child "$pid"; then
            kill -TERM "$pid" 2>/dev/null || true
            kill -CONT "$pid" 2>/dev/null || true
        fi
    done
    cleanup_wait "${LIB_CLEANUP_WAIT_S:-10}"
    for pid in "${NODE_PIDS[@]}"; do
        if is_our_child "$pid"; then
            kill -9 "$pid" 2>/dev/null || true
        fi
    done
    for pid in "${NODE_PIDS[@]}"; do
        [ -z "$pid" ] || wait "$pid" || true
    done
    exec 2>&3 3>&-
    if [ -n "${TMP:-}" ] && [ -d "$TMP" ]; then
        for f in "$TMP"/n*.log; do
            [ -f "$f" ] || continue
            if grep -qE "$LIB_SAN_RE" "$f"; then
                echo "---- sanitizer report in $f:" >&2
                grep -m1 -A 30 -E "$LIB_SAN_RE" "$f" >&2
                [ "$rc" != 0 ] || rc=1
                LIB_FAIL_MSG="${LIB_FAIL_MSG:+$LIB_FAIL_MSG; }sanitizer report in $(basename "$f")"
            fi
        done
        if [ "$rc" != 0 ] && [ "$rc" != 77 ] || [ "${KEEP:-0}" = 1 ]; then
            if [ "$rc" != 0 ] && [ "$rc" != 77 ]; then
                for f in "$TMP"/n*.log; do
                    [ -f "$f" ] || continue
                    echo "---- last ${LIB_LOG_TAIL:-25} lines of $f" >&2
                    tail -n "${LIB_LOG_TAIL:-25}" "$f" >&2
                done
                echo "---- $TEST_NAME FAILED (exit $rc)${LIB_FAIL_MSG:+: $LIB_FAIL_MSG}" >&2
            fi
            echo "---- logs and data kept in $TMP" >&2
        else
            rm -rf "$TMP"
        fi
    fi
    exit "$rc"
}

for tool in python3 timeout; do
    command -v "$tool" >/dev/null 2>&1 || skip "$tool is not installed"
done
[ -x "$FLIPD" ] || fail "$FLIPD is missing (make all)"
[ -x "$FLIPCTL" ] || fail "$FLIPCTL is missing (make all)"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/flipd-$TEST_NAME.XXXXXX") ||
    fail "mktemp failed"

trap cleanup EXIT
trap 'LIB_FAIL_MSG="interrupted (SIGINT)"; exit 130' INT
trap 'LIB_FAIL_MSG="terminated (SIGTERM, timeout?)"; exit 143' TERM

# ---- ports -----------------------------------------------------------------

# Ports in use by any TCP socket (listening or connected), one per line.
busy_ports() {
    if command -v ss >/dev/null 2>&1; then
        ss -Htan 2>/dev/null | awk '{ n = split($4, a, ":"); print a[n] }'
    fi
}

port_free() {
    local p=$1 list=$2
    if [ -n "$list" ]; then
        ! grep -qx "$p" <<<"$list"
    else
        ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null
    fi
}

# Picks BASE_PORT so that BASE+1..BASE+MAX and BASE+51..BASE+50+MAX are
# free, below the kernel's ephemeral range (an outgoing connection may hold
# any port in that range and make a later bind fail).
pick_ports() {
    local lo=20000 hi eph_lo slots attempt base list i ok
    eph_lo=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    hi=$((eph_lo - 100))
    [ "$hi" -gt $((lo + 1000)) ] || hi=40000
    slots=$(((hi - lo) / 100))
    for ((attempt = 0; attempt < 50; attempt++)); do
        base=$((lo + (RANDOM % slots) * 100))
        list=$(busy_ports)
        ok=1
        for ((i = 1; i <= LIB_MAX_NODES; i++)); do
            if ! port_free $((base + i)) "$list" ||
                ! port_free $((base + 50 + i)) "$list"; then
                ok=0
                break
            fi
        done
        if [ "$ok" = 1 ]; then
            BASE_PORT=$base
            return 0
        fi
    done
    fail "pick_ports: no free port range found after 50 attempts"
}

if [ -z "${BASE_PORT:-}" ]; then
    pick_ports
fi

# Starting and stopping nodes is deploy/cluster.sh's, shared with make run
# and make bench.
# shellcheck source=deploy/cluster.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../deploy/cluster.sh"
FLIPD_CLIENT_BASE=$BASE_PORT
FLIPD_RAFT_BASE=$((BASE_PORT + 50))

client_port() { echo $((BASE_PORT + $1)); }
raft_port() { echo $((BASE_PORT + 50 + $1)); }
client_addr() { flipd_client_addr "$1"; }
raft_addr() { flipd_raft_addr "$1"; }
cluster_spec() { flipd_spec "$CLUSTER_SIZE" raft_addr client_addr; }
endpoints() { flipd_endpoints "$CLUSTER_SIZE"; }

# ---- processes -------------------------------------------------------------

node_log() { echo "$TMP/n$1.log"; }
node_pid() { echo "${NODE_PIDS[$1]:-}"; }

node_alive() {
    local pid=${NODE_PIDS[$1]:-}
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

check_id() {
    case "$1" in
    '' | *[!0-9]*) fail "bad node id '$1'" ;;
    esac
    [ -z "${NODE_JOINED[$1]:-}" ] || return 0 # started by node_join
    if [ "$1" -lt 1 ] || [ "$1" -gt "$CLUSTER_SIZE" ]; then
        fail "node id $1 is outside 1..$CLUSTER_SIZE (call cluster_start first)"
    fi
}

node_start() {
    local i=$1 pid
    shift
    [ "$BASHPID" = "$LIB_MAIN_PID" ] || fail "node_start must not run in a subshell"
    check_id "$i"
    if node_alive "$i"; then
        fail "node_start: n$i is already running (pid ${NODE_PIDS[$i]})"
    fi
    {
        echo "=== $(date +%T.%3N) lib: start n$i: $FLIPD --id $i --data $TMP/n$i" \
            "--client $(client_addr "$i") --raft $(raft_addr "$i")" \
            "--cluster $(cluster_spec) ${FLIPD_ARGS[*]} $*"
    } >>"$TMP/n$i.log"
    flipd_node_start "$FLIPD" "$i" "$TMP/n$i" "$TMP/n$i.log" \
        "$(client_addr "$i")" "$(raft_addr "$i")" "$(cluster_spec)" \
        "${FLIPD_ARGS[@]}" "$@"
    pid=$FLIPD_PID
    NODE_PIDS[i]=$pid
    NODE_RC[i]=""
    say "n$i started (pid $pid, client $(client_addr "$i"))"
}

# Starts node I (any id up to LIB_MAX_NODES, its addresses as every node's)
# with --join instead of --cluster, on data dir $TMP/nI (or the one given
# as JOIN_DATA): it waits until `flipctl member add I` adds it. Later
# node_kill/node_stop work on it as on any node; restart it with node_join
# again.
node_join() {
    local i=$1 pid data
    shift
    [ "$BASHPID" = "$LIB_MAIN_PID" ] || fail "node_join must not run in a subshell"
    case "$i" in
    '' | *[!0-9]*) fail "bad node id '$i'" ;;
    esac
    [ "$i" -ge 1 ] && [ "$i" -le "$LIB_MAX_NODES" ] || fail "node_join: id $i outside 1..$LIB_MAX_NODES"
    if node_alive "$i"; then
        fail "node_join: n$i is already running (pid ${NODE_PIDS[$i]})"
    fi
    data=${JOIN_DATA:-$TMP/n$i}
    echo "=== $(date +%T.%3N) lib: join n$i: --data $data --join $(endpoints) $*" >>"$TMP/n$i.log"
    flipd_node_join "$FLIPD" "$i" "$data" "$TMP/n$i.log" \
        "$(client_addr "$i")" "$(raft_addr "$i")" "$(endpoints)" \
        "${FLIPD_ARGS[@]}" "$@"
    pid=$FLIPD_PID
    NODE_PIDS[i]=$pid
    NODE_RC[i]=""
    NODE_JOINED[i]=1
    say "n$i joining (pid $pid, client $(client_addr "$i"))"
}

cluster_start() {
    local n=$1 i
    shift
    case "$n" in
    '' | *[!0-9]*) fail "cluster_start: bad size '$n'" ;;
    esac
    if [ "$n" -lt 1 ] || [ "$n" -gt "$LIB_MAX_NODES" ]; then
        fail "cluster_start: size must be 1..$LIB_MAX_NODES"
    fi
    CLUSTER_SIZE=$n
    say "cluster of $n: base port $BASE_PORT, dir $TMP"
    for ((i = 1; i <= n; i++)); do
        node_start "$i" "$@"
    done
}

# Waits (bounded) for node I's process to end and records its exit status
# in NODE_RC[I]. After TIMEOUT_S it escalates to SIGKILL. Called by
# node_kill with stderr silenced and the real stderr on fd 3.
node_reap() {
    local i=$1 timeout=$2 pid=${NODE_PIDS[$1]:-} rc=0
    [ -n "$pid" ] || return 0
    if ! flipd_wait_gone "$timeout" "$pid"; then
        say "n$i (pid $pid) still running after ${timeout}s; sending KILL" 2>&3
        kill -9 "$pid" 2>/dev/null || true
    fi
    wait "$pid" || rc=$?
    NODE_RC[i]=$rc
    NODE_PIDS[i]=""
    echo "=== $(date +%T.%3N) lib: n$i exited with status $rc" >>"$TMP/n$i.log"
    return 0
}

node_kill() {
    local i=$1 sig=${2:-KILL} pid
    [ "$BASHPID" = "$LIB_MAIN_PID" ] || fail "node_kill must not run in a subshell"
    check_id "$i"
    pid=${NODE_PIDS[$i]:-}
    [ -n "$pid" ] || fail "node_kill: n$i is not running"
    sig=${sig#SIG}
    say "n$i: kill -$sig (pid $pid)"
    echo "=== $(date +%T.%3N) lib: kill -$sig" >>"$TMP/n$i.log"
    # bash's "NNN Killed ..." job report is noise for a kill we asked for;
    # fd 3 keeps our own messages. A node dying on its own is still reported.
    {
        if is_our_child "$pid"; then
            kill -s "$sig" "$pid" 2>/dev/null || true
        fi
        case "$sig" in
        STOP | CONT | TSTP | TTIN | TTOU | 0 | 18 | 19 | USR1 | USR2 | HUP) return 0 ;;
        esac
        # A stopped process cannot act on TERM/INT until it is continued.
        [ "$sig" = KILL ] || [ "$sig" = 9 ] || kill -s CONT "$pid" 2>/dev/null || true
        node_reap "$i" "${LIB_STOP_WAIT_S:-20}"
    } 3>&2 2>/dev/null
}

node_stop() {
    node_kill "$1" TERM
    return "${NODE_RC[$1]}"
}

node_restart() {
    local i=$1
    shift
    if node_alive "$i"; then
        node_kill "$i" KILL
    fi
    node_start "$i" "$@"
}

# ---- waiting and flipctl ---------------------------------------------------

wait_until() {
    local timeout=$1 deadline n
    shift
    deadline=$(($(now_ms) + timeout * 1000))
    for ((n = 0; n < timeout * 50 + 1; n++)); do
        if "$@"; then
            return 0
        fi
        [ "$(now_ms)" -lt "$deadline" ] || break
        sleep "${WAIT_INTERVAL:-0.1}"
    done
    return 1
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

wait_port() {
    wait_until "$2" port_open "$(client_port "$1")"
}

fctl() {
    timeout -k 2 "$FCTL_DEADLINE_S" "$FLIPCTL" --endpoints "$(endpoints)" "$@"
}

fctl_node() {
    local i=$1
    shift
    timeout -k 2 "$FCTL_DEADLINE_S" "$FLIPCTL" --endpoints "$(client_addr "$i")" "$@"
}

json_get() {
    python3 -c '
import json, sys
try:
    v = json.load(sys.stdin)
    for k in sys.argv[1:]:
        v = v[int(k)] if isinstance(v, list) else v[k]
except Exception as e:
    sys.stderr.write("json_get %s: %r\n" % (sys.argv[1:], e))
    sys.exit(1)
print(v if isinstance(v, str) else json.dumps(v))
' "$@"
}

# Reads `flipctl --json status` on stdin; prints the leader id when exactly
# one reachable node is leader and no reachable node names a different one.
leader_from_status() {
    python3 -c '
import json, sys
try:
    nodes = json.load(sys.stdin)
except Exception:
    sys.exit(1)
if isinstance(nodes, dict):
    nodes = nodes.get("nodes", [nodes])
up = [n for n in nodes if isinstance(n, dict) and n.get("reachable", True)]
leaders = [n for n in up if n.get("role") == "leader"]
if len(leaders) != 1:
    sys.exit(1)
lid = leaders[0].get("id")
if any((n.get("leader_id") or 0) not in (0, lid) for n in up):
    sys.exit(1)
print(lid)
'
}

wait_leader() {
    local timeout=${1:-10} deadline n out="" id
    deadline=$(($(now_ms) + timeout * 1000))
    for ((n = 0; n < timeout * 20 + 1; n++)); do
        out=$(fctl --json status 2>/dev/null) || true
        if id=$(printf '%s' "$out" | leader_from_status) && [ -n "$id" ]; then
            echo "$id"
            return 0
        fi
        [ "$(now_ms)" -lt "$deadline" ] || break
        sleep 0.1
    done
    say "wait_leader: no single leader after ${timeout}s; last status: ${out:-<none>}"
    return 1
}

expect_rc() {
    local want=$1 rc=0
    shift
    "$@" || rc=$?
    [ "$rc" = "$want" ] || fail "expected exit $want from '$*', got $rc"
}

assert_eq() {
    [ "$1" = "$2" ] || fail "${3:-value}: got '$1', want '$2'"
}

