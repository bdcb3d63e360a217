#!/usr/bin/env bash
# flipd's own edges on one node: the command line (--help, a refused
# option: exact text and exit status), a start that fails (data directory
# that is a file; client port taken) exits 1 cleanly, the descriptor limit
# raised to the hard limit and a connection limit clamped to it, SIGINT
# stops it like SIGTERM; and request handling edges over raw frames
# (srvcheck.py: bad ids/keys/paging, type mismatch per stored type, a
# reused request id, a connection closed with requests in flight, a flood
# of state-hash requests, the size budget early and at apply).
# tier: check
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"

# ---- the command line --------------------------------------------------------
out=$("$FLIPD" --help) || fail "--help exited $?"
# (here-strings, not pipes: a reader leaving early fails no pipeline)
assert_eq "$(head -n 1 <<<"$out")" \
    "usage: flipd --id N --data DIR --client HOST:PORT --raft HOST:PORT" "--help, first line"
grep -qx '  --help                  this text' <<<"$out" || fail "--help lacks the limits part"
rc=0
err=$("$FLIPD" --id 1 --data "$TMP/x" 2>&1 >/dev/null) || rc=$?
assert_eq "$rc" 2 "exit status of a refused command line"
assert_eq "$err" "flipd: --id, --data, --client, --raft and one of --cluster or --join are required (see --help)" \
    "message of a refused command line"

# ---- one node, under a lowered soft descriptor limit ----------------------------
cat >"$TMP/flipd-softfd" <<WRAP
#!/usr/bin/env bash
ulimit -Sn 256 || exit 9
exec "$FLIPD" "\$@"
WRAP
chmod +x "$TMP/flipd-softfd"
REAL_FLIPD=$FLIPD
FLIPD=$TMP/flipd-softfd
FLIPD_ARGS+=(--max-store-bytes 1048576 --max-inflight 1000 --max-frame 131072)
cluster_start 1
wait_leader 20 >/dev/null || fail "no leader"
FLIPD=$REAL_FLIPD
pid=$(node_pid 1)
soft=$(awk '/^Max open files/ {print $4}' "/proc/$pid/limits")
hard=$(awk '/^Max open files/ {print $5}' "/proc/$pid/limits")
[ "$hard" = unlimited ] || [ "$hard" -gt 256 ] || skip "hard descriptor limit $hard"
assert_eq "$soft" "$hard" "soft descriptor limit raised to the hard one"

# ---- starts that fail: exit 1 and the reason ---------------------------------------
# start_fails NAME RAFT CLIENT [ARGS..]: runs flipd as node 1 at RAFT/CLIENT
# on a fresh data dir (ARGS may override it), expects exit 1 with the last
# line "flipd: failed to start: I/O error"; the output is in $TMP/NAME.log
start_fails() {
    local name=$1 raft=$2 client=$3 rc=0
    shift 3
    "$FLIPD" --id 1 --data "$TMP/$name" --client "$client" --raft "$raft" \
        --cluster "1=$raft/$client" "${FLIPD_ARGS[@]}" "$@" >"$TMP/$name.log" 2>&1 || rc=$?
    assert_eq "$rc" 1 "exit status of start $name"
    assert_eq "$(tail -n 1 "$TMP/$name.log")" "flipd: failed to start: I/O error" \
        "last line of start $name"
}
must_log() {
    grep -q "$2" "$TMP/$1.log" || fail "start $1 did not log '$2': $(cat "$TMP/$1.log")"
}

touch "$TMP/afile"
start_fails file "$(raft_addr 1)" "$(client_addr 1)" --data "$TMP/afile"
must_log file "server: cannot create $TMP/afile: Not a directory"

# the client port is node 1's: descriptors for 1 connection only (limit 40,
# 64 reserved), then the listener fails before raft starts
cat >"$TMP/flipd-fd40" <<WRAP
#!/usr/bin/env bash
ulimit -n 40 || exit 9
exec "$REAL_FLIPD" "\$@"
WRAP
chmod +x "$TMP/flipd-fd40"
FLIPD=$TMP/flipd-fd40
start_fails clash "$(raft_addr 1)" "$(client_addr 1)"
FLIPD=$REAL_FLIPD
must_log clash "serving at most 1 connections"
must_log clash "server: cannot listen on $(client_addr 1): address already in use"

# the raft port is node 1's: the client listener works, raft cannot start
start_fails raftclash "$(raft_addr 1)" "$(client_addr 2)"
must_log raftclash "server: serving clients on $(client_addr 2)"
must_log raftclash "server: raft start on $(raft_addr 1): I/O error"

# a client address this machine does not have (TEST-NET-1): bind fails,
# nothing is sent anywhere
start_fails nobind "$(raft_addr 3)" 192.0.2.1:7001
must_log nobind "server: cannot listen on 192.0.2.1:7001: address not available"
node_alive 1 || fail "the running node died"

# ---- requests ------------------------------------------------------------------
PYTHONPATH="$(dirname "$0")" python3 "$(dirname "$0")/srvcheck.py" "$(client_addr 1)" "$(node_pid 1)" ||
    fail "srvcheck failed"

# ---- a stop with a client that never reads, and two signals -------------------------
# The stuck client's answers back up (later ones wait for room, the rest
# stay unread); the stop still ends: its connection is cut a second after
# the node closed.
: >"$TMP/stuck.out"
PYTHONPATH="$(dirname "$0")" python3 "$(dirname "$0")/srvcheck.py" "$(client_addr 1)" stuck 200 \
    >"$TMP/stuck.out" 2>&1 &
NODE_PIDS+=("$!")
wait_until 20 grep -qx sent "$TMP/stuck.out" || fail "the stuck client did not send"
# bytes the node's client port holds unsent (the stuck client's answers)
sendq() {
    ss -Htn state established "( sport = :$(client_port 1) )" | awk '{s += $2} END {print s + 0}'
}
backed_up() { [ "$(sendq)" -gt 1000000 ]; }
if command -v ss >/dev/null 2>&1; then
    wait_until 20 backed_up || fail "no answers backed up: send queue $(sendq)"
    say "send queue of the stuck client: $(sendq) bytes"
else
    say "no ss(8): not waiting to see the answers back up"
fi
# SIGINT and SIGTERM arrive together: one stop
node_kill 1 STOP
kill -s TERM "$(node_pid 1)"
node_kill 1 INT
assert_eq "${NODE_RC[1]}" 0 "exit status after SIGINT and SIGTERM"
for sig in SIGINT SIGTERM; do
    grep -q "server: received $sig, stopping" "$(node_log 1)" || fail "$sig not logged"
done
assert_eq "$(grep -c 'flipd: stopped' "$(node_log 1)")" 1 "stops logged"
say "ok"
