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
#   proxy_set "isolate I" | "heal"   cut (pause) or restore every raft link
#                          of node I; returns once the proxy applied it

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
trap 'lib_rc=$?; resume_all; (exit $lib_rc); cleanup' EXIT

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
    raft_addr() { echo "127.0.2.$1:$RAFT_PORT"; }
}

# node I's extra flags when the proxy is in use
proxy_bind() {
    echo "--raft-bind 127.0.1.$1:$RAFT_PORT"
}

proxy_set() {
    echo "$1" >"$PROXY_CTL"
    wait_until 10 grep -qx "$1" "$PROXY_CTL.ack" || fail "the raft proxy did not apply '$1'"
    say "raft links: $1"
}
