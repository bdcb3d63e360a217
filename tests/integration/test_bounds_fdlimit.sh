#!/usr/bin/env bash
# Nodes whose descriptor limit is 200 serve at most 200 - --fd-reserve (64)
# client connections: a client opening 250 to the leader has the extras
# refused with UNAVAILABLE, and 60 writes of 60 KB (new 1 MiB raft segments)
# over a held connection all commit; the leader stays up with its term
# (before, client sockets took the descriptors raft needed to open a
# segment, raft_apply failed and the leader crashed in libraft).
# tier: check
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"
. "$(dirname "$0")/boundlib.sh"

cat >"$TMP/flipd-lowfd" <<WRAP
#!/usr/bin/env bash
ulimit -n 200 || exit 9
exec "$FLIPD" "\$@"
WRAP
chmod +x "$TMP/flipd-lowfd"
FLIPD=$TMP/flipd-lowfd
FLIPD_ARGS+=(--segment-size 1048576)
cluster_start 3
leader=$(wait_leader 20) || fail "no leader"
term0=$(term_of "$leader")
wait_until 10 grep -q "serving at most 136 connections" "$(node_log "$leader")" ||
    fail "the node did not clamp --max-conns to its descriptor limit"

python3 "$BOUNDCLIENT" hold "$(client_addr "$leader")" 250 "$TMP/stop" 60 \
    >"$TMP/hold.out" 2>&1 &
client=$!
NODE_PIDS+=("$client")
wait_until 120 grep -q '^sets' "$TMP/hold.out" || fail "the holding client did not finish"
cat "$TMP/hold.out" >&2
read -r _ held _ refused < <(grep '^held' "$TMP/hold.out")
[ "$held" -le 136 ] || fail "held $held connections, limit 136"
[ "$refused" -ge 114 ] || fail "only $refused of 250 connections refused"
grep -q '^sets 60 of 60' "$TMP/hold.out" || fail "writes failed while connections were held"
node_alive "$leader" || fail "the leader died"
touch "$TMP/stop"
wait "$client"
wait_until 10 fctl_node "$leader" set fd.after 1 >/dev/null ||
    fail "leader does not serve once the connections are gone"
assert_eq "$(term_of "$leader")" "$term0" "leader term"
say "extra connections refused; raft kept its descriptors"
