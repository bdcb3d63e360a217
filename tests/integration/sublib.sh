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
