#!/usr/bin/env bash
# At --max-inflight-node (8 here) further requests are answered UNAVAILABLE
# at once instead of being started: a client pipelining 100 linearizable
# lists gets an answer to every one, some of them UNAVAILABLE, and the node
# serves the next client normally.
# tier: check
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"
. "$(dirname "$0")/boundlib.sh"

FLIPD_ARGS+=(--max-inflight-node 8)
cluster_start 1
wait_leader 20 >/dev/null || fail "no leader"
touch "$TMP/go"
python3 "$BOUNDCLIENT" pipeline "$(client_addr 1)" 100 x. "$TMP/go" >"$TMP/pipe.out" 2>&1 ||
    fail "pipeline client failed: $(cat "$TMP/pipe.out")"
cat "$TMP/pipe.out" >&2
grep -q "^answered 100 of 100 errors {'UNAVAILABLE': [0-9]*}" "$TMP/pipe.out" ||
    fail "requests over the node's in-flight bound were not refused"
fctl set x.after 1 >/dev/null || fail "node does not serve afterwards"
assert_eq "$(fctl get x.after)" 1 "value"
say "node-wide in-flight bound refuses, then recovers"
