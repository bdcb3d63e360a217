#!/usr/bin/env bash
# flipctl against a real 3-node cluster: every command's exact stdout,
# stderr and exit status (0 ok, 1 failed, 2 usage, 3 not found, 4
# compare-and-set conflict, 5 degraded), as text and as --json: set's
# type rules, get, del, list, status, watch's events and goals, eval's
# live value, --type and default, and the default actor from $USER.
# (Bad command lines without a cluster: tests/unit/test_cli_flipctl.c.)
# tier: check
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"

export USER="" # the default actor is "flipctl" unless a case sets $USER

# run CMD..: its exit status, stdout and stderr in rc, out, err.
run() {
    rc=0
    "$@" >"$TMP/out" 2>"$TMP/err" || rc=$?
    out=$(cat "$TMP/out")
    err=$(cat "$TMP/err")
}

# check WHAT RC OUT ERR: the last run, exactly.
check() {
    [ "$rc" = "$2" ] || fail "$1: exit $rc, want $2 (stdout: $out; stderr: $err)"
    assert_eq "$out" "$3" "$1: stdout"
    assert_eq "$err" "$4" "$1: stderr"
}

# A revision printed alone on stdout, exit 0, nothing on stderr.
check_rev() {
    [ "$rc" = 0 ] || fail "$1: exit $rc (stderr: $err)"
    [[ "$out" =~ ^[1-9][0-9]*$ ]] || fail "$1: stdout '$out' is no revision"
    assert_eq "$err" "" "$1: stderr"
}

# JSON lines with each "time" checked against its "time_ms" (UTC, ms)
# and both replaced by T, and watch_revision (a heartbeat's) by W.
normalize() {
    python3 -c '
import datetime, json, re, sys
for line in sys.stdin.read().splitlines():
    o = json.loads(line)
    if "time_ms" in o:
        t = datetime.datetime.fromtimestamp(o["time_ms"] / 1000, datetime.timezone.utc)
        want = t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (o["time_ms"] % 1000)
        assert o["time"] == want, (o["time"], want)
    line = re.sub(r"\"time\":\"[^\"]*\",\"time_ms\":[0-9]+", "\"time\":T,\"time_ms\":T", line)
    print(re.sub(r"\"watch_revision\":[0-9]+", "\"watch_revision\":W", line))
'
}

# check_json WHAT RC WANT: the last run's exit status, its stdout
# normalized, nothing on stderr.
check_json() {
    [ "$rc" = "$2" ] || fail "$1: exit $rc, want $2 (stderr: $err)"
    assert_eq "$(printf '%s\n' "$out" | normalize)" "$3" "$1: stdout"
    assert_eq "$err" "" "$1: stderr"
}

cluster_start 3
wait_leader 20 >/dev/null || fail "no leader"

# ---- set, get, del ----------------------------------------------------------

USER='ann!x' run fctl set a.b true --reason "r 1"
check_rev "set a.b"
r1=$out
run fctl --json set a.i 5
[ "$rc" = 0 ] || fail "set --json: exit $rc ($err)"
ri=$(printf '%s' "$out" | json_get revision)
check "set --json" 0 "{\"key\":\"a.i\",\"revision\":$ri}" ""
[ "$ri" -gt "$r1" ] || fail "revisions $r1 then $ri"
# --type auto on a bool flag reads the text as a bool (second round trip)
run fctl set a.b yes
check_rev "set a.b yes"
r2=$out
[ "$r2" -gt "$ri" ] || fail "revisions $ri then $r2"
run fctl set a.b abc
check "set a bool to abc" 2 "" "flipctl: set: a.b is a bool flag and 'abc' is not a bool value (--type T --change-type changes the type)
try 'flipctl --help'"
run fctl set a.b str --type string
check "set another type" 1 "" "flipctl: set a.b: the flag has another value type; set change_type to change it (use --type T --change-type to change the flag's type)"
run fctl set a.b false --if-revision "$r1"
check "set, stale --if-revision" 4 "" "flipctl: set a.b: expected revision does not match (current revision $r2)"
run fctl set a.new 1 --if-revision 1
check "set --if-revision on a missing flag" 4 "" "flipctl: set a.new: expected revision does not match (current revision 0)"

