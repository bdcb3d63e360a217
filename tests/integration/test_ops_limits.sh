#!/usr/bin/env bash
# Client limits at their exact edges (docs/protocol.md sections 1 and 10):
# with --max-frame 131072 (the minimum) a request frame of exactly 131072
# bytes is served and the connection stays open, one of 131073 bytes is
# answered TOO_LARGE with id 0 on its length prefix and the connection is
# closed; a client that sends 800 stale lists (about 100 MB of answers)
# at once and reads nothing makes the node stop reading it once about
# 4 MiB wait (its memory stays bounded, another client is served), and
# once it reads it gets every answer exactly once; with --max-conns 2 a
# third connection is answered UNAVAILABLE with id 0 unprompted and closed,
# and once one of the two closes a new connection is served again.
# tier: check
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"
. "$(dirname "$0")/boundlib.sh"
OPS=$(dirname "$0")/opsclient.py

FLIPD_ARGS+=(--max-frame 131072 --max-conns 2)
cluster_start 1
wait_leader 20 >/dev/null || fail "no leader"
addr=$(client_addr 1)

a=$(python3 "$OPS" frame "$addr" 131072) || fail "frame probe failed: $a"
say "frame of 131072 bytes: $a"
assert_eq "$(json_get status <<<"$a")" OK "status of a frame of exactly --max-frame"
assert_eq "$(json_get closed <<<"$a")" false "connection closed after a frame of --max-frame"

a=$(python3 "$OPS" frame "$addr" 131073 --prefix-first) || fail "frame probe failed: $a"
say "frame of 131073 bytes: $a"
assert_eq "$(json_get status <<<"$a")" TOO_LARGE "status of a frame of --max-frame + 1"
assert_eq "$(json_get id <<<"$a")" 0 "id of the oversized-frame error"
assert_eq "$(json_get closed <<<"$a")" true "connection closed after an oversized frame"
grep -q "frame of 131073 bytes exceeds the limit of 131072 bytes" "$(node_log 1)" ||
    fail "the node did not log the oversized frame"

python3 "$BOUNDCLIENT" fill "$addr" 2 unread.k >"$TMP/fill.out" 2>&1 ||
    fail "fill: $(cat "$TMP/fill.out")"
grep -q '^filled 2 of 2' "$TMP/fill.out" || fail "fill: $(cat "$TMP/fill.out")"
rss0=$(rss_kb 1)
python3 "$OPS" unread "$addr" 800 unread. "$TMP/go" >"$TMP/unread.out" 2>&1 &
NODE_PIDS+=("$!")
unread=$!
wait_until 20 grep -q '"sent"' "$TMP/unread.out" || fail "unread client: $(cat "$TMP/unread.out")"
fctl_node 1 set lim.meanwhile 1 >/dev/null || fail "another client was not served"
growth=$((($(rss_kb 1) - rss0) / 1024))
say "VmRSS growth ${growth} MiB with 800 answers (~100 MB) unread"
# unbounded it holds them all (or cuts the client off past 64 MiB)
[ "$growth" -lt 48 ] || fail "the node queued ${growth} MiB for a client that does not read"
touch "$TMP/go"
wait "$unread" || fail "unread client failed: $(cat "$TMP/unread.out")"
a=$(tail -n 1 "$TMP/unread.out")
say "unread client, once reading: $a"
assert_eq "$(json_get answered <<<"$a")" 800 "answers received exactly once"

a=$(python3 "$OPS" conns "$addr" 2) || fail "connection probe failed: $a"
say "connections at --max-conns 2: $a"
assert_eq "$(json_get kept <<<"$a")" 2 "connections served below the limit"
assert_eq "$(json_get extra <<<"$a")" UNAVAILABLE "status of a connection over the limit"
assert_eq "$(json_get extra_id <<<"$a")" 0 "id of the connection-limit error"
assert_eq "$(json_get extra_closed <<<"$a")" true "connection over the limit closed"
assert_eq "$(json_get after_close <<<"$a")" OK "a connection once one of the two closed"
fctl set lim.after 1 >/dev/null || fail "the node does not serve afterwards"
say "frame and connection limits hold at their edges"
