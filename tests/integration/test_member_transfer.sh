#!/usr/bin/env bash
# Issue 11, membership first slice: `flipctl member list` and `flipctl
# leader transfer`. The member list comes from the leader's raft
# configuration, also when asked of a follower (NOT_LEADER followed); a
# stopped member shows as not reachable and the others keep their match
# index. A transfer to a named voter makes it the leader; repeating it is
# success ("already"); without an id leadership moves to another voter;
# unknown ids and malformed commands are refused; writes go on afterwards.
# tier: check
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"

cluster_start 3
leader=$(wait_leader 20) || fail "no leader"
f=$((leader % 3 + 1))
other=$((6 - leader - f))
say "leader n$leader, follower n$f, other n$other"
fctl set ml.a 1 >/dev/null || fail "set ml.a"

check_list() {
    python3 - "$1" "$2" "$3" "$4" "$5" "$6" <<'PY'
import json, sys
ms = json.loads(sys.argv[1])
leader = int(sys.argv[2]); down = int(sys.argv[3])
raft = dict(p.split("=") for p in sys.argv[4].split(","))
client = dict(p.split("=") for p in sys.argv[5].split(","))
min_match = int(sys.argv[6])
assert [m["id"] for m in ms] == [1, 2, 3], ms
for m in ms:
    i = str(m["id"])
    assert m["role"] == "voter", m
    assert m["raft_address"] == raft[i], (m, raft)
    assert m["client_address"] == client[i], (m, client)
    assert m["leader"] == (m["id"] == leader), m
    assert m["reachable"] == (m["id"] != down), m
    if m["id"] != down:
        assert m["match_index"] >= min_match and m["lag"] == 0, m
PY
}
rspec="1=$(raft_addr 1),2=$(raft_addr 2),3=$(raft_addr 3)"
cspec="1=$(client_addr 1),2=$(client_addr 2),3=$(client_addr 3)"
rev=$(fctl set ml.b 2) || fail "set ml.b"
lag_zero() {
    out=$(fctl --json member list 2>/dev/null) && check_list "$out" "$leader" 0 "$rspec" "$cspec" "$rev" 2>/dev/null
}
wait_until 10 lag_zero || { check_list "$out" "$leader" 0 "$rspec" "$cspec" "$rev"; fail "member list: $out"; }
# the follower's own answer would name itself leader with no match indexes
out=$(fctl_node "$f" --json member list) || fail "member list through n$f"
check_list "$out" "$leader" 0 "$rspec" "$cspec" "$rev" || fail "member list through n$f: $out"
fctl member list | grep -q "^$leader .*voter *\*" || fail "text member list does not mark the leader: $(fctl member list)"
say "member list from the leader's configuration, through a follower too"

# A stopped member is not reachable; the rest keep up.
node_stop "$other" || true
rev=$(fctl set ml.c 3) || fail "set ml.c with n$other down"
down_seen() {
    out=$(fctl --json member list 2>/dev/null) && check_list "$out" "$leader" "$other" "$rspec" "$cspec" "$rev" 2>/dev/null
}
wait_until 10 down_seen || { check_list "$out" "$leader" "$other" "$rspec" "$cspec" "$rev"; fail "member list with n$other down: $out"; }
node_start "$other"
wait_until 10 lag_zero || fail "n$other not caught up in the member list: $out"
say "a stopped member shows reachable=false, then catches up"

# Transfer to a named voter, through any node.
got=$(fctl_node "$other" leader transfer "$f") || fail "leader transfer $f"
assert_eq "$got" "$f" "new leader printed"
assert_eq "$(wait_leader 10)" "$f" "leader after the transfer"
got=$(fctl leader transfer "$f" 2>"$TMP/err") || fail "repeated leader transfer $f"
assert_eq "$got" "$f" "repeated transfer's leader"
grep -q "already leads" "$TMP/err" || fail "repeated transfer does not say already: $(cat "$TMP/err")"
fctl --json leader transfer "$f" 2>/dev/null | grep -q '"already":true' || fail "json already"
say "transfer to n$f; repeating it is success (already)"

# Without an id: another voter.
got=$(fctl leader transfer) || fail "leader transfer (any)"
[ "$got" != "$f" ] && [ "$got" -ge 1 ] && [ "$got" -le 3 ] || fail "transfer without id gave '$got'"
assert_eq "$(wait_leader 10)" "$got" "leader after the transfer without id"
say "transfer without id: n$got leads"

# Refusals.
rc=0
fctl leader transfer 9 >/dev/null 2>"$TMP/err" || rc=$?
assert_eq "$rc" 1 "exit of a transfer to a non-member"
grep -q "not another voter" "$TMP/err" || fail "reason: $(cat "$TMP/err")"
expect_rc 2 fctl leader transfer x 2>/dev/null
expect_rc 2 fctl leader transfer 0 2>/dev/null
expect_rc 2 fctl leader frob 2>/dev/null
expect_rc 2 fctl member frob 2>/dev/null
expect_rc 2 fctl member 2>/dev/null
say "refusals: non-member id 1, malformed commands 2"

rev=$(fctl set ml.d 4) || fail "write after the transfers"
for i in 1 2 3; do
    wait_until 10 test "$(fctl_node "$i" get ml.d --stale 2>/dev/null)" = 4 ||
        fail "n$i did not apply ml.d"
done
say "writes go on after the transfers"