run fctl get a.b
check "get" 0 "true" ""
run fctl --json get a.b
check_json "get --json" 0 "{\"key\":\"a.b\",\"value\":true,\"type\":\"bool\",\"revision\":$r2,\"create_revision\":$r1,\"actor\":\"flipctl\",\"reason\":\"\",\"time\":T,\"time_ms\":T}"
run fctl get nope
check "get a missing flag" 3 "" "flipctl: get nope: no such flag"
run fctl --json get nope
check "get --json a missing flag" 3 "" "flipctl: get nope: no such flag"
run fctl del nope
check "del a missing flag" 3 "" "flipctl: del nope: no such flag"
run fctl delete a.b --if-revision "$r1"
check "del, stale --if-revision" 4 "" "flipctl: del a.b: expected revision does not match (current revision $r2)"
run fctl --json del a.b --if-revision "$r2" --reason gone --actor bob
[ "$rc" = 0 ] || fail "del --json: exit $rc ($err)"
rd=$(printf '%s' "$out" | json_get revision)
check "del --json" 0 "{\"key\":\"a.b\",\"revision\":$rd}" ""
run fctl get a.b
check "get a deleted flag" 3 "" "flipctl: get a.b: no such flag"
run fctl set a.g 1.5
check_rev "set a.g"
run fctl del a.g
check_rev "del a.g"
run fctl del a.g
check "del a deleted flag" 3 "" "flipctl: del a.g: no such flag"

# ---- list -------------------------------------------------------------------

