#!/usr/bin/env bash
# The store's shutdown and its marker files (correctness review L1, L2):
#  - a SIGTERM that arrives while the periodic background LMDB sync is still
#    running on the threadpool waits for it: the sync never runs on a closed
#    environment (a use after free inside liblmdb, which ASan does not see
#    there; the sync then returns an error), and the node exits 0 with its
#    clean marker written;
#  - the fsm directory is fsynced when the markers change: at start (boot_id
#    written, clean removed) and at a clean close (clean created).
# store_io_preload.c (LD_PRELOAD, built here) slows the background sync to
# 3 s and logs it and every directory fsync.
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"

. "$(dirname "$0")/preload.sh"
build_preload store_io_preload
PRELOAD=$TMP/store_io_preload.so
IOLOG=$TMP/store_io.log
: >"$IOLOG"

LD_PRELOAD=$PRELOAD STORE_IO_LOG=$IOLOG STORE_IO_SLOW_MS=3000 cluster_start 1
wait_leader 20 >/dev/null || fail "no leader"
fctl set st.k v1 --type string >/dev/null || fail "write failed"
FSM=$(cd "$TMP/n1/fsm" && pwd -P)

dir_syncs() {
    grep -cx "fsync-dir $FSM" "$IOLOG" || true
}
at_start=$(dir_syncs)
[ "$at_start" -ge 1 ] || fail "the fsm directory was not fsynced after its markers changed at start"

# The first background sync starts about 5 s after start; stop the node
# while it sleeps in it.
wait_until 20 grep -q '^sync-start' "$IOLOG" || fail "no background sync started"
say "background sync in flight; SIGTERM"
rc=0
node_stop 1 || rc=$?
assert_eq "$rc" 0 "exit status of a SIGTERM during a background sync"
grep -q '^sync-end' "$IOLOG" || fail "the background sync never finished"
bad=$(grep '^sync-end' "$IOLOG" | grep -vc '^sync-end 0$' || true)
assert_eq "$bad" 0 "background syncs that failed (run on a closed store)"
[ -e "$FSM/clean" ] || fail "no clean marker after a clean stop"
[ "$(dir_syncs)" -gt "$at_start" ] || fail "the fsm directory was not fsynced after the clean marker was written"
say "shutdown waited for the background sync; markers made durable"
