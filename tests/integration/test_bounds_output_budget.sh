#!/usr/bin/env bash
# With --output-budget 2 MiB, three clients that each pipeline 200
# linearizable lists (~0.9 MiB of answer each) and read nothing leave the
# leader's memory bounded; once they read, each gets every answer exactly
# once (a connection paused for the node's budget is woken again, never
# starved), and writes from another client are answered meanwhile.
# tier: check
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"
. "$(dirname "$0")/boundlib.sh"

FLIPD_ARGS+=(--output-budget 2097152)
cluster_start 1
wait_leader 20 >/dev/null || fail "no leader"
addr=$(client_addr 1)
python3 "$BOUNDCLIENT" fill "$addr" 15 amp.k >"$TMP/fill.out"
grep -q '^filled 15 of 15' "$TMP/fill.out" || fail "fill: $(cat "$TMP/fill.out")"
rss0=$(rss_kb 1)
for i in 1 2 3; do
    python3 "$BOUNDCLIENT" pipeline "$addr" 200 amp. "$TMP/go" >"$TMP/pipe$i.out" 2>&1 &
    pids[i]=$!
    NODE_PIDS+=("${pids[i]}")
done
for i in 1 2 3; do
    wait_until 30 grep -q '^sent' "$TMP/pipe$i.out" || fail "client $i did not send"
done
peak=$rss0
for i in $(seq 1 10); do
    fctl_node 1 set amp.other "$i" >/dev/null || fail "write $i not answered"
    r=$(rss_kb 1)
    [ "$r" -gt "$peak" ] && peak=$r
done
growth=$(((peak - rss0) / 1024))
say "VmRSS peak growth ${growth} MiB while 600 answers wait"
[ "$growth" -lt 150 ] || fail "node memory grew ${growth} MiB"
touch "$TMP/go"
for i in 1 2 3; do
    wait "${pids[i]}" || fail "client $i failed"
    grep -q '^answered 200 of 200 errors {}' "$TMP/pipe$i.out" ||
        fail "client $i: $(cat "$TMP/pipe$i.out")"
done
say "node-wide output budget held; every answer delivered"
