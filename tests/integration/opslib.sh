# shellcheck shell=bash
# Helpers of the test_ops_* scripts; sourced after lib.sh.
#
#   OPS                    tests/integration/opsclient.py
#   resume_all             SIGCONT every process the test started (the
#                          EXIT trap does it first, so a node paused by a
#                          failing test is continued before cleanup)
#   status_field I FIELD   node I's own status (opsclient.py status: role,
#                          leader_id, term, applied), asked of node I alone
#   proxy_start            raft links through tests/chaos/proxy.py's
#                          LinkProxy: call before cluster_start; node I then
#                          listens for peers on 127.0.1.I and is reached
#                          through 127.0.2.I (same port, RAFT_PORT)
#   proxy_cluster N       proxy_start, then nodes 1..N behind it
#   other_leader OLD       true once a node other than OLD is leader (NEW)
#   proxy_set "isolate I" | "reset I" | "heal"   cut (pause, or close and
#                          keep closing) or restore every raft link of
#                          node I; "mute I" | "mute-reset I": only what the
#                          others send to I; returns once applied
#   proxy_link_up SRC DST  SRC's raft connection to DST is open end to end

OPS=$(dirname "${BASH_SOURCE[0]}")/opsclient.py

resume_all() {
    local p
    for p in "${NODE_PIDS[@]}"; do
        if [ -n "$p" ] && is_our_child "$p"; then
            kill -CONT "$p" 2>/dev/null || true
        fi
    done
    return 0
}
ops_exit() {
    local rc=$?
    resume_all
    set +e
    (exit "$rc")
    cleanup
}
trap ops_exit EXIT

status_field() {
    python3 "$OPS" status "$(client_addr "$1")" 2>/dev/null | json_get "$2" 2>/dev/null
}

proxy_start() {
    RAFT_PORT=$((BASE_PORT + 51))
    PROXY_CTL=$TMP/proxy.ctl
    echo heal >"$PROXY_CTL"
    python3 "$OPS" proxy "$RAFT_PORT" "$(seq -s, 1 "${1:-3}")" "$PROXY_CTL" \
        >"$TMP/proxy.log" 2>&1 &
    NODE_PIDS+=("$!")
    wait_until 10 test -f "$PROXY_CTL.ack" || fail "the raft proxy did not start"
    # shellcheck disable=SC2317 # replaces lib.sh's, called from there
    raft_addr() { echo "127.0.2.$1:$RAFT_PORT"; }
}

# node I's extra flags when the proxy is in use
proxy_bind() {
    echo "--raft-bind 127.0.1.$1:$RAFT_PORT"
}

# proxy_cluster N: the proxy, then nodes 1..N behind it
proxy_cluster() {
    local i
    proxy_start "$1"
    CLUSTER_SIZE=$1
    for ((i = 1; i <= $1; i++)); do
        # shellcheck disable=SC2046 # two words
        node_start "$i" $(proxy_bind "$i")
    done
}

# other_leader OLD: true once a node other than OLD says it is leader; sets
# NEW to its id (asks the nodes themselves: OLD may be paused)
other_leader() {
    local j
    for ((j = 1; j <= CLUSTER_SIZE; j++)); do
        [ "$j" != "$1" ] || continue
        if [ "$(status_field "$j" role)" = leader ]; then
            # shellcheck disable=SC2034 # read by the test scripts
            NEW=$j
            return 0
        fi
    done
    return 1
}

# proxy_link_up SRC DST: SRC's raft connection to DST is open end to end
proxy_link_up() {
    grep -qx "$1>$2" "$PROXY_CTL.links" 2>/dev/null
}

proxy_set() {
    echo "$1" >"$PROXY_CTL"
    wait_until 10 grep -qx "$1" "$PROXY_CTL.ack" || fail "the raft proxy did not apply '$1'"
    say "raft links: $1"
}

# burst_start NODE PREFIX: opsclient.py burst against NODE (4 connections,
# 32 writes in flight each) until $TMP/burst.stop; answers in $TMP/burst.out
burst_start() {
    python3 "$OPS" burst "$(client_addr "$1")" 4 32 "$2" "$TMP/burst.stop" \
        "$TMP/burst.progress" >"$TMP/burst.out" 2>"$TMP/burst.err" &
    NODE_PIDS+=("$!")
    BURST_PID=$!
}

# burst_then_depose PREFIX [CUT]: a burst against the leader (OLD); once 100
# writes are acked its raft links are cut (proxy_set "CUT OLD", default
# isolate), 32 more writes are sent to it on another connection, it
# proposes alone for a moment, is paused (SIGSTOP), and another node
# becomes leader (NEW)
burst_then_depose() {
    OLD=$(wait_leader 20) || fail "no leader"
    burst_start "$OLD" "$1"
    wait_until 30 burst_acks 100 || fail "the burst got no acks: $(cat "$TMP/burst.err")"
    proxy_set "${2:-isolate} $OLD"
    # 32 more writes on another connection: it proposes them alone
    touch "$TMP/burst.stop.extra"
    wait_until 20 test -f "$TMP/burst.stop.extra.sent" || fail "the extra writes were not sent"
    sleep 0.2 # time to read and propose them
    node_kill "$OLD" STOP
    wait_until 20 other_leader "$OLD" || fail "no new leader while n$OLD is paused"
}

# counts_at_least STATUS=N ..: the verdict's counts reach each N
counts_at_least() {
    python3 -c '
import json, sys
c = json.load(open(sys.argv[1]))["counts"]
short = [a for a in sys.argv[2:] if c.get(a.split("=")[0], 0) < int(a.split("=")[1])]
sys.exit("counts %s: fewer than %s" % (c, ", ".join(short)) if short else 0)' "$TMP/verdict" "$@" ||
        fail "the answers do not show the path this test is for"
}

burst_done() {
    ! kill -0 "$BURST_PID" 2>/dev/null
}

burst_acks() {
    local n
    n=$(awk '{print $2}' "$TMP/burst.progress" 2>/dev/null)
    [ "${n:-0}" -ge "$1" ]
}

# burst_verify PREFIX [--forbid S,..]: stops the burst, waits for its
# answers, checks them against the cluster (opsclient.py verify); the
# verdict goes to $TMP/verdict and the log. Not in $(...): it waits.
burst_verify() {
    local prefix=$1 rc=0
    shift
    touch "$TMP/burst.stop"
    wait_until 60 burst_done || fail "the burst client did not finish"
    wait "$BURST_PID" || fail "burst client failed: $(tail -n 5 "$TMP/burst.err")"
    python3 "$OPS" verify "$TMP/burst.out" "$(endpoints)" "$prefix" "$@" \
        >"$TMP/verdict" 2>&1 || rc=$?
    say "answers of the writes in flight: $(cat "$TMP/verdict")"
    [ "$rc" = 0 ] || fail "writes answered wrongly"
}
