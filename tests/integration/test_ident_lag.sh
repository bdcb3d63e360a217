#!/usr/bin/env bash
# Live means caught up: a follower paused (SIGSTOP) while writes go on
# tells its subscribers it is stale as soon as it runs again, before it
# has applied what the leader committed meanwhile, and live again only
# once it has; `flipctl status` exits 5 (degraded) while a member does not
# answer, 0 once every member is live, and 6 when no node knows a leader.
# tier: check
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"
. "$(dirname "$0")/sublib.sh"

cluster_start 3
leader=$(wait_leader 20) || fail "no leader"
f=1
[ "$f" != "$leader" ] || f=2
say "leader n$leader, paused follower n$f"
WRITE_NODE=$leader write_flips 5 lag
sub_start lag "$f"

live_hb_after() { # FILE LINE: a live heartbeat after line LINE
    python3 - "$1" "$2" <<'PY'
import json, sys
lines = open(sys.argv[1]).read().splitlines()[int(sys.argv[2]):]
sys.exit(0 if any('"heartbeat"' in l and not json.loads(l)["stale"] for l in lines) else 1)
PY
}
wait_until 20 live_hb_after "$TMP/sub.lag" 0 || fail "n$f never said live"
wait_until 20 fctl_node "$leader" status --timeout 2000 >/dev/null 2>&1 ||
    fail "status never exited 0 with every member live"

node_kill "$f" STOP
mark=$(wc -l <"$TMP/sub.lag")
before=$(acked_top)
WRITE_NODE=$leader write_flips 40 lag
top=$(acked_top)
say "n$f paused at or below $before; cluster at $top"
expect_rc 5 fctl_node "$leader" status --timeout 1000
node_kill "$f" CONT
sub_wait_rev lag "$top" 30 || fail "n$f's subscriber never reached $top"
wait_until 20 live_hb_after "$TMP/sub.lag" "$mark" || fail "n$f never said live again"

# In the subscriber's stream after the pause: a stale heartbeat comes
# before the change that catches up, and a live one only after it.
python3 - "$TMP/sub.lag" "$mark" "$top" <<'PY' || fail "stream order"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]).read().splitlines()[int(sys.argv[2]):]]
top = int(sys.argv[3])
caught = next(i for i, e in enumerate(lines) if e["type"] == "change" and e["revision"] >= top)
stale = [i for i, e in enumerate(lines) if e["type"] == "heartbeat" and e["stale"]]
live = [i for i, e in enumerate(lines) if e["type"] == "heartbeat" and not e["stale"]]
assert stale and stale[0] < caught, f"no stale heartbeat among the {caught} events before catching up"
first_live = live[0] if live else None
assert first_live is not None and first_live > caught, \
    f"said live at event {first_live} before catching up at {caught}"
for i in live:
    assert lines[i]["applied"] >= top, f"live heartbeat at {lines[i]['applied']} < {top}"
print(f"stale at event {stale[0]}, caught up at {caught}, live at {first_live}")
PY
wait_until 20 fctl_node "$leader" status --timeout 2000 >/dev/null 2>&1 ||
    fail "status never exited 0 again"
lag=$({ fctl_node "$f" --json status || true; } | json_get 0 lag)
assert_eq "$lag" 0 "n$f's lag once caught up"

# Two of three down: the survivor knows no leader once its election
# timeout passes.
for n in 1 2 3; do
    [ "$n" = "$f" ] || node_kill "$n"
done
status_rc() {
    local rc=0
    fctl_node "$f" status --timeout 1000 >/dev/null 2>&1 || rc=$?
    [ "$rc" -eq "$1" ]
}
wait_until 20 status_rc 6 || fail "status never exited 6 with no leader"
say "pass"
