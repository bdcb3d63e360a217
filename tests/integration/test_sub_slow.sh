#!/usr/bin/env bash
# A stalled subscriber (SIGSTOP'd process) is cut off at its output bound
# with SLOW_CONSUMER while 10 other subscribers on the same node keep
# receiving every flip, in order, exactly; after SIGCONT it resumes from its
# last revision with no gap. Asserted on order and content only: how long
# the cut-off takes is a `make bench` row (bench/promises.py).
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"
. "$(dirname "$0")/sublib.sh"

FLIPD_ARGS+=(--sub-buffer 65536)
cluster_start 3
leader=$(wait_leader 20) || fail "no leader"
big=$(printf 'x%.0s' $(seq 1 32000))

flip_big() { # N: acked lines "REV KEY VALUE"
    local n=$1 i rev key
    for ((i = 1; i <= n; i++)); do
        key="sl.k$((i % 5))"
        if rev=$(fctl_node "$leader" set "$key" "$i$big" --type string); then
            echo "$rev $key $i$big" >>"$TMP/acked"
        fi
    done
}

sub_start stalled "$leader" --prefix sl.
for i in $(seq 1 10); do
    sub_start "n$i" "$leader" --prefix sl.
done
for i in $(seq 1 10); do
    wait_until 10 grep -q '"end"' "$TMP/sub.n$i" || fail "no snapshot for n$i"
done
flip_big 30
mark=$(acked_top)
kill -STOP "${SUB_PIDS[stalled]}"
say "stalled subscriber stopped after revision $mark"
flip_big 300 &
flipper=$!
NODE_PIDS+=("$flipper") # cleanup stops it if the test fails early
# Woken as soon as it is cut off: a node gives a peer it closes 5 s to read
# what is queued (the error last) before it drops the connection, and a
# slow machine can take longer than that for the remaining flips.
if ! wait_until 60 grep -q "slow subscriber cut off" "$(node_log "$leader")"; then
    wait "$flipper" || true
    fail "the stalled subscriber was not cut off"
fi
kill -CONT "${SUB_PIDS[stalled]}"
wait "$flipper"
top=$(acked_top)
for i in $(seq 1 10); do
    sub_wait_rev "n$i" "$top" 30 || fail "subscriber n$i stalled too"
done
wait_until 10 grep -q '"SLOW_CONSUMER"' "$TMP/sub.stalled" || fail "no SLOW_CONSUMER error"
wait_until 10 grep -q '"eof"' "$TMP/sub.stalled" || fail "connection not closed"
last=$(python3 -c 'import json,sys
last = 0
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e["type"] in ("change", "end"):
        last = e["revision"]
print(last)' "$TMP/sub.stalled")
say "stalled subscriber got up to revision $last; resuming"
sub_start resumed "$leader" --prefix sl. --from-revision "$last"
sub_wait_rev resumed "$top" 20 || fail "resumed subscriber did not catch up"
for s in stalled resumed $(seq -f 'n%g' 1 10); do
    sub_stop "$s"
done
# The stalled log (with its "subscribed" line: the prefixes) then the
# resumed one: one stream, which subcheck checks like the others.
grep -v '"eof"\|"error"' "$TMP/sub.stalled" >"$TMP/joined"
grep -v '"subscribed"' "$TMP/sub.resumed" >>"$TMP/joined"
python3 "$SUBCHECK" "$TMP/acked" "$TMP/joined" $(seq -f "$TMP/sub.n%g" 1 10) \
    --prefix sl. --value-type string || fail "a subscriber missed or repeated a flip"
say "stalled subscriber cut off and resumed; the others got every flip in order"
