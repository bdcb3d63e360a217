#!/usr/bin/env bash
# Deletes and groups in every kind of stream, checked frame by frame: a
# live delete reaches subscribers as a CHANGE with deleted = true (review
# mutant M15); catch-up across deletes replays them; a resync after the
# deletes were compacted is a snapshot without the deleted flags;
# overlapping prefixes ("a." with "a.b.") deliver each change once; a group
# entry that matches in part delivers only the matching changes, at the
# group's revision; a prefixed subscriber gets nothing outside its prefix.
# tier: check
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"
. "$(dirname "$0")/sublib.sh"

FLIPD_ARGS+=(--changelog-keep 16 --sub-heartbeat-ms 100)
cluster_start 3
leader=$(wait_leader 20) || fail "no leader"
say "leader n$leader"
follower=$(((leader % 3) + 1))
L=$(client_addr "$leader")
F=$(client_addr "$follower")

stream_write "$L" '[[["set","a.0","0"],["set","a.b.0","0"],["set","c.0","0"]]]'
r0=$(stream_top)
wait_until 20 stream_node_applied "$follower" "$r0" || fail "follower never applied $r0"

# live subscribers on the follower, each with its own prefixes
names=(all ab b z)
declare -A prefixes=([all]="" [ab]="--prefix a.b. --prefix a. --prefix a.b."
    [b]="--prefix a.b." [z]="--prefix z.")
for n in "${names[@]}"; do
    # shellcheck disable=SC2086 # the prefix flags split on purpose
    stream_follow "$n" "$follower" ${prefixes[$n]}
done
for n in "${names[@]}"; do
    wait_until 20 grep -q '"heartbeat"' "$TMP/follow.$n" || fail "subscriber $n never went live"
done

# groups that match in part, live deletes (also grouped), a re-creation
say "subscribers live"
stream_write "$L" '[[["set","a.1","1"],["set","a.b.1","1"],["set","c.1","1"]]]'
stream_write "$L" '[[["del","a.1","cleanup"]]]'
stream_write "$L" '[[["set","a.b.2","2"],["del","a.b.1"],["set","c.2","2"],["set","z.1","1"]]]'
# neighbours of each prefix, one character short of it: matched by none
stream_write "$L" '[[["set","a.bx","n"],["set","ab.0","n"],["set","zz.1","n"]]]'
stream_write "$L" '[[["set","a.1","2","again"]]]'
stream_write "$L" '[[["del","a.0"],["del","c.0"]]]'
top=$(stream_top)
for n in "${names[@]}"; do
    wait_until 20 stream_follow_at "$n" "$top" || fail "subscriber $n never reached $top"
done
for n in "${names[@]}"; do
    sub_stop "$n"
    # shellcheck disable=SC2086
    stream_verify "$TMP/follow.$n" ${prefixes[$n]} --applied "$top" ||
        fail "live stream of subscriber $n is not exact"
done

say "live streams exact up to $top"
# catch-up across the deletes, from every revision since r0
for n in "${names[@]}"; do
    # shellcheck disable=SC2086
    stream_check "$F" --expect catchup --from-range "$r0" top ${prefixes[$n]} ||
        fail "catch-up of subscriber $n is not exact"
done

say "catch-up from every revision since $r0 exact"
# 20 more rows compact the change log past every delete: resuming from
# before them gets a resync that holds no deleted flag, then the live stream
batches=$(python3 -c 'import json; print(json.dumps([[["set", "c.n", str(i)]] for i in range(20)]))')
stream_write "$L" "$batches"
top=$(stream_top)
wait_until 20 stream_node_applied "$follower" "$top" || fail "follower never applied $top"
say "change log compacted past $r0"
# The edge: the last 20 entries hold one change each, so the 16 rows kept
# are the last 16 revisions and the compacted point is the 17th last. From
# it: exactly the 16 changes; from one below: a resync.
edge=$(python3 -c 'import json, sys
print(sorted({json.loads(l)["rev"] for l in open(sys.argv[1])})[-17])' "$TMP/stream.acked")
stream_check "$F" --expect catchup --from "$edge" || fail "resume from the compacted point $edge is not exact"
stream_check "$F" --expect resync --from $((edge - 1)) ||
    fail "resume from below the compacted point $edge is not an exact resync"
for n in "${names[@]}"; do
    # shellcheck disable=SC2086
    stream_check "$F" --expect resync --from "$r0" ${prefixes[$n]} --leader "$L" \
        --live "[[[\"set\",\"a.b.l$n\",\"1\"],[\"set\",\"z.l$n\",\"1\"],[\"set\",\"c.l$n\",\"1\"]],[[\"del\",\"a.b.l$n\"],[\"del\",\"z.l$n\"]]]" ||
        fail "resync of subscriber $n is not exact"
done
say "deletes and groups exact in live, catch-up and resync streams"
