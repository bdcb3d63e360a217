#!/usr/bin/env bash
# bench/catchup_mem.sh BUILD: what a follower's catch-up by InstallSnapshot
# costs the leader's memory, and how many InstallSnapshot messages the
# follower receives for one catch-up (issue 9; the large-store rows of
# `make bench` found the leader's RssAnon growing by gigabytes).
#
# Three flipd nodes (default flags but a 1 GiB store budget); N (default
# 20000) flags of 1 KiB through bench/bigstore; a follower stopped; 9000
# small writes one at a time (one raft entry each: the leader snapshots and
# drops its log past the follower); the follower restarted with
# LIBRAFT_TRACE=1 and waited for until it applied the leader's index. The
# leader's RssAnon is sampled every 100 ms meanwhile (at most 60 s).
# Prints the catch-up JSON, the RssAnon samples (kB), the leader's RssAnon
# and VmHWM after, and from the follower's trace the InstallSnapshot
# messages it received and how it answered them. Nothing asserted.
# N=... sets the flags (mind the memory: the leader's RssAnon grew to
# 2.4 GB for 20000, past 6 GB for 100000); KEEP=1 keeps the logs.
set -euo pipefail
N=${N:-20000}
# shellcheck disable=SC2034 # read by lib.sh
FLIPD_ARGS=(--max-store-bytes 1073741824)
. "$(dirname "$0")/../tests/integration/lib.sh" "$@"
BS=$BUILD/bench/bigstore
[ -x "$BS" ] || fail "$BS is missing (make all)"

cluster_start 3
leader=$(wait_leader 30) || fail "no leader"
say "filling $N flags of 1 KiB"
"$BS" fill --endpoints "$(endpoints)" --n "$N" --value-bytes 1024 \
    --threads 32 --max-seconds 600 >/dev/null
f=$((leader % 3 + 1))
node_stop "$f" || true
say "n$f stopped; 9000 small writes"
"$BS" fill --endpoints "$(endpoints)" --n 9000 --keys 64 --value-bytes 16 \
    --prefix big.tick. --threads 1 --max-seconds 300 >/dev/null
sleep 2
lp=$(node_pid "$leader")
(
    for ((i = 0; i < 600; i++)); do
        kill -0 "$lp" 2>/dev/null || break
        echo "$(date +%T.%3N) $(awk '/^RssAnon:/ {print $2}' "/proc/$lp/status")"
        sleep 0.1
    done
) >"$TMP/rss.txt" 2>/dev/null &
sampler=$!
say "n$f restarted (LIBRAFT_TRACE=1): catch-up"
LIBRAFT_TRACE=1 node_start "$f"
"$BS" wait --node "$(client_addr "$f")" --leader "$(client_addr "$leader")" \
    --watch-pid "$lp" --max-seconds 60 || true
kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true
echo "leader RssAnon (kB), every 100 ms:"
sed 's/^/  /' "$TMP/rss.txt" | head -n 60
grep -E '^(RssAnon|VmHWM):' "/proc/$lp/status" | sed 's/^/leader after: /'
log=$(node_log "$f")
echo "install_snapshot_received $(grep -ac 'recv install snapshot' "$log" || true)"
echo "  already_installing $(grep -ac 'already taking or installing snapshot' "$log" || true)"
echo "  have_more_recent $(grep -ac 'have more recent snapshot' "$log" || true)"
echo "restored $(grep -ac 'fsm: restored snapshot' "$log" || true)"
