#!/usr/bin/env bash
# With --sub-budget 16 MiB, 8 subscribers that stop reading during 200 flips
# of 60 KB (12 MB each) are cut off by the node-wide budget (each alone stays
# under its own 16 MiB --sub-buffer, so before they held ~8 x 12 MB), while
# a subscriber that reads receives every flip.
# tier: check
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"
. "$(dirname "$0")/boundlib.sh"
. "$(dirname "$0")/sublib.sh"

# --max-frame 16 MiB: fill pipelines its writes, so one revision can hold
# many of them, and an event over the frame limit would become a resync
# snapshot (paced by the socket, not counted against the budget)
FLIPD_ARGS+=(--sub-budget 16777216 --sub-buffer 16777216 --max-frame 16777216)
cluster_start 1
wait_leader 20 >/dev/null || fail "no leader"
addr=$(client_addr 1)
sub_start healthy 1 --prefix sb.
wait_until 10 grep -q '"end"' "$TMP/sub.healthy" || fail "no snapshot"
python3 "$BOUNDCLIENT" stallsub "$addr" 8 sb. "$TMP/stop" >"$TMP/stall.out" &
stall=$!
NODE_PIDS+=("$stall")
wait_until 20 grep -q '^subscribed 8 refused 0' "$TMP/stall.out" ||
    fail "stalled subscribers not set up: $(cat "$TMP/stall.out")"

python3 "$BOUNDCLIENT" fill "$addr" 200 sb.k >"$TMP/fill.out" ||
    fail "fill failed: $(cat "$TMP/fill.out")"
grep -q '^filled 200 of 200' "$TMP/fill.out" || fail "fill: $(cat "$TMP/fill.out")"
wait_until 20 grep -q "subscriber output budget is spent" "$(node_log 1)" ||
    fail "no subscriber was cut off by the node-wide budget"
cut=$(grep -c "subscriber output budget is spent" "$(node_log 1)")
say "$cut stalled subscribers cut by the node-wide budget"
got_all() {
    python3 - "$TMP/sub.healthy" <<'PY'
import json, sys
keys = set()
for line in open(sys.argv[1]):
    try:
        ev = json.loads(line)
    except ValueError:
        continue
    for f in ev.get("flags", []) if ev.get("type") == "change" else []:
        keys.add(f.get("key"))
sys.exit(0 if all("sb.k%d" % i in keys for i in range(200)) else 1)
PY
}
wait_until 30 got_all || fail "the reading subscriber missed flips"
grep -q '"eof"\|SLOW_CONSUMER' "$TMP/sub.healthy" && fail "the reading subscriber was cut"
touch "$TMP/stop"
wait "$stall"
sub_stop healthy
say "node-wide subscriber budget enforced; the reader kept up"
