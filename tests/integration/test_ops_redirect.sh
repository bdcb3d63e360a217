#!/usr/bin/env bash
# Leader redirects (docs/protocol.md sections 6 and 7): flipctl given only a
# follower, with --timeout 2000, follows NOT_LEADER's leader_address and its
# set, linearizable get and list, and del succeed; the follower answers a
# write and a linearizable read NOT_LEADER naming the leader's id and client
# address. With the other two nodes paused (SIGSTOP) the last one knows no
# leader: it answers a write and a linearizable read UNAVAILABLE, flipctl
# gives up with exit 1 ("no leader known"), a stale get still works, and
# once the nodes continue writes through that node succeed again.
# tier: check
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"
. "$(dirname "$0")/opslib.sh"

cluster_start 3
leader=$(wait_leader 20) || fail "no leader"
f=$((leader % 3 + 1))
other=$((6 - leader - f))
say "leader n$leader, follower n$f, other n$other"

ctl_f() { fctl_node "$f" --timeout 2000 "$@"; }
ctl_f set rd.a 1 >/dev/null || fail "set through a follower did not follow the redirect"
assert_eq "$(ctl_f get rd.a)" 1 "linearizable get through a follower"
assert_eq "$(ctl_f list rd. | cut -f1,2)" "$(printf 'rd.a\t1')" "linearizable list through a follower"
ctl_f del rd.a >/dev/null || fail "del through a follower did not follow the redirect"
expect_rc 3 ctl_f get rd.a 2>/dev/null

for op in "set rd.b 1" "get rd.b" "list rd."; do
    # shellcheck disable=SC2086 # op is words
    a=$(python3 "$OPS" req "$(client_addr "$f")" $op) || fail "raw $op failed: $a"
    assert_eq "$(json_get status <<<"$a")" NOT_LEADER "status of $op at a follower"
    assert_eq "$(json_get leader_id <<<"$a")" "$leader" "leader_id of $op's NOT_LEADER"
    assert_eq "$(json_get leader_address <<<"$a")" "$(client_addr "$leader")" \
        "leader_address of $op's NOT_LEADER"
done
say "redirects followed; NOT_LEADER names the leader"

ctl_f set rd.c 7 >/dev/null || fail "set rd.c"
wait_until 10 test "$(fctl_node "$f" get rd.c --stale 2>/dev/null)" = 7 ||
    fail "n$f did not apply rd.c"
node_kill "$leader" STOP
node_kill "$other" STOP
no_leader() { [ "$(status_field "$f" leader_id)" = 0 ]; }
wait_until 20 no_leader || fail "n$f still names a leader with both others paused"
for op in "set rd.d 1" "get rd.c" "list rd."; do
    # shellcheck disable=SC2086 # op is words
    a=$(python3 "$OPS" req "$(client_addr "$f")" $op) || fail "raw $op failed: $a"
    assert_eq "$(json_get status <<<"$a")" UNAVAILABLE "status of $op with no leader known"
done
rc=0
fctl_node "$f" --timeout 1000 set rd.d 1 >/dev/null 2>"$TMP/err" || rc=$?
assert_eq "$rc" 1 "flipctl exit with no leader known"
grep -q "no leader known" "$TMP/err" || fail "flipctl's reason: $(cat "$TMP/err")"
assert_eq "$(fctl_node "$f" --timeout 1000 get rd.c --stale)" 7 "stale get with no leader"
say "no leader known: UNAVAILABLE, flipctl exit 1, stale reads served"

node_kill "$leader" CONT
node_kill "$other" CONT
wait_leader 20 >/dev/null || fail "no leader after continuing"
fctl_node "$f" --timeout 5000 set rd.d 2 >/dev/null || fail "write after the nodes continued"
assert_eq "$(fctl_node "$f" get rd.d)" 2 "value after the nodes continued"
