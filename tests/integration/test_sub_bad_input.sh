#!/usr/bin/env bash
# Bad subscribe requests (wildcard or oversized prefixes, thousands of
# prefixes, an absurd from_revision, a second subscription on one
# connection) get a clear error; other subscribers and writes carry on.
# tier: check
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"
. "$(dirname "$0")/sublib.sh"

cluster_start 3
wait_leader 20 >/dev/null || fail "no leader"
sub_start good 1 --prefix sb.
wait_until 10 grep -q '"end"' "$TMP/sub.good" || fail "no snapshot"
write_flips 20 sb
for probe in sub-wildcard sub-long-prefix sub-many sub-absurd sub-twice; do
    python3 "$RAW" "$(client_addr 1)" "$probe" || fail "probe $probe"
done
write_flips 20 sb
sub_wait_rev good "$(acked_top)" 10 || fail "good subscriber stalled"
sub_stop good
python3 "$SUBCHECK" "$TMP/acked" "$TMP/sub.good" --prefix sb. || fail "good subscriber wrong"
say "bad subscribe requests rejected, nothing else affected"
