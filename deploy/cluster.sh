# shellcheck shell=bash
# deploy/cluster.sh: the one launcher of flipd clusters on 127.0.0.1,
# sourced by deploy/local-cluster.sh (make run), tests/integration/lib.sh
# (every integration test) and bench/run.sh (make bench). Each caller keeps
# its own policy (port choice, logs, what a dead node means); this holds
# what must not differ between them: the addresses, the --cluster list, how
# a node is started and how it is stopped. (tests/chaos/cluster.py starts
# nodes from Python, inside network namespaces, and stays apart.)
#
# Node I of a cluster of N listens for clients on 127.0.0.1:CLIENT_BASE+I
# and for raft on 127.0.0.1:RAFT_BASE+I; the caller sets
# FLIPD_CLIENT_BASE and FLIPD_RAFT_BASE before calling anything here.
#
#   flipd_client_addr I / flipd_raft_addr I    echo an address
#   flipd_spec N [RAFT_FN CLIENT_FN]   echoes the --cluster list of nodes
#                            1..N; the addresses come from the two
#                            functions named (default the two above), so
#                            that a caller may route raft through a proxy
#   flipd_endpoints N        echoes the client addresses of nodes 1..N
#   flipd_port_busy PORT     true when a socket listens on 127.0.0.1:PORT
#   flipd_node_start FLIPD I DATA OUT CLIENT RAFT SPEC [ARGS..]
#                            starts node I in the background on data dir
#                            DATA (created), listening on CLIENT and RAFT,
#                            --cluster SPEC; stdin /dev/null, stdout and
#                            stderr appended to OUT, ARGS added; the pid
#                            goes to FLIPD_PID. Must not run in $(...): the
#                            node would not be the caller's child.
#   flipd_node_join FLIPD I DATA OUT CLIENT RAFT JOIN [ARGS..]
#                            as flipd_node_start, but --join JOIN (client
#                            addresses of the running cluster) instead of
#                            --cluster: a node to be added with `flipctl
#                            member add I RAFT CLIENT`; it never bootstraps
#   flipd_wait_gone TIMEOUT_S PID..   true once none of the PIDs runs (a
#                            zombie counts as gone), false after TIMEOUT_S
#   flipd_node_stop PID TIMEOUT_S     SIGTERM, then SIGKILL after
#                            TIMEOUT_S; reaps it. FLIPD_STOP_RC: its exit
#                            status, or "hung" when it needed SIGKILL
#
# Every wait is bounded in iterations and in time.

flipd_client_addr() { echo "127.0.0.1:$((FLIPD_CLIENT_BASE + $1))"; }
flipd_raft_addr() { echo "127.0.0.1:$((FLIPD_RAFT_BASE + $1))"; }

flipd_spec() {
    local i spec="" raft=${2:-flipd_raft_addr} client=${3:-flipd_client_addr}
    for ((i = 1; i <= $1; i++)); do
        spec+="${spec:+,}$i=$("$raft" "$i")/$("$client" "$i")"
    done
    echo "$spec"
}

flipd_endpoints() {
    local i eps=""
    for ((i = 1; i <= $1; i++)); do
        eps+="${eps:+,}$(flipd_client_addr "$i")"
    done
    echo "$eps"
}

flipd_port_busy() {
    if command -v ss >/dev/null 2>&1; then
        [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]
    else
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
    fi
}

flipd_node_start() {
    local flipd=$1 i=$2 data=$3 out=$4 client=$5 raft=$6 spec=$7
    shift 7
    flipd_node_run "$flipd" "$i" "$data" "$out" "$client" "$raft" \
        --cluster "$spec" "$@"
}

flipd_node_join() {
    local flipd=$1 i=$2 data=$3 out=$4 client=$5 raft=$6 join=$7
    shift 7
    flipd_node_run "$flipd" "$i" "$data" "$out" "$client" "$raft" \
        --join "$join" "$@"
}

flipd_node_run() {
    local flipd=$1 i=$2 data=$3 out=$4 client=$5 raft=$6
    shift 6
    mkdir -p "$data"
    "$flipd" --id "$i" --data "$data" --client "$client" --raft "$raft" \
        "$@" >>"$out" 2>&1 </dev/null &
    # shellcheck disable=SC2034 # read by the caller
    FLIPD_PID=$!
}

flipd_wait_gone() {
    local timeout=$1 end n pid live
    shift
    end=$((SECONDS + timeout + 1))
    for ((n = 0; n < timeout * 50 + 1; n++)); do
        live=0
        for pid in "$@"; do
            if kill -0 "$pid" 2>/dev/null &&
                [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]; then
                live=1
                break
            fi
        done
        [ "$live" = 1 ] || return 0
        [ "$SECONDS" -lt "$end" ] || return 1
        sleep 0.02
    done
    return 1
}

# shellcheck disable=SC2034 # FLIPD_STOP_RC is read by the caller
flipd_node_stop() {
    local pid=$1 timeout=$2
    kill -TERM "$pid" 2>/dev/null
    if flipd_wait_gone "$timeout" "$pid"; then
        FLIPD_STOP_RC=0
        wait "$pid" 2>/dev/null || FLIPD_STOP_RC=$?
    else
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        FLIPD_STOP_RC=hung
    fi
}
