#!/usr/bin/env bash
# A subscriber whose from_revision is ahead of the node (protocol.md 15,
# rule 5): the node answers SubscribeResult, waits for its apply to reach
# that revision and then sends exactly the changes after it (nothing older
# than from_revision is ever sent); if the node does not get there within
# max(2 s, 2 election timeouts) it sends AHEAD_OF_NODE with id 0 and closes,
# having sent nothing else. A single node with a long election timeout, so
# that the wait (3 s) leaves a loaded machine plenty of time for the write
# the waiting subscriber needs.
# tier: check
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"
. "$(dirname "$0")/sublib.sh"

# shellcheck disable=SC2034 # read by lib.sh
FLIPD_ARGS=(--election-ms 1500 --heartbeat-ms 30 --sub-heartbeat-ms 100)
cluster_start 1
wait_leader 20 >/dev/null || fail "no leader"
say "leader elected"
A=$(client_addr 1)
# The node's own identity entries (cluster id, then "joined") are log
# entries too and would wake a subscriber waiting one revision ahead.
joined() {
    [ "$({ fctl_node 1 --json status 2>/dev/null || true; } | json_get 0 joined 2>/dev/null)" = true ]
}
wait_until 20 joined || fail "the node never recorded itself as joined"
stream_write "$A" '[[["set","ah.a","1"]],[["set","ah.b","1"],["set","ah.c","1"]]]'
top=$(stream_top)
wait_until 20 stream_node_applied 1 "$top" || fail "node never applied $top"

# Ahead (by one, and far), with no write to come: AHEAD_OF_NODE (id 0), then the close.
# (The subscribers wait side by side.)
stream_check "$A" --expect ahead --from $((top + 1)) --from $((top + 1000)) ||
    fail "a subscriber ahead of the node did not get AHEAD_OF_NODE"

# Just ahead: the node waits; the next write (at from_revision itself
# here, the index after the last write) wakes it, and only the changes
# after from_revision are sent, then the live stream.
now=$(stream_top)
stream_check "$A" --expect wait --from $((now + 1)) --leader "$A" \
    --live '[[["set","ah.a","2"]]]' || fail "a waiting subscriber was not served exactly"
now=$(stream_top)
stream_check "$A" --expect wait --from $((now + 1)) --prefix ah. --leader "$A" \
    --live '[[["set","ah.a","3"],["del","ah.b"]],[["set","ah.a","4"]]]' ||
    fail "a waiting subscriber was not served exactly (two writes)"
say "ahead of the node: exact wait, then AHEAD_OF_NODE when it never catches up"
