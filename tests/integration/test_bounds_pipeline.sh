#!/usr/bin/env bash
# A client that pipelines 600 linearizable lists (~0.9 MiB of answer each)
# and does not read leaves the leader's memory bounded (the answers of a
# released read barrier used to be queued all at once: ~1 MiB per 15-byte
# request), while another client's writes are answered and the leader keeps
# its term; once the client reads, every request is answered exactly once.
# tier: check
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"
. "$(dirname "$0")/boundlib.sh"

# a generous election timeout: only a stalled loop, not a busy machine,
# may cost the leader its term
FLIPD_ARGS=(--election-ms 1000 --heartbeat-ms 30)
cluster_start 3
leader=$(wait_leader 20) || fail "no leader"
big=$(python3 -c 'print("x" * 60000)')
for i in $(seq 1 15); do
    fctl_node "$leader" set "amp.k$i" "$big" --type string >/dev/null ||
        fail "setup set $i failed"
done
term0=$(term_of "$leader")
rss0=$(rss_kb "$leader")
say "leader n$leader term $term0, VmRSS ${rss0} kB before the pipeline"

python3 "$BOUNDCLIENT" pipeline "$(client_addr "$leader")" 600 amp. "$TMP/go" \
    >"$TMP/pipeline.out" 2>&1 &
client=$!
NODE_PIDS+=("$client")
wait_until 30 grep -q '^sent' "$TMP/pipeline.out" || fail "pipeline not sent"

# While the client does not read: another client is served, many times.
peak=$rss0
for i in $(seq 1 20); do
    fctl_node "$leader" set amp.other "$i" >/dev/null || fail "write $i not answered"
    r=$(rss_kb "$leader")
    [ "$r" -gt "$peak" ] && peak=$r
done
growth=$(((peak - rss0) / 1024))
say "VmRSS peak growth ${growth} MiB while 600 answers wait"
# Unbounded, this is ~600 MiB; bounded, one connection holds at most
# --max-inflight requests and about 4 MiB of queued answers.
[ "$growth" -lt 200 ] || fail "leader memory grew ${growth} MiB"
assert_eq "$(term_of "$leader")" "$term0" "leader term during the pipeline"

touch "$TMP/go"
wait "$client" || fail "pipeline client failed"
cat "$TMP/pipeline.out" >&2
grep -q '^answered 600 of 600 errors {}' "$TMP/pipeline.out" ||
    fail "not every pipelined list was answered once"
assert_eq "$(fctl_node "$leader" get amp.other)" 20 "value written meanwhile"
say "pipelined reads bounded, all answered"
