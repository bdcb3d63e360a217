#!/usr/bin/env bash
# A subscriber that stops reading in the middle of its snapshot is cut off
# once the node has written --sub-snapshot-pin bytes (8 MiB here) while its
# LMDB read view was open, so 1200 overwrites of 60 KB afterwards reuse
# freed pages: data.mdb grows by well under what they wrote (before, the
# view stayed pinned for 60 s and every overwrite grew the map, until
# MDB_MAP_FULL aborted the node).
# tier: check
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"
. "$(dirname "$0")/boundlib.sh"

FLIPD_ARGS+=(--changelog-keep 64 --sub-snapshot-pin 8388608)
cluster_start 1
wait_leader 20 >/dev/null || fail "no leader"
addr=$(client_addr 1)
python3 "$BOUNDCLIENT" fill "$addr" 300 pin.k >"$TMP/fill.out"
grep -q '^filled 300 of 300' "$TMP/fill.out" || fail "fill: $(cat "$TMP/fill.out")"
python3 "$BOUNDCLIENT" fill "$addr" 300 churn.k >"$TMP/fill.out"
grep -q '^filled 300 of 300' "$TMP/fill.out" || fail "fill: $(cat "$TMP/fill.out")"
mdb=$TMP/n1/data.mdb
[ -f "$mdb" ] || mdb=$(find "$TMP/n1" -name data.mdb | head -n 1)
size0=$(stat -c %s "$mdb")

python3 "$BOUNDCLIENT" stallsub "$addr" 1 pin. "$TMP/stop" >"$TMP/stall.out" &
stall=$!
NODE_PIDS+=("$stall")
wait_until 20 grep -q '^subscribed 1 refused 0' "$TMP/stall.out" ||
    fail "stalled subscriber not set up: $(cat "$TMP/stall.out")"
for round in 1 2 3 4; do
    python3 "$BOUNDCLIENT" fill "$addr" 300 churn.k >"$TMP/fill.out"
    grep -q '^filled 300 of 300' "$TMP/fill.out" || fail "churn round $round failed"
done
grep -q "snapshot held its read view while the node wrote more" "$(node_log 1)" ||
    fail "the stalled snapshot was not cut off"
size1=$(stat -c %s "$mdb")
growth=$(((size1 - size0) / 1048576))
say "data.mdb grew ${growth} MiB over 1200 overwrites of 60 KB (~140 MiB written)"
[ "$growth" -lt 80 ] || fail "data.mdb grew ${growth} MiB: pages stayed pinned"
touch "$TMP/stop"
wait "$stall"
say "pinned snapshot cut off; pages reused"
