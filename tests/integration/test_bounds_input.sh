#!/usr/bin/env bash
# Unfinished frames of all connections together stay within --input-budget
# (1 MiB here): of 4 connections each holding 400 KB of a frame, those that
# pass the budget are closed (UNAVAILABLE, id 0), the others stay open, and the
# node keeps serving (before, every partial frame was held as long as its
# sender liked: 200 stalled 1 MiB frames held 200 MiB).
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"
. "$(dirname "$0")/boundlib.sh"

FLIPD_ARGS+=(--input-budget 1048576)
cluster_start 1
wait_leader 20 >/dev/null || fail "no leader"
python3 "$BOUNDCLIENT" partials "$(client_addr 1)" 4 400000 >"$TMP/partials.out"
cat "$TMP/partials.out" >&2
# The error frame may be lost to a reset: the rest of the frame was still
# arriving when the node closed.
grep -q "^closed 2 of 4 " "$TMP/partials.out" ||
    fail "unfinished frames past the budget were not refused"
assert_eq "$(grep -c 'input budget of the node spent' "$(node_log 1)")" 2 \
    "connections closed for the input budget"
fctl set in.after 1 >/dev/null || fail "node does not serve"
say "unfinished frames bounded node-wide"
