#!/usr/bin/env bash
# --max-inflight bounds what one connection has started: a client that
# pipelines 100 linearizable lists on a node whose node-wide bound
# (--max-inflight-node 8) is above the per-connection one (4) gets every
# answer OK. Started all at once, the pipeline would pass the node-wide
# bound and get UNAVAILABLE answers (test_bounds_inflight_node shows them).
# tier: check
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"
. "$(dirname "$0")/boundlib.sh"

FLIPD_ARGS+=(--max-inflight 4 --max-inflight-node 8)
cluster_start 1
wait_leader 20 >/dev/null || fail "no leader"
fctl set x.k1 1 >/dev/null || fail "setup set failed"
touch "$TMP/go"
python3 "$BOUNDCLIENT" pipeline "$(client_addr 1)" 100 x. "$TMP/go" >"$TMP/pipe.out" 2>&1 ||
    fail "pipeline client failed: $(cat "$TMP/pipe.out")"
cat "$TMP/pipe.out" >&2
grep -qx "answered 100 of 100 errors {}" "$TMP/pipe.out" ||
    fail "a connection started more requests than --max-inflight"
say "pipelined requests held at --max-inflight, none refused"
