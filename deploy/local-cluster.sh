#!/usr/bin/env bash
# Starts a 3-node flipd cluster on 127.0.0.1 in the foreground (what
# `make run` ends with). Ctrl-C or SIGTERM stops all three cleanly.
#
#   deploy/local-cluster.sh BUILD_DIR
#
#   node  client          raft            data
#   n1    127.0.0.1:7001  127.0.0.1:9001  BUILD_DIR/run/n1
#   n2    127.0.0.1:7002  127.0.0.1:9002  BUILD_DIR/run/n2
#   n3    127.0.0.1:7003  127.0.0.1:9003  BUILD_DIR/run/n3
#
# The data is kept: the first run bootstraps the cluster, later runs resume
# it with the same flags. `rm -rf BUILD_DIR/run` starts over. Extra flipd
# flags for every node can be given in FLIPD_ARGS (e.g.
# FLIPD_ARGS="--election-ms 300 --heartbeat-ms 30"). Nodes start and stop
# through deploy/cluster.sh, the launcher the tests and make bench share.
set -euo pipefail

BUILD_ARG=${1:-build}
BUILD=$(cd "$BUILD_ARG" 2>/dev/null && pwd) || {
    echo "local-cluster: build dir '$BUILD_ARG' not found (run make first)" >&2
    exit 2
}
FLIPD=$BUILD/flipd
for bin in "$FLIPD" "$BUILD/flipctl"; do
    [ -x "$bin" ] || {
        echo "local-cluster: $bin is missing (run make first)" >&2
        exit 2
    }
done

# shellcheck source=deploy/cluster.sh
. "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"
NODES=(1 2 3)
FLIPD_CLIENT_BASE=7000
FLIPD_RAFT_BASE=9000

# ---- refuse to start on busy ports ----------------------------------------

busy=""
for i in "${NODES[@]}"; do
    for p in $((FLIPD_CLIENT_BASE + i)) $((FLIPD_RAFT_BASE + i)); do
        if flipd_port_busy "$p"; then
            busy+=" $p"
        fi
    done
done
if [ -n "$busy" ]; then
    echo "local-cluster: port(s)$busy already in use on this machine." >&2
    echo "  Is another local cluster (or another flipd) running? See who holds them:" >&2
    echo "    ss -ltnp | grep -E ':(700[123]|900[123]) '" >&2
    echo "  Stop it, then run this again." >&2
    exit 1
fi

# ---- start ------------------------------------------------------------------

read -r -a extra <<<"${FLIPD_ARGS:-}"
pids=()
names=()
reported=()
stopping=0

stop_all() {
    local i pid rc
    [ "$stopping" = 0 ] || return 0
    stopping=1
    echo "local-cluster: stopping (SIGTERM, up to 5 s)..." >&2
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    flipd_wait_gone 5 "${pids[@]}" || true
    for i in "${!pids[@]}"; do
        pid=${pids[$i]}
        if kill -0 "$pid" 2>/dev/null; then
            echo "local-cluster: ${names[$i]} did not stop within 5 s; SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    for i in "${!pids[@]}"; do
        [ -z "${reported[$i]:-}" ] || continue
        rc=0
        wait "${pids[$i]}" 2>/dev/null || rc=$?
        echo "local-cluster: ${names[$i]} exited (status $rc)" >&2
    done
    # Let the log prefixers drain what the nodes wrote last.
    sleep 0.2
}

trap 'stop_all; exit 0' INT TERM
trap 'stop_all' EXIT

for i in "${NODES[@]}"; do
    # The prefixer ignores INT/TERM: on Ctrl-C it must stay alive to show
    # the nodes' last words and not hand them a SIGPIPE mid-shutdown.
    flipd_node_start "$FLIPD" "$i" "$BUILD/run/n$i" \
        >(trap '' INT TERM; exec sed -u "s/^/n$i| /" >&2) \
        "$(flipd_client_addr "$i")" "$(flipd_raft_addr "$i")" \
        "$(flipd_spec ${#NODES[@]})" ${extra[@]+"${extra[@]}"}
    pids+=("$FLIPD_PID")
    names+=("n$i")
done

rel=$BUILD_ARG
cat >&2 <<EOF

flipd: 3 nodes on 127.0.0.1 (client 7001-7003, raft 9001-9003), data in $BUILD/run
Try, in another terminal:
  $rel/flipctl status
  $rel/flipctl set checkout.new_flow false --reason "incident 42"
  $rel/flipctl get checkout.new_flow
  $rel/flipctl --json get checkout.new_flow
  $rel/flipctl list checkout.
  $rel/flipctl del checkout.new_flow
(flipctl talks to 127.0.0.1:7001,7002,7003 unless given --endpoints.)
Kill a node (kill -9 <pid>) and flags keep flipping; pids: ${pids[*]}
Ctrl-C stops all three.

EOF

# Foreground: report nodes that exit on their own; the others keep running.
while :; do
    alive=0
    for i in "${!pids[@]}"; do
        if kill -0 "${pids[$i]}" 2>/dev/null; then
            alive=1
        elif [ -z "${reported[$i]:-}" ]; then
            reported[i]=1
            rc=0
            wait "${pids[$i]}" 2>/dev/null || rc=$?
            echo "local-cluster: ${names[$i]} exited on its own (status $rc);" \
                "the other nodes keep running" >&2
        fi
    done
    if [ "$alive" = 0 ]; then
        echo "local-cluster: all nodes have exited" >&2
        trap - EXIT
        exit 1
    fi
    sleep 0.5
done