run fctl set c.j '{"x": [1, "a\tb"]}'
check_rev "set c.j"
rj=$out
run fctl set c.s $'tab\there' --type string
check_rev "set c.s"
rs=$out
tab=$'\t'
run fctl ls
check "list" 0 "a.i${tab}5${tab}int${tab}$ri
c.j${tab}{\"x\":[1,\"a\\\\tb\"]}${tab}json${tab}$rj
c.s${tab}tab\\there${tab}string${tab}$rs" ""
run fctl list c.s
check "list c.s" 0 "c.s${tab}tab\\there${tab}string${tab}$rs" ""
run fctl list zz.
check "list, nothing under the prefix" 0 "" ""
run fctl --json list c.
check_json "list --json" 0 "{\"key\":\"c.j\",\"value\":{\"x\":[1,\"a\\tb\"]},\"type\":\"json\",\"revision\":$rj,\"create_revision\":$rj,\"actor\":\"flipctl\",\"reason\":\"\",\"time\":T,\"time_ms\":T}
{\"key\":\"c.s\",\"value\":\"tab\\there\",\"type\":\"string\",\"revision\":$rs,\"create_revision\":$rs,\"actor\":\"flipctl\",\"reason\":\"\",\"time\":T,\"time_ms\":T}"

# ---- watch --------------------------------------------------------------------

# the changes after a revision, up to a count; the first by ann!x
run fctl --timeout 10000 watch --count 3 --from-revision $((r1 - 1))
check "watch --count" 0 "change${tab}a.b${tab}true${tab}bool${tab}$r1${tab}flipctl:annx${tab}r 1
change${tab}a.i${tab}5${tab}int${tab}$ri${tab}flipctl${tab}
change${tab}a.b${tab}true${tab}bool${tab}$r2${tab}flipctl${tab}" ""
run fctl --timeout 10000 watch a.b --count 1 --from-revision "$r2"
check "watch a delete" 0 "delete${tab}a.b${tab}-${tab}-${tab}$rd${tab}bob${tab}gone" ""
run fctl --json --timeout 10000 watch a.b --count 1 --from-revision "$r2"
check_json "watch --json a delete" 0 "{\"event\":\"delete\",\"key\":\"a.b\",\"value\":null,\"type\":null,\"revision\":$rd,\"create_revision\":$r1,\"actor\":\"bob\",\"reason\":\"gone\",\"time\":T,\"time_ms\":T,\"deleted\":true}"
# the snapshot of two prefixes, up to a revision it already holds
run fctl --timeout 10000 watch c. a.i --until-revision "$rs"
check "watch --until-revision, snapshot" 0 "snapshot${tab}a.i${tab}5${tab}int${tab}$ri${tab}flipctl${tab}
snapshot${tab}c.j${tab}{\"x\":[1,\"a\\\\tb\"]}${tab}json${tab}$rj${tab}flipctl${tab}
snapshot${tab}c.s${tab}tab\\there${tab}string${tab}$rs${tab}flipctl${tab}" ""
# a change that reaches the revision ends it
run fctl --timeout 10000 watch c. --from-revision "$rj" --until-revision "$rs"
check "watch --until-revision, change" 0 "change${tab}c.s${tab}tab\\there${tab}string${tab}$rs${tab}flipctl${tab}" ""

# ---- eval ---------------------------------------------------------------------

run fctl eval a.i --wait-ms 20000
check "eval" 0 "5" "flipctl: eval a.i: reason=live state=live revision=$ri"
run fctl eval a.i --type double --wait-ms 20000
check "eval --type double on an int" 0 "5" "flipctl: eval a.i: reason=live state=live revision=$ri"
run fctl --json eval a.i --type double --wait-ms 20000 --min-revision "$rs"
check_json "eval --json" 0 "{\"key\":\"a.i\",\"value\":5,\"type\":\"double\",\"reason\":\"live\",\"state\":\"live\",\"revision\":$ri,\"watch_revision\":W}"
[ "$(printf '%s' "$out" | json_get watch_revision)" -ge "$rs" ] || fail "eval --min-revision $rs: $out"
run fctl eval a.i --type string --default x --wait-ms 20000
check "eval, another type" 0 "x" "flipctl: eval a.i: reason=default state=live"
run fctl eval c.j --type int --wait-ms 20000
check "eval, another type, no default" 3 "" "flipctl: eval c.j: reason=default state=live (no value and no --default)"
run fctl --json eval a.b --type bool --wait-ms 20000
check_json "eval --json, no value" 3 "{\"key\":\"a.b\",\"value\":null,\"type\":null,\"reason\":\"default\",\"state\":\"live\",\"revision\":null,\"watch_revision\":W}"

# ---- status -------------------------------------------------------------------

status_rc() {
    local rc=0
    fctl status >/dev/null 2>&1 || rc=$?
    [ "$rc" = "$1" ]
}
# ID RAFT CLIENT ROLE TERM APPLIED LAG LEADER LIVE REACHABLE [HASH]
status_rows() {
    awk -v hash="$1" 'NR == 1 { print; next }
        { printf "%s %s %s %s %s %s%s\n", $1, $2, $3, ($4 == "leader" || $4 == "follower") ? "role" : $4,
              $9, $10, hash ? ($11 ~ /^[0-9a-f]+$/ && length($11) == 16 ? " hash" : " " $11) : "" }'
}
wait_until 20 status_rc 0 || fail "status never said healthy"
run fctl status
[ "$rc" = 0 ] || fail "status: exit $rc ($err)"
assert_eq "$err" "" "status: stderr"
assert_eq "$(printf '%s\n' "$out" | status_rows 0)" "ID  RAFT             CLIENT           ROLE      TERM  APPLIED  LAG  LEADER  LIVE  REACHABLE
1 $(raft_addr 1) $(client_addr 1) role yes yes
2 $(raft_addr 2) $(client_addr 2) role yes yes
3 $(raft_addr 3) $(client_addr 3) role yes yes" "status"
assert_eq "$(printf '%s\n' "$out" | grep -c '  leader  ')" 1 "status: one leader"
run fctl status --hash
[ "$rc" = 0 ] || fail "status --hash: exit $rc ($err)"
assert_eq "$(printf '%s\n' "$out" | status_rows 1 | tail -n +2)" "1 $(raft_addr 1) $(client_addr 1) role yes yes hash
2 $(raft_addr 2) $(client_addr 2) role yes yes hash
3 $(raft_addr 3) $(client_addr 3) role yes yes hash" "status --hash"
run fctl --json status --hash
[ "$rc" = 0 ] || fail "status --json: exit $rc ($err)"
printf '%s' "$out" | python3 -c '
import json, re, sys
rows = json.load(sys.stdin)
assert [r["id"] for r in rows] == [1, 2, 3], rows
assert all(r["reachable"] and r["live"] and r["joined"] for r in rows), rows
assert len({r["cluster_id"] for r in rows}) == 1 and rows[0]["cluster_id"], rows
assert all(re.fullmatch("[0-9a-f]{16}", r["state_hash"]) for r in rows), rows
assert [r["role"] for r in rows].count("leader") == 1, rows
' || fail "status --json: $out"

# a member down (a follower, so that a leader stays known): exit 5, its
# row unreachable, why on stderr
leader=$(wait_leader 20) || fail "no leader before stopping a follower"
victim=$((leader % 3 + 1))
node_stop "$victim" || true
wait_until 20 status_rc 5 || fail "status never said degraded"
run fctl status
[ "$rc" = 5 ] || fail "status, a member down: exit $rc ($err)"
assert_eq "$err" "flipctl: status: $(client_addr "$victim"): connect: Connection refused
flipctl: status: degraded: $(client_addr "$victim") does not answer" "status, a member down: stderr"
assert_eq "$(printf '%s\n' "$out" | status_rows 0 | sed -n "$((victim + 1))p")" "$victim $(raft_addr "$victim") $(client_addr "$victim") - - no" "status, a member down"
run fctl --json status
[ "$rc" = 5 ] || fail "status --json, a member down: exit $rc"
assert_eq "$err" "flipctl: status: degraded: $(client_addr "$victim") does not answer" "status --json, a member down: stderr"
assert_eq "$(printf '%s' "$out" | json_get $((victim - 1)) reachable)" false "status --json, a member down"
say "flipctl: exact output and exit status of every command"
