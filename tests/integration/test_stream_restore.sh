#!/usr/bin/env bash
# A follower that was stopped while the leader compacted its change log
# and its raft log is caught up by a snapshot install; then a subscriber
# resuming on it from a revision below the restored compacted point gets an
# explicit resync (never a catch-up from the rows that remain, a silent
# gap), one resuming inside the restored change log gets exactly the changes
# after its revision, and a subscriber that was live on it across the
# install gets a resync too. All of it again after the follower restarts.
# Review mutant M16: the restore leaving the store's in-memory compacted
# point at 0. The leader's snapshot holds the last write (read barriers
# push its log past the threshold), so the follower applies no write after
# the install that could move that point on and hide the bug.
# tier: check
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"
. "$(dirname "$0")/sublib.sh"

FLIPD_ARGS+=(--snapshot-threshold 64 --snapshot-trailing 64 --changelog-keep 16
    --sub-heartbeat-ms 100)
cluster_start 3
leader=$(wait_leader 20) || fail "no leader"
follower=$(((leader % 3) + 1))
L=$(client_addr "$leader")
F=$(client_addr "$follower")

stream_write "$L" '[[["set","st.a","0"]],[["set","st.b","0"]],[["set","st.c","0"]]]'
early=$(head -1 "$TMP/stream.acked" | python3 -c 'import json,sys; print(json.load(sys.stdin)["rev"])')
wait_until 20 stream_node_applied "$follower" "$(stream_top)" || fail "follower never caught up"
stream_follow live "$follower" --prefix st.
wait_until 20 grep -q '"heartbeat"' "$TMP/follow.live" || fail "subscriber never went live"

node_kill "$follower" STOP
batches=$(python3 -c 'import json
b = [[["set", "st.k%d" % (i % 5), str(i)]] for i in range(60)]
b[30] = [["del", "st.b"], ["set", "st.k0", "30"]]
b[45] = [["del", "st.k1", "gone"], ["set", "st.d", "1"], ["set", "other.x", "1"]]
print(json.dumps(b))')
stream_write "$L" "$batches"
top=$(stream_top)
# the third last write's revision: well inside the 16 retained rows
recent=$(python3 -c 'import json, sys
print(sorted({json.loads(l)["rev"] for l in open(sys.argv[1])})[-3])' "$TMP/stream.acked")
# 140 read barriers: the leader takes two snapshots holding revision $top.
# It starts a snapshot only once the one before is stored, so after the
# second began the snapshot it sends the follower holds every write.
python3 "$STREAMCHECK" reads "$L" 140 || fail "reads failed"
two_snapshots() {
    [ "$(grep -c "fsm: snapshot of index $top " "$(node_log "$leader")")" -ge 2 ]
}
wait_until 20 two_snapshots || fail "the leader did not take two snapshots holding revision $top"
node_kill "$follower" CONT
wait_until 30 grep -q "fsm: restored snapshot at index" "$(node_log "$follower")" ||
    fail "the follower was not caught up by a snapshot install"
restored=$(grep -o "fsm: restored snapshot at index [0-9]*" "$(node_log "$follower")" | tail -1)
assert_eq "${restored##* }" "$top" "revision of the restored snapshot"
say "n$follower restored a snapshot at $top; resuming below its compacted point"

check_follower() { # WHEN
    stream_check "$F" --expect resync --from "$early" --prefix st. ||
        fail "$1: resume from $early (compacted) is not an exact resync"
    stream_check "$F" --expect resync --from "$early" ||
        fail "$1: resume from $early (compacted, all keys) is not an exact resync"
    stream_check "$F" --expect catchup --from "$recent" ||
        fail "$1: resume from $recent (retained) is not exact"
}
check_follower "after the install"
wait_until 20 stream_follow_at live "$top" || fail "the live subscriber never reached $top"
sub_stop live
stream_verify "$TMP/follow.live" --prefix st. --resyncs 1 --applied "$top" ||
    fail "the subscriber live across the install did not get an exact resync"

node_stop "$follower" || fail "n$follower did not stop cleanly"
node_start "$follower"
wait_until 20 stream_node_applied "$follower" "$top" || fail "follower never came back"
check_follower "after a restart"
stream_check "$F" --expect resync --from "$early" --leader "$L" \
    --live '[[["set","st.a","1"],["del","st.c"]],[["set","st.a","2"]]]' ||
    fail "no exact live stream after the resync"
say "resync below the restored compacted point, exact catch-up above it"
