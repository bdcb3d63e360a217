#!/usr/bin/env bash
# Subscription fan-out of a real 3-node flipd cluster on 127.0.0.1.
#
#   bench/fanout.sh BUILD_DIR [N...]        (default N: 100 1000 10000)
#
# Starts three nodes (default flags plus --max-conns), measures one node's
# RSS with no subscriber, then for each N runs BUILD_DIR/bench/fanout: N
# subscribers spread over the three nodes, FAN_FLIPS flips of one key, each
# timed from send and from ack to the last subscriber's delivery; node RSS
# with the N subscribers attached and after the flips. Prints a table.
#
# Needs BUILD_DIR/flipd, BUILD_DIR/flipctl, BUILD_DIR/bench/fanout (`make
# all`) and python3 (reads fanout's JSON). 127.0.0.1 only: client ports
# BASE+1..BASE+3, raft ports BASE+51..BASE+53, BASE = $FAN_BASE_PORT
# (default 61000: above Linux's default ephemeral range 32768-60999, so no
# outgoing connection can hold them). Refuses to start if one of them is
# listening. The subscriber sockets are bound to $FAN_SOURCE (default
# 127.0.0.2, if it can be bound) so that their N ephemeral ports do not
# collide with listeners other programs bind on 127.0.0.1 meanwhile. Data
# and logs live in a mktemp -d directory removed on exit (KEEP=1 keeps it).
# Every node is killed on exit, Ctrl-C or SIGTERM.
#
# Environment:
#   FLIPD_ARGS     flags for every node (default "--election-ms 500
#                  --heartbeat-ms 10 --max-conns 100000": flipd's defaults,
#                  spelled out)
#   FAN_BASE_PORT  see above (default 61000)
#   FAN_SOURCE     local address of the subscriber sockets (default
#                  127.0.0.2; "none": let the kernel pick, i.e. 127.0.0.1)
#   FAN_FLIPS      timed flips per N (default 50)
#   FAN_GAP_MS     pause between flips (default 20)
#   FAN_JITTER_MS  plus a random 0..this many ms (default 50, one raft
#                  heartbeat: flips then fall at random points between the
#                  leader's heartbeat ticks instead of locking onto one
#                  phase; 0 gives fanout's own default, see bench/README.md)
#   FAN_ARGS       extra arguments for fanout (e.g. "--user-ts")
#   FAN_MAX_S      bound on each fanout run, seconds (default 180)
#   KEEP=1         keep the temp dir (node logs, JSON of each run)
#
# Progress goes to stderr, the figures to stdout. Exit status 0 when every
# run delivered every flip to every subscriber and no node misbehaved.
set -uo pipefail

usage() {
    echo "usage: $0 BUILD_DIR [N...]" >&2
    exit 2
}

[ $# -ge 1 ] || usage
BUILD=$(cd "$1" 2>/dev/null && pwd) || {
    echo "fanout.sh: build dir '$1' not found" >&2
    exit 2
}
shift
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(100 1000 10000)
for n in "${SIZES[@]}"; do
    [[ $n =~ ^[1-9][0-9]{0,5}$ ]] || {
        echo "fanout.sh: N must be an integer in 1..999999, not '$n'" >&2
        exit 2
    }
done
FLIPD=$BUILD/flipd
FLIPCTL=$BUILD/flipctl
FANOUT=$BUILD/bench/fanout
for bin in "$FLIPD" "$FLIPCTL" "$FANOUT"; do
    [ -x "$bin" ] || {
        echo "fanout.sh: $bin is missing (make all)" >&2
        exit 2
    }
done
command -v python3 >/dev/null 2>&1 || {
    echo "fanout.sh: python3 is needed to read fanout's JSON" >&2
    exit 2
}

BASE=${FAN_BASE_PORT:-61000}
SOURCE=${FAN_SOURCE:-127.0.0.2}
FLIPS=${FAN_FLIPS:-50}
GAP_MS=${FAN_GAP_MS:-20}
JITTER_MS=${FAN_JITTER_MS:-50}
MAX_S=${FAN_MAX_S:-180}
read -r -a NODE_ARGS <<<"${FLIPD_ARGS:---election-ms 500 --heartbeat-ms 10 --max-conns 100000}"
read -r -a EXTRA <<<"${FAN_ARGS:-}"

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
PIDS=()
ANOMALIES=()
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
    exit 1
}

