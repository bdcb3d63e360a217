#!/usr/bin/env bash
# flipctl never writes a control character it was sent to the terminal
# (F13): a value, actor and reason holding ESC, BEL, DEL, a C1 CSI and a
# bidi override come out escaped in get, list and watch, and --json gives
# valid JSON that decodes to exactly the bytes that were set.
# tier: check
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"

cluster_start 1
wait_leader 20 >/dev/null || fail "no leader"
val=$'\e[31mRED\e[0m\a\x7f'$'\xc2\x9b''2J'$'\xe2\x80\xae''end'
actor=$'ops\e]0;pwned\a'
reason=$'why\r\nnot'
rev=$(fctl set esc.k "$val" --type string --actor "$actor" --reason "$reason") ||
    fail "set"

# No ESC, BEL, DEL, C1 or bidi control in any human output.
has_controls() {
    python3 -c '
import sys
data = sys.stdin.buffer.read().decode("utf-8", "strict")
bad = [c for c in data if (ord(c) < 0x20 and c not in "\t\n") or 0x7f <= ord(c) <= 0x9f
       or 0x202a <= ord(c) <= 0x202e or 0x2066 <= ord(c) <= 0x2069]
sys.exit(0 if bad else 1)'
}
fctl get esc.k >"$TMP/get.out" || fail "get"
fctl list esc. >"$TMP/list.out" || fail "list"
fctl --timeout 10000 watch esc. --until-revision "$rev" >"$TMP/watch.out" 2>"$TMP/watch.err" ||
    fail "watch"
fctl status >"$TMP/status.out" || fail "status"
for f in get list watch status; do
    ! has_controls <"$TMP/$f.out" || fail "flipctl $f wrote a control character: $(od -c "$TMP/$f.out" | head -5)"
done
assert_eq "$(cat "$TMP/get.out")" '\x1b[31mRED\x1b[0m\x07\x7f\u{009b}2J\u{202e}end' "get, escaped"
grep -qF 'ops\x1b]0;pwned\x07' "$TMP/watch.out" || fail "actor not escaped in watch: $(cat "$TMP/watch.out")"
grep -qF 'why\r\nnot' "$TMP/watch.out" || fail "reason not escaped in watch"

# --json: valid JSON, the exact value, actor and reason.
fctl --json get esc.k >"$TMP/get.json" || fail "get --json"
python3 - "$TMP/get.json" "$val" "$actor" "$reason" <<'PY' || fail "get --json"
import json, os, sys
f = json.load(open(sys.argv[1]))
want = [os.fsencode(a).decode() for a in sys.argv[2:5]]
got = [f["value"], f["actor"], f["reason"]]
assert got == want, (got, want)
raw = open(sys.argv[1], "rb").read()
assert b"\x1b" not in raw and b"\x7f" not in raw and b"\xc2\x9b" not in raw, raw
PY
say "flipctl output escaped; --json exact"
