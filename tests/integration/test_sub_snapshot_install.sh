#!/usr/bin/env bash
# A follower stopped while the leader snapshots past it is caught up by
# snapshot install when it resumes; its subscribers then get exactly the
# changes they missed (or an explicit resync), never nothing.
# tier: check
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"
. "$(dirname "$0")/sublib.sh"

FLIPD_ARGS+=(--snapshot-threshold 64 --snapshot-trailing 64)
cluster_start 3
leader=$(wait_leader 20) || fail "no leader"
follower=$(((leader % 3) + 1))
write_flips 10 si
sub_start f "$follower" --prefix si.
sub_start all "$follower"
# both must be subscribed before the stop: a handshake sent to a stopped
# process times out in the client, which is not what this test is about
wait_until 10 grep -q '"end"' "$TMP/sub.f" || fail "no snapshot"
wait_until 10 grep -q '"end"' "$TMP/sub.all" || fail "no snapshot (all keys)"
node_kill "$follower" STOP
say "follower $follower stopped"
WRITE_NODE=$leader write_flips 300 si
top=$(acked_top)
node_kill "$follower" CONT
sub_wait_rev f "$top" 30 || fail "subscriber on the follower never caught up"
sub_wait_rev all "$top" 30 || fail "all-keys subscriber never caught up"
grep -q "restored snapshot" "$(node_log "$follower")" ||
    fail "the follower was not caught up by snapshot install"
sub_stop f
sub_stop all
python3 "$SUBCHECK" "$TMP/acked" "$TMP/sub.f" "$TMP/sub.all" --prefix si. --allow-resync ||
    fail "subscribers on the follower lost changes"
if grep -q '"resync": true' "$TMP/sub.f"; then
    say "subscriber got an explicit resync"
else
    say "subscriber got exactly the missed changes"
fi