# ---- cleanup ---------------------------------------------------------------

CLEANED=0
# shellcheck disable=SC2317 # runs from the EXIT trap
cleanup() {
    local rc=$? pid f
    [ "$BASHPID" = "$MAIN_PID" ] || return 0
    [ "$CLEANED" = 0 ] || return 0
    CLEANED=1
    trap - INT TERM
    for pid in "${PIDS[@]}"; do
        [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    done
    for pid in "${PIDS[@]}"; do
        [ -n "$pid" ] && wait "$pid" 2>/dev/null
    done
    if [ -n "${TMP:-}" ] && [ -d "$TMP" ]; then
        if [ "$rc" != 0 ]; then
            for f in "$TMP"/n*.log; do
                [ -f "$f" ] || continue
                echo "---- last 10 lines of $f" >&2
                tail -n 10 "$f" >&2
            done
        fi
        if [ "${KEEP:-0}" = 1 ]; then
            echo "fanout.sh: logs and data kept in $TMP" >&2
        else
            rm -rf "$TMP"
        fi
    fi
    exit "$rc"
}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/flipd-fanout.XXXXXX") || {
    echo "fanout.sh: mktemp failed" >&2
    exit 1
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT
trap 'say "terminated"; exit 143' TERM

# ---- checks ----------------------------------------------------------------

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
        port_busy "$p" && busy+=" $p"
    done
done
[ -z "$busy" ] || die "port(s)$busy in use; set FAN_BASE_PORT to another range"
read -r EPH_LO EPH_HI </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null ||
    EPH_LO=0 EPH_HI=0
if [ $((BASE + 53)) -ge "$EPH_LO" ] && [ $((BASE + 1)) -le "$EPH_HI" ]; then
    say "warning: ports $((BASE + 1))-$((BASE + 53)) overlap the ephemeral" \
        "range $EPH_LO-$EPH_HI: a bind may fail while other connections exist"
fi

SOURCE_ARGS=()
if [ "$SOURCE" != none ]; then
    if python3 -c 'import socket, sys; socket.socket().bind((sys.argv[1], 0))' \
        "$SOURCE" 2>/dev/null; then
        SOURCE_ARGS=(--source "$SOURCE")
    else
        say "warning: cannot bind $SOURCE; subscribers use the default source"
        SOURCE=none
    fi
fi

# fanout holds N sockets, each node about N/3 (+ raft and spare).
HARD=$(ulimit -Hn)
MAXN=0
for n in "${SIZES[@]}"; do
    [ "$n" -gt "$MAXN" ] && MAXN=$n
done
if [ "$HARD" != unlimited ] && [ $((MAXN + 64)) -gt "$HARD" ]; then
    die "N=$MAXN needs $((MAXN + 64)) descriptors; ulimit -Hn is $HARD"
fi

# ---- nodes -----------------------------------------------------------------

node_start() {
    local i=$1
    mkdir -p "$TMP/n$i"
    "$FLIPD" --id "$i" --data "$TMP/n$i" --client "${CADDR[i]}" \
        --raft "${RADDR[i]}" --cluster "$CLUSTER" \
        ${NODE_ARGS[@]+"${NODE_ARGS[@]}"} \
        >>"$TMP/n$i.log" 2>&1 </dev/null &
    PIDS[i]=$!
}

check_alive() {
    local i rc
    for i in "${NODES[@]}"; do
        if [ -n "${PIDS[i]:-}" ] && ! kill -0 "${PIDS[i]}" 2>/dev/null; then
            rc=0
            wait "${PIDS[i]}" 2>/dev/null || rc=$?
            PIDS[i]=""
            anomaly "n$i exited on its own (status $rc); log tail:"
            tail -n 20 "$TMP/n$i.log" >&2
        fi
    done
}

# Sets LEADER (node id) once 3 nodes answer, one leader, equal applied.
wait_converged() {
    local timeout=$1 n out line reach leaders minapp maxapp app id
    LEADER=""
    for ((n = 0; n < timeout * 10; n++)); do
        out=$("$FLIPCTL" --endpoints "$ENDPOINTS" --json --timeout 300 \
            status 2>/dev/null) || true
        reach=0 leaders=() minapp="" maxapp=""
        while IFS= read -r line; do
            [[ $line =~ \"id\":([0-9]+) ]] || continue
            id=${BASH_REMATCH[1]}
            [[ $line == *'"reachable":true'* ]] || continue
            reach=$((reach + 1))
            [[ $line == *'"role":"leader"'* ]] && leaders+=("$id")
            if [[ $line =~ \"applied_revision\":([0-9]+) ]]; then
                app=${BASH_REMATCH[1]}
                [ -z "$minapp" ] || [ "$app" -lt "$minapp" ] && minapp=$app
                [ -z "$maxapp" ] || [ "$app" -gt "$maxapp" ] && maxapp=$app
            fi
        done <<<"$out"
        if [ "$reach" = 3 ] && [ "${#leaders[@]}" = 1 ] &&
            [ "$minapp" = "$maxapp" ]; then
            LEADER=${leaders[0]}
            return 0
        fi
        check_alive
        sleep 0.1
    done
    say "not converged after ${timeout}s; last status:"
    printf '%s\n' "$out" >&2
    return 1
}

# rss_kb PID -> VmRSS in kB, or "-"
rss_kb() {
    awk '/^VmRSS:/ {print $2; found = 1} END {if (!found) print "-"}' \
        "/proc/$1/status" 2>/dev/null || echo -
}

mib() {
    if [[ $1 =~ ^[0-9]+$ ]]; then
        awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'
    else
        echo -
    fi
}

# ---- run -------------------------------------------------------------------

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
cat <<EOF
flipd subscription fan-out, $(date -u +%Y-%m-%dT%H:%M:%SZ)
  machine   nproc $(nproc), kernel $(uname -r), $(awk '/MemTotal/ {printf "%.1f GiB RAM", $2 / 1048576}' /proc/meminfo)
  cpu       $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
  flipd     ${NODE_ARGS[*]:-<defaults>}
  fanout    --flips $FLIPS --gap-ms $GAP_MS --gap-jitter-ms $JITTER_MS ${SOURCE_ARGS[*]:-} ${EXTRA[*]:-}
  nofile    soft $(ulimit -Sn), hard $HARD
  load      $LOAD_START (1/5/15 min, at start)
EOF

say "starting 3 nodes on ${CADDR[*]} (data in $TMP)"
for i in "${NODES[@]}"; do
    node_start "$i"
done
wait_converged 30 || die "cluster did not converge"
say "leader n$LEADER"
# One write so every node has applied something, then settle.
"$FLIPCTL" --endpoints "$ENDPOINTS" --timeout 5000 set bench.fan.init 1 \
    >/dev/null || die "first set failed"
wait_converged 10 || die "cluster did not converge after the first set"
sleep 1
IDLE_RSS=()
for i in "${NODES[@]}"; do
    IDLE_RSS[i]=$(rss_kb "${PIDS[i]}")
done
say "RSS with 0 subscribers: n1 ${IDLE_RSS[1]} kB, n2 ${IDLE_RSS[2]} kB, n3 ${IDLE_RSS[3]} kB"

ROWS=()    # one table row per N
EPROWS=()  # per-node breakdown
for n in "${SIZES[@]}"; do
    check_alive
    [ -n "${PIDS[1]:-}${PIDS[2]:-}${PIDS[3]:-}" ] || die "no node left"
    before=()
    for i in "${NODES[@]}"; do
        before[i]=$(rss_kb "${PIDS[i]:-0}")
    done
    json=$TMP/fanout-$n.json
    say "N=$n: fanout (bounded to ${MAX_S}s); node RSS before: ${before[*]:1} kB"
    rc=0
    timeout -k 5 $((MAX_S + 30)) "$FANOUT" --endpoints "$ENDPOINTS" --n "$n" \
        --flips "$FLIPS" --gap-ms "$GAP_MS" --gap-jitter-ms "$JITTER_MS" \
        --max-seconds "$MAX_S" \
        --attach-seconds $((MAX_S / 2)) \
        --rss-pids "${PIDS[1]:-0},${PIDS[2]:-0},${PIDS[3]:-0}" --json \
        ${SOURCE_ARGS[@]+"${SOURCE_ARGS[@]}"} ${EXTRA[@]+"${EXTRA[@]}"} \
        >"$json" 2>"$TMP/fanout-$n.err" || rc=$?
    sed 's/^/    /' "$TMP/fanout-$n.err" | head -n 20 >&2
    check_alive
    if [ "$rc" != 0 ]; then
        FAILED=1
        anomaly "N=$n: fanout exited with status $rc (stderr above)"
    fi
    if [ ! -s "$json" ]; then
        why=$(grep -m 1 'only .* attached' "$TMP/fanout-$n.err" ||
            tail -n 1 "$TMP/fanout-$n.err")
        ROWS+=("$(printf '| %s | failed (status %s): %s |' "$n" "$rc" "$why")")
        continue
    fi
    ROWS+=("$(python3 - "$json" "$n" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
def f(x): return "%.1f" % x if x >= 10 else "%.2f" % x
def mib(k): return "%.1f" % (k / 1024.0) if k >= 0 else "-"
la, ls, ss = d["last_after_ack_ms"], d["last_after_send_ms"], d["sub_after_send_ms"]
ack = d["ack_ms"]
errs = sum(d["server_errors"].values())
rss = " / ".join(mib(r["rss_kb"]) for r in d["rss_attached"])
print("| %s | %.2f | %s / %s | %s / %s / %s | %s / %s | %s / %s | %d | %d/%d | %s |" % (
    sys.argv[2], d["attach_s"], f(ack["p50"]), f(ack["p99"]),
    f(la["p50"]), f(la["p99"]), f(la["max"]),
    f(ls["p50"]), f(ls["p99"]), f(ss["p50"]), f(ss["p99"]),
    d["missing"], d["disconnects"], errs, rss))
EOF
)")
    EPROWS+=("$(python3 - "$json" "$n" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
cells = []
for e in d["endpoints"]:
    x = e["last_after_ack_ms"]
    cells.append("%s %s: %.2f / %.2f" % (e["addr"].split(":")[-1], e["role"],
                                         x["p50"], x["max"]))
rss = " / ".join("%.1f" % (r["rss_kb"] / 1024.0) for r in d["rss_after"])
print("| %s | %s | %.2f / %.2f | %s |" % (sys.argv[2], " | ".join(cells),
      d["seen_last_after_ack_ms"]["p50"], d["seen_last_after_ack_ms"]["max"],
      rss))
EOF
)")
    # Let the nodes close the N connections before the next size.
    sleep 2
done

after=()
for i in "${NODES[@]}"; do
    after[i]=$(rss_kb "${PIDS[i]:-0}")
done
for i in "${NODES[@]}"; do
    if grep -qiE 'slow subscriber|error|assert|out of memory' "$TMP/n$i.log"; then
        anomaly "n$i log has error lines: $(grep -ciE 'slow subscriber|error|assert|out of memory' "$TMP/n$i.log") (first: $(grep -iE -m1 'slow subscriber|error|assert|out of memory' "$TMP/n$i.log"))"
    fi
done

echo
echo "Node RSS with 0 subscribers (MiB): n1 $(mib "${IDLE_RSS[1]}"), n2 $(mib "${IDLE_RSS[2]}"), n3 $(mib "${IDLE_RSS[3]}"); leader n$LEADER"
echo "Node RSS at the end, subscribers gone (MiB): n1 $(mib "${after[1]}"), n2 $(mib "${after[2]}"), n3 $(mib "${after[3]}")"
echo
echo "Times in ms over $FLIPS flips (p50 / p99 / max over flips for 'last';"
echo "over every subscriber x flip for 'per sub'); delivery = kernel receive"
echo "stamp of the subscriber's socket."
echo
echo "| N | attach s | ack p50 / p99 | last sub after ack p50 / p99 / max | last after send p50 / p99 | per sub after send p50 / p99 | missing | disconn/errors | RSS n1 / n2 / n3 MiB, N attached |"
echo "|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
echo
echo "Last subscriber after ack, per node it is attached to (p50 / max), the"
echo "last delivery as processed by fanout itself, and node RSS after the flips:"
echo
echo "| N | node 1 | node 2 | node 3 | seen by fanout p50 / max | RSS after MiB |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${EPROWS[@]}"
echo
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ ${#ANOMALIES[@]} -gt 0 ]; then
    echo "anomalies:"
    printf '  - %s\n' "${ANOMALIES[@]}"
    FAILED=1
fi
exit "$FAILED"
