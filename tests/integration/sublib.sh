# shellcheck shell=bash
# Subscription helpers for integration tests; source after lib.sh.
#
#   sub_start NAME NODE [rawclient subscribe args...]   background subscriber
#       writing JSON events to $TMP/sub.NAME (pid in SUB_PIDS[NAME])
#   sub_wait_rev NAME REV TIMEOUT_S   until a change at >= REV was logged
#   sub_stop NAME
#   write_flips N PREFIX [fctl args]  N sequential flips of PREFIX.kI,
#       acked ones appended to $TMP/acked as "REV KEY VALUE"; through node
#       $WRITE_NODE only when set (a stopped node in the endpoint list costs
#       each new flipctl process a connect timeout)
declare -A SUB_PIDS=()
RAW="$(dirname "${BASH_SOURCE[0]}")/rawclient.py"
SUBCHECK="$(dirname "${BASH_SOURCE[0]}")/subcheck.py"

sub_start() {
    local name=$1 node=$2
    shift 2
    python3 "$RAW" "$(client_addr "$node")" subscribe --seconds 240 "$@" \
        >"$TMP/sub.$name" 2>>"$TMP/sub.$name.err" &
    SUB_PIDS[$name]=$!
    NODE_PIDS+=("$!") # cleanup kills it with the nodes
}

sub_has_rev() {
    python3 - "$TMP/sub.$1" "$2" <<'PY'
import json, sys
want = int(sys.argv[2])
for line in open(sys.argv[1]):
    try:
        ev = json.loads(line)
    except ValueError:
        continue
    if ev.get("type") in ("change", "end") and ev.get("revision", 0) >= want:
        sys.exit(0)
sys.exit(1)
PY
}

sub_wait_rev() {
    wait_until "$3" sub_has_rev "$1" "$2"
}

sub_stop() {
    local pid=${SUB_PIDS[$1]:-}
    [ -n "$pid" ] || return 0
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    SUB_PIDS[$1]=""
}

write_flips() {
    local n=$1 prefix=$2 i rev key
    shift 2
    for ((i = 1; i <= n; i++)); do
        key="$prefix.k$((i % 10))"
        if rev=$(if [ -n "${WRITE_NODE:-}" ]; then
            fctl_node "$WRITE_NODE" "$@" set "$key" "$i" --type int
        else
            fctl "$@" set "$key" "$i" --type int
        fi); then
            echo "$rev $key $i" >>"$TMP/acked"
        fi
    done
}

acked_top() {
    sort -n "$TMP/acked" | tail -1 | awk '{print $1}'
}

# ---- exact stream checks (streamcheck.py) -----------------------------------
#   stream_write ADDR BATCHES_JSON   pipelined writes to ADDR (the leader),
#       each change appended to $TMP/stream.acked (the truth for the checks)
#   stream_check ADDR ARGS..         streamcheck.py check ADDR ACKED ARGS..
#   stream_verify LOG ARGS..         streamcheck.py verify LOG ACKED ARGS..
#   stream_follow NAME NODE ARGS..   background subscriber logging every frame
#       to $TMP/follow.NAME (pid in SUB_PIDS[NAME]; stop it with sub_stop)
#   stream_follow_at NAME REV        true once that subscriber is live at REV
#       or later (a heartbeat: every change up to it was sent before it)
#   stream_top                       echoes the highest acked revision
#   stream_node_applied I REV        true once node I applied raft index REV
#   stream_require_back_to_back      fail unless the truth holds a group entry
#       and two data entries at consecutive revisions
STREAMCHECK="$(dirname "${BASH_SOURCE[0]}")/streamcheck.py"

stream_write() {
    python3 "$STREAMCHECK" write "$1" "$TMP/stream.acked" "$2" >>"$TMP/stream.revs" ||
        fail "stream_write $2: $(tail -1 "$TMP/stream.revs")"
}

stream_check() {
    local addr=$1
    shift
    python3 "$STREAMCHECK" check "$addr" "$TMP/stream.acked" "$@" >&2
}

stream_verify() {
    local log=$1
    shift
    python3 "$STREAMCHECK" verify "$log" "$TMP/stream.acked" "$@" >&2
}

stream_follow() {
    local name=$1 node=$2
    shift 2
    python3 "$STREAMCHECK" follow "$(client_addr "$node")" "$@" \
        >"$TMP/follow.$name" 2>>"$TMP/follow.$name.err" &
    SUB_PIDS[$name]=$!
    NODE_PIDS+=("$!") # cleanup kills it with the nodes
}

stream_follow_at() {
    local last
    last=$(grep -o '"type": "heartbeat", "revision": [0-9]*, "has_id": false, "applied": [0-9]*' \
        "$TMP/follow.$1" | tail -1) || return 1
    [ -n "$last" ] && [ "${last##* }" -ge "$2" ]
}

stream_top() {
    python3 -c 'import json, sys
print(max([json.loads(l)["rev"] for l in open(sys.argv[1]) if l.strip()] or [0]))' \
        "$TMP/stream.acked"
}

stream_node_applied() {
    local got
    got=$({ fctl_node "$1" --json status --timeout 1000 2>/dev/null || true; } |
        json_get 0 applied_revision 2>/dev/null) || return 1
    [ -n "$got" ] && [ "$got" -ge "$2" ]
}

stream_require_back_to_back() {
    python3 - "$TMP/stream.acked" <<'PY' || fail "the writes did not produce the entries this test needs"
import collections, json, sys
n = collections.Counter(json.loads(l)["rev"] for l in open(sys.argv[1]) if l.strip())
groups = [r for r in n if n[r] > 1]
pairs = [r for r in n if r + 1 in n]
print(f"group entries at {sorted(groups)}; data entries followed by one at the next index: {sorted(pairs)}",
      file=sys.stderr)
sys.exit(0 if groups and pairs else 1)
PY
}
