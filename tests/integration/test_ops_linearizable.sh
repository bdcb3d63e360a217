#!/usr/bin/env bash
# tier: check
# Linearizable reads never return stale data (docs/protocol.md section 7),
# tried where a local read WOULD be stale, with the raft links of one node
# cut by a proxy (tests/chaos/proxy.py):
# A. a follower cut off while the leader commits a new value: its stale get
#    shows the old value; its linearizable get and list are answered
#    NOT_LEADER naming the leader (or UNAVAILABLE, if by then it knows no
#    leader, as its own status in the same batch says), never served; and
#    `flipctl status` says degraded (exit 5): the follower answers, not live.
# B. the leader paused (SIGSTOP) and cut off while the others elect a new
#    leader and commit a new value, then continued with a get, a list and a
#    stale get already waiting in its socket: while it still says "leader"
#    its stale get shows the old value, the get that started the read
#    barrier ends LEADERSHIP_LOST (the barrier cannot commit) and the list
#    queued for the next barrier UNAVAILABLE (by then the node is a
#    follower that knows no leader), never the old value. A round in which
#    it had already stepped down (UNAVAILABLE) proves nothing and is
#    repeated, at most 3 rounds.
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"
. "$(dirname "$0")/opslib.sh"

FLIPD_ARGS=(--election-ms 500 --heartbeat-ms 30)
proxy_cluster 3
leader=$(wait_leader 20) || fail "no leader"

# converged VALUE: every node has applied lr.k = VALUE
converged() {
    local i
    for i in 1 2 3; do
        [ "$(fctl_node "$i" get lr.k --stale 2>/dev/null)" = "$1" ] || return 1
    done
}

# pipe_start NODE TAG: a Hello'd connection to NODE waiting for $TMP/go.TAG
pipe_start() {
    python3 "$OPS" pipe "$(client_addr "$1")" lr.k "$TMP/go.$2" >"$TMP/pipe.$2" 2>&1 &
    NODE_PIDS+=("$!")
    PIPE_PID=$!
    wait_until 10 grep -q '"ready"' "$TMP/pipe.$2" || fail "pipe client: $(cat "$TMP/pipe.$2")"
}

# pipe_result TAG: waits for the client; echoes its answers (last line)
pipe_result() {
    wait_until 40 grep -q '"stale"\|"status": "NO_GO"' "$TMP/pipe.$1" ||
        fail "no answers from the pipe client: $(cat "$TMP/pipe.$1")"
    wait "$PIPE_PID" || true
    tail -n 1 "$TMP/pipe.$1"
}

# fields ANSWERS: the answers of pipe_result as words: role, leader known,
# then status, leader_id, leader_address of get and of list, then the
# stale get's value ("-" for absent)
fields() {
    python3 -c '
import json, sys
a = json.loads(sys.argv[1])
def g(*path):
    v = a
    for k in path:
        v = v.get(k, {}) if isinstance(v, dict) else {}
    return "-" if v in ({}, None, "") else str(v)
print(g("status", "role"), g("status", "leader_id"),
      *[g(r, f) for r in ("get", "list") for f in ("status", "leader_id", "leader_address")],
      g("stale", "value"))' "$1"
}

# ---- A: a lagging follower ---------------------------------------------------
fctl set lr.k v1 >/dev/null || fail "set v1"
wait_until 20 converged v1 || fail "v1 not applied everywhere"
f=$((leader % 3 + 1))
pipe_start "$f" A
proxy_set "isolate $f"
fctl_node "$leader" set lr.k v2 >/dev/null || fail "set v2 with one follower cut off"
touch "$TMP/go.A"
a=$(pipe_result A)
say "follower n$f, cut off, answers: $a"
read -r _ knows gst gid gaddr lst lid laddr sval <<<"$(fields "$a")"
assert_eq "$sval" v1 "n$f's stale get (it lags)"
if [ "$knows" = "$leader" ]; then
    want="NOT_LEADER $leader $(client_addr "$leader")"
elif [ "$knows" = 0 ]; then
    want="UNAVAILABLE - -"
else
    fail "n$f names leader '$knows'"
fi
assert_eq "$gst $gid $gaddr" "$want" "linearizable get at a lagging follower"
assert_eq "$lst $lid $laddr" "$want" "linearizable list at a lagging follower"
# flipctl status: the cut-off follower still answers, but not live: the
# cluster is degraded (exit 5), never "ok" (0)
status_exit_is() {
    local rc=0
    fctl_node "$leader" status --timeout 1000 >/dev/null 2>&1 || rc=$?
    [ "$rc" = "$1" ]
}
wait_until 20 status_exit_is 5 || fail "status never exited 5 with n$f cut off"
proxy_set heal
wait_until 20 converged v2 || fail "v2 not applied everywhere after the heal"

# ---- B: a paused, cut-off leader ---------------------------------------------
value=v2
conclusive=0
for round in 1 2 3; do
    old=$(wait_leader 20) || fail "no leader before round $round"
    pipe_start "$old" "B$round"
    node_kill "$old" STOP
    proxy_set "isolate $old"
    wait_until 20 other_leader "$old" || fail "no new leader while n$old is paused"
    new=$NEW
    fctl_node "$new" set lr.k "v3.$round" >/dev/null || fail "set on the new leader n$new"
    touch "$TMP/go.B$round"
    wait_until 10 grep -q '"sent"' "$TMP/pipe.B$round" || fail "requests not sent to n$old"
    node_kill "$old" CONT
    a=$(pipe_result "B$round")
    say "round $round: old leader n$old (new n$new committed v3.$round) answers: $a"
    read -r role knows gst _ _ lst _ _ sval <<<"$(fields "$a")"
    if [ "$gst" = OK ] || [ "$lst" = OK ]; then
        fail "a linearizable read at the old leader was served: $a (v3.$round was committed)"
    fi
    if [ "$role" = leader ]; then
        assert_eq "$sval" "$value" "the old leader's stale get"
        assert_eq "$gst" LEADERSHIP_LOST "linearizable get at the old leader"
        assert_eq "$lst" UNAVAILABLE "linearizable list at the old leader, queued for the next barrier"
        conclusive=1
    else
        assert_eq "$knows $gst $lst" "0 UNAVAILABLE UNAVAILABLE" \
            "leader known to the stepped-down n$old, get and list status"
    fi
    proxy_set heal
    value=v3.$round
    wait_until 20 converged "$value" || fail "$value not applied everywhere after the heal"
    [ "$conclusive" = 0 ] || break
    say "round $round: n$old had stepped down before reading; again"
done
[ "$conclusive" = 1 ] || fail "in 3 rounds the paused leader never read as leader"
for i in 1 2 3; do
    assert_eq "$(fctl_node "$i" get lr.k)" "$value" "linearizable get through n$i"
done
say "no stale linearizable read from a lagging follower or a deposed leader"
