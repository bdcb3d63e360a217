#!/usr/bin/env bash
# Restoring one node in place from its own older backup (deploy/README.md,
# "Backup and restore") works: the node catches up with everything
# committed since the backup, and is not live until it has. (libraft's
# leader ignored the restored follower's rejections at or below its old
# match index, so the node stayed at the backup's revision; see
# docs/known-issues.md.)
# tier: check
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"
. "$(dirname "$0")/sublib.sh"

applied_of() { { fctl_node "$1" --json status --timeout 1000 2>/dev/null || true; } | json_get 0 applied_revision; }
caught_up() { [ "$(applied_of "$1")" -ge "$2" ] 2>/dev/null; }

cluster_start 3
leader=$(wait_leader 20) || fail "no leader"
f=1
[ "$f" != "$leader" ] || f=2
WRITE_NODE=$leader write_flips 10 rs
say "backing up n$f at $(acked_top)"
node_stop "$f" || true
cp -a "$TMP/n$f" "$TMP/backup"
node_start "$f"
WRITE_NODE=$leader write_flips ${RESTORE_WRITES:-20} rs
top=$(acked_top)
wait_until 20 caught_up "$f" "$top" || fail "n$f did not catch up before the restore"
say "n$f at $top, stopping it and restoring its backup"
node_stop "$f" || true
rm -rf "$TMP/n$f"
cp -a "$TMP/backup" "$TMP/n$f"
node_start "$f"
wait_port "$f" 20 || fail "restored n$f did not start"
WRITE_NODE=$leader write_flips 5 rs
top=$(acked_top)
wait_until 20 caught_up "$f" "$top" ||
    fail "restored n$f stuck at $(applied_of "$f") while the cluster is at $top"
wait_until 20 fctl_node "$leader" status --timeout 2000 >/dev/null 2>&1 ||
    fail "status never said every node is live after the restore"
h_leader=$({ fctl_node "$leader" --json status --hash || true; } | json_get 0 state_hash)
h_f=$({ fctl_node "$f" --json status --hash || true; } | json_get 0 state_hash)
say "restored n$f caught up to $top"
grep -h "restored from an older backup" "$TMP"/n*.log ||
    say "(the leader's match index for n$f was not ahead of its backup)"
assert_eq "$h_f" "$h_leader" "state hash of the restored node"
say "pass"
