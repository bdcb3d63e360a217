#!/usr/bin/env bash
# Subscription memory is bounded per subscription and per node, and given
# back on close: 256 prefixes of 256 bytes (~5 MiB of trie for a 64 KiB
# request) are refused with TOO_LARGE; with --sub-budget 1 MiB one
# subscription of 256 x 32 bytes fits, a second is refused with UNAVAILABLE,
# and once the first closes a new one is accepted again.
# tier: check
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"
. "$(dirname "$0")/boundlib.sh"

FLIPD_ARGS+=(--sub-budget 1048576)
cluster_start 1
wait_leader 20 >/dev/null || fail "no leader"
addr=$(client_addr 1)
touch "$TMP/now"

python3 "$BOUNDCLIENT" bigsub "$addr" 1 256 256 "$TMP/now" >"$TMP/huge.out"
cat "$TMP/huge.out" >&2
grep -q '^last status TOO_LARGE' "$TMP/huge.out" || fail "256 x 256 bytes of prefixes accepted"

python3 "$BOUNDCLIENT" bigsub "$addr" 1 256 32 "$TMP/stop1" >"$TMP/first.out" &
first=$!
NODE_PIDS+=("$first")
wait_until 20 grep -q '^subscribed 1 refused 0' "$TMP/first.out" ||
    fail "a subscription within the budget was refused: $(cat "$TMP/first.out")"
python3 "$BOUNDCLIENT" bigsub "$addr" 1 256 32 "$TMP/now" >"$TMP/second.out"
grep -q '^last status UNAVAILABLE' "$TMP/second.out" ||
    fail "a subscription over the node budget was accepted: $(cat "$TMP/second.out")"

touch "$TMP/stop1"
wait "$first"
third() {
    python3 "$BOUNDCLIENT" bigsub "$addr" 1 256 32 "$TMP/now" >"$TMP/third.out" &&
        grep -q '^last status OK' "$TMP/third.out"
}
wait_until 20 third || fail "the budget was not given back on close"
say "subscription memory bounded and returned"
