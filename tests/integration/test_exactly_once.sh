#!/usr/bin/env bash
# A write resent with its request id is applied once, across leaders: the
# resend gets the first revision (a compare-and-set is not told CONFLICT,
# H1 of the correctness review), the flag keeps create_revision ==
# revision, and the answer survives a leader kill. A Set whose value
# carries 70 KB of unknown fields (F1 of the robustness review, which
# aborted every node for good) is stored without them, and every node
# survives it and a restart.
# tier: check
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"

WC="python3 $(dirname "$0")/writeclient.py"
A=0123456789abcdef0123456789abcdef

cluster_start 3
leader=$(wait_leader 20) || fail "no leader"

first=$($WC "$(client_addr "$leader")" set eo.flag v1 $A 1)
say "first:  $first"
assert_eq "$(echo "$first" | json_get status)" OK "first attempt"
r1=$(echo "$first" | json_get revision)
again=$($WC "$(client_addr "$leader")" set eo.flag v1 $A 1)
say "resend: $again"
assert_eq "$(echo "$again" | json_get status)" OK "resend status"
assert_eq "$(echo "$again" | json_get revision)" "$r1" "resend revision"

cas=$($WC "$(client_addr "$leader")" set eo.cas c1 $A 2 0)
assert_eq "$(echo "$cas" | json_get status)" OK "cas create"
r2=$(echo "$cas" | json_get revision)
cas2=$($WC "$(client_addr "$leader")" set eo.cas c1 $A 2 0)
say "cas resend: $cas2"
assert_eq "$(echo "$cas2" | json_get status)" OK "cas resend is not a conflict"
assert_eq "$(echo "$cas2" | json_get revision)" "$r2" "cas resend revision"

# a different client with the same sequence number is another write
other=$($WC "$(client_addr "$leader")" set eo.flag v2 fedcba9876543210fedcba9876543210 1)
r3=$(echo "$other" | json_get revision)
[ "$r3" -gt "$r2" ] || fail "another client's seq 1 was not applied ($other)"

# the answers outlive the leader that gave them
node_kill "$leader"
new=$(wait_leader 20) || fail "no new leader"
[ "$new" != "$leader" ] || fail "killed node still leads"
late=$($WC "$(client_addr "$new")" set eo.cas c1 $A 2 0)
say "after failover: $late"
assert_eq "$(echo "$late" | json_get status)" OK "resend to the new leader"
assert_eq "$(echo "$late" | json_get revision)" "$r2" "revision from the new leader"
flag=$(fctl get eo.cas --json)
assert_eq "$(echo "$flag" | json_get revision)" "$r2" "eo.cas applied once"
assert_eq "$(echo "$flag" | json_get create_revision)" "$r2" "eo.cas created once"

# F1: unknown fields inside the value
node_start "$leader"
wait_port "$leader" 20 || fail "node $leader did not come back"
poison=$($WC "$(client_addr "$new")" poison eo.poison 70000)
say "poison: $poison"
assert_eq "$(echo "$poison" | json_get status)" OK "set with unknown value fields"
wait_until 20 fctl_node "$leader" get eo.poison --stale || fail "restarted node never applied it"
for i in 1 2 3; do
    node_alive "$i" || fail "node $i died on the entry"
    assert_eq "$(fctl_node "$i" get eo.poison --stale)" true "value on node $i"
done
for i in 1 2 3; do node_restart "$i"; done
wait_leader 20 >/dev/null || fail "no leader after restarting every node"
assert_eq "$(fctl get eo.poison)" true "value after restarts"
fctl set eo.after yes --type string >/dev/null || fail "cluster takes writes after the entry"
say "ok"
