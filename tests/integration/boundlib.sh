# shellcheck shell=bash
# Helpers of the resource-bound tests (test_bounds_*); sourced after lib.sh.

BOUNDCLIENT=$(dirname "${BASH_SOURCE[0]}")/boundclient.py

# rss_kb I: node I's resident memory in kB (from /proc, never a guess)
rss_kb() {
    awk '/^VmRSS:/ {print $2}' "/proc/$(node_pid "$1")/status"
}

# term_of I: the raft term node I reports
term_of() {
    fctl_node "$1" --json status | python3 -c '
import json, sys
v = json.load(sys.stdin)
if isinstance(v, dict):
    v = v.get("nodes", [v])
print(v[0]["term"])'
}
