#!/usr/bin/env bash
# After Hello, a connection that leaves a frame unfinished is closed with
# PROTOCOL_ERROR after --frame-timeout-ms, and one that sends nothing is
# closed with UNAVAILABLE after --idle-timeout-ms (both used to be held
# forever), while a subscriber idle just as long keeps its subscription and
# receives the next flip; a subscriber that stops reading mid-snapshot is cut
# off after --sub-snapshot-ms, which releases its LMDB read view.
# tier: check
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"
. "$(dirname "$0")/boundlib.sh"
. "$(dirname "$0")/sublib.sh"

FLIPD_ARGS+=(--idle-timeout-ms 1000 --frame-timeout-ms 1000 --sub-snapshot-ms 1000)
cluster_start 1
wait_leader 20 >/dev/null || fail "no leader"
addr=$(client_addr 1)
fctl set to.a 1 >/dev/null || fail "set failed"
sub_start watcher 1 --prefix to.
wait_until 10 grep -q '"end"' "$TMP/sub.watcher" || fail "no snapshot"

python3 "$BOUNDCLIENT" partial "$addr" >"$TMP/partial.out" &
p1=$!
python3 "$BOUNDCLIENT" idle "$addr" >"$TMP/idle.out" &
p2=$!
NODE_PIDS+=("$p1" "$p2")
wait "$p1" "$p2"
cat "$TMP/partial.out" "$TMP/idle.out" >&2
grep -q '^closed PROTOCOL_ERROR' "$TMP/partial.out" || fail "partial frame not timed out"
grep -q '^closed UNAVAILABLE' "$TMP/idle.out" || fail "idle connection not closed"

rev=$(fctl set to.b 2) || fail "set failed"
wait_until 10 grep -q '"to.b"' "$TMP/sub.watcher" ||
    fail "the idle subscriber was cut off or missed revision $rev"
grep -q '"eof"' "$TMP/sub.watcher" && fail "the subscriber's connection was closed"
sub_stop watcher

python3 "$BOUNDCLIENT" fill "$addr" 100 big.k >"$TMP/fill.out"
grep -q '^filled 100 of 100' "$TMP/fill.out" || fail "fill: $(cat "$TMP/fill.out")"
python3 "$BOUNDCLIENT" stallsub "$addr" 1 big. "$TMP/stop" >"$TMP/stall.out" &
stall=$!
NODE_PIDS+=("$stall")
wait_until 20 grep -q "snapshot took longer than the node lets a read view" "$(node_log 1)" ||
    fail "the stalled snapshot kept its read view"
touch "$TMP/stop"
wait "$stall"
say "idle and partial-frame connections closed; subscriber kept"
