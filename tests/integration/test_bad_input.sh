#!/usr/bin/env bash
# Bad input against a live node: oversized, garbage, truncated and
# wrongly-typed frames, unknown request types, invalid keys and values, a
# client that never sends anything. Each gets an error (and the connection
# closed where the stream cannot continue); the node keeps serving everyone
# else and its state is unchanged.
# tier: check
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"

# A short frame timeout, so that the truncated-frame probe sees the node
# close the connection it left unfinished (rawclient.py waits for it).
FLIPD_ARGS+=(--frame-timeout-ms 1000)
export FRAME_TIMEOUT_MS=1000
cluster_start 3
leader=$(wait_leader 20) || fail "no leader"
fctl set bi.k before --type string >/dev/null || fail "seed write"
hash0=$({ fctl_node "$leader" status --hash --json || true; } | json_get 0 state_hash)

# A client that connects and sends nothing stays harmless meanwhile.
python3 -c '
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
time.sleep(30)
' "$(client_port "$leader")" &
silent=$!

for node in "$leader" $(((leader % 3) + 1)); do
    for probe in oversized garbage random-bytes truncated-hello truncated no-hello bad-version \
        unknown-type invalid-key invalid-value wrong-type pipeline; do
        python3 "$(dirname "$0")/rawclient.py" "$(client_addr "$node")" "$probe" ||
            fail "probe $probe against node $node"
    done
done

for n in 1 2 3; do
    node_alive "$n" || fail "node $n died"
done
hash1=$({ fctl_node "$leader" status --hash --json || true; } | json_get 0 state_hash)
assert_eq "$hash1" "$hash0" "state hash after bad input"
assert_eq "$(fctl get bi.k)" before "value after bad input"
fctl set bi.k after --type string >/dev/null || fail "write after bad input"
assert_eq "$(fctl get bi.k)" after "value after a good write"
kill "$silent" 2>/dev/null || true
wait "$silent" 2>/dev/null || true
grep -q "closing" "$(node_log "$leader")" || fail "no log line for closed connections"
say "bad input handled; node kept serving"
