#!/usr/bin/env bash
# Resuming a subscription from EVERY revision R from 0 to the top, on a
# follower and on the leader, sends exactly the changes after R in order:
# nothing at or before R, no gap, no duplicate, then the live stream. The
# writes include group entries (several keys at one revision, sets and
# deletes together) and data entries at consecutive raft indexes (a key
# repeated in one pipelined batch starts the next entry), so that R + 1 is
# a data entry for some R: resuming from R + 1 or from R - 1 is caught
# (review mutants M4 and M4b). The live part passes 1000 deliveries on each
# node, every one checked (review mutant M3 dropped every 1000th).
# tier: check
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"
. "$(dirname "$0")/sublib.sh"

cluster_start 3
leader=$(wait_leader 20) || fail "no leader"
follower=$(((leader % 3) + 1))
L=$(client_addr "$leader")

# one batch after another, each sent in one write: a single change; a group
# of three; r.a three times (three entries at consecutive indexes, the
# delete sharing the first with r.a=2); a delete; r.d twice
stream_write "$L" '[[["set","r.a","1"]],
    [["set","r.b","1"],["set","r.c","1","grouped"],["set","s.x","1"]],
    [["set","r.a","2"],["set","r.a","3"],["del","r.b","gone"],["set","r.a","4"]],
    [["del","r.c"]],
    [["set","r.d","1"],["set","r.d","2"],["set","r.b","5"]]]'
stream_require_back_to_back

# the nodes must all have applied the writes before the subscriptions
top=$(stream_top)
wait_until 20 stream_node_applied "$follower" "$top" || fail "follower never applied $top"

# then live: a group with a repeated key, 50 single writes (over 1000 live
# deliveries on each node, each checked), a delete
live=$(python3 -c 'import json
print(json.dumps([[["set", "r.a", "9"], ["set", "r.e", "1"], ["set", "r.a", "10"]]] +
                 [[["set", "r.l%d" % (i % 7), str(i)]] for i in range(50)] + [[["del", "r.e"]]]))')
for node in "$follower" "$leader"; do
    say "resume from every revision on n$node"
    stream_check "$(client_addr "$node")" --expect catchup --from-range 0 top \
        --leader "$L" --live "$live" || fail "resume on n$node is not exact"
done
say "resume from each of $top+ revisions was exact on the follower and the leader"

# A catch-up longer than one scan of the change log (256 rows): 40 entries
# of 8 changes each, so the pump's scan stops at a revision boundary and
# goes on from there; resuming from 0, from just before the bulk and from
# each of its last revisions is exact.
before=$(stream_top)
bulk=$(python3 -c 'import json
print(json.dumps([[["set", "r.g%d" % k, "%d.%d" % (i, k)] for k in range(8)] for i in range(40)]))')
stream_write "$L" "$bulk"
top=$(stream_top)
wait_until 20 stream_node_applied "$follower" "$top" || fail "follower never applied $top"
stream_check "$(client_addr "$follower")" --expect catchup --from 0 --from "$before" \
    --from-range $((top - 3)) top || fail "a long catch-up is not exact"
say "catch-ups over more than one scan of the change log exact"
