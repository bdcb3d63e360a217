#!/usr/bin/env bash
# Resuming from a revision older than the retained change log gets an
# explicit resync (a snapshot marked as such) and then the correct live
# stream; resuming inside the log gets exactly the missed changes.
# tier: check
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"
. "$(dirname "$0")/sublib.sh"

FLIPD_ARGS+=(--changelog-keep 40)
cluster_start 3
wait_leader 20 >/dev/null || fail "no leader"
write_flips 200 rs
top=$(acked_top)
old=$(sort -n "$TMP/acked" | head -1 | awk '{print $1}')
recent=$(sort -n "$TMP/acked" | tail -20 | head -1 | awk '{print $1}')

sub_start old 2 --from-revision "$old" --prefix rs.
sub_start recent 3 --from-revision "$recent" --prefix rs.
wait_until 10 grep -q '"end"' "$TMP/sub.old" || fail "no resync snapshot"
grep -q '"resync": true' "$TMP/sub.old" || fail "snapshot not marked as resync"
sub_wait_rev recent "$top" 10 || fail "recent resume did not reach $top"
if grep -q '"begin"' "$TMP/sub.recent"; then
    fail "resume inside the change log sent a snapshot"
fi
first=$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e["type"] == "change":
        print(e["revision"]); break' "$TMP/sub.recent")
[ "$first" -gt "$recent" ] || fail "resume sent revision $first <= $recent"

# The live stream goes on after the resync.
write_flips 30 rs
top=$(acked_top)
sub_wait_rev old "$top" 10 || fail "resynced subscriber missed live changes"
sub_wait_rev recent "$top" 10 || fail "resumed subscriber missed live changes"
sub_stop old
sub_stop recent
echo "{\"type\": \"resume\", \"revision\": $recent}" >"$TMP/recent.log"
cat "$TMP/sub.recent" >>"$TMP/recent.log"
python3 "$SUBCHECK" "$TMP/acked" "$TMP/sub.old" --prefix rs. --allow-resync ||
    fail "resync subscriber state wrong"
python3 - "$TMP/acked" "$TMP/recent.log" "$recent" <<'PY' || fail "resumed stream has a gap"
import json, sys
acked = sorted(int(l.split()[0]) for l in open(sys.argv[1]))
start = int(sys.argv[3])
seen = [json.loads(l)["revision"] for l in open(sys.argv[2]) if json.loads(l)["type"] == "change"]
want = [r for r in acked if r > start]
if seen != want:
    print("want", want[:10], "got", seen[:10])
    sys.exit(1)
PY
say "resync from compacted history and resume inside the log both correct"
