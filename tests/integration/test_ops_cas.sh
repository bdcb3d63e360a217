#!/usr/bin/env bash
# Compare-and-set and NOT_FOUND end to end (docs/protocol.md sections 5 and
# 8): a stale, a future and a 0 --if-revision on set and on del exit 4 with
# "(current revision N)" naming the flag's exact revision and change
# nothing; a matching one applies; del of a missing flag exits 3 (with
# --if-revision 0 too) but with --if-revision 5 conflicts at revision 0. On
# the wire the same requests are answered CAS_CONFLICT with current_revision,
# and NOT_FOUND, never one for the other.
# tier: check
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"
OPS=$(dirname "$0")/opsclient.py

# expect_ctl RC STDERR_TEXT ARGS..: flipctl ARGS exits RC and its stderr
# holds STDERR_TEXT (empty: anything); echoes its stdout
expect_ctl() {
    local want=$1 text=$2 rc=0 got
    shift 2
    got=$(fctl "$@" 2>"$TMP/err") || rc=$?
    [ "$rc" = "$want" ] ||
        fail "flipctl $*: exit $rc, want $want (stderr: $(cat "$TMP/err"))"
    if [ -n "$text" ] && ! grep -qF -- "$text" "$TMP/err"; then
        fail "flipctl $*: stderr lacks '$text': $(cat "$TMP/err")"
    fi
    printf '%s' "$got"
}

# raw_is WANT_STATUS WANT_CURRENT OP KEY [ARGS..]: the exact status, and
# current_revision (or "-" for absent)
raw_is() {
    local st=$1 cur=$2 a
    shift 2
    a=$(python3 "$OPS" req "$(client_addr 1)" "$@")
    assert_eq "$(json_get status <<<"$a")" "$st" "status of raw $*"
    if [ "$cur" = - ]; then
        python3 -c 'import json,sys; sys.exit("current_revision" in json.loads(sys.argv[1]))' "$a" ||
            fail "raw $*: current_revision present in $a"
    else
        assert_eq "$(json_get current_revision <<<"$a")" "$cur" "current_revision of raw $*"
    fi
}

cluster_start 1
wait_leader 20 >/dev/null || fail "no leader"

# ---- flipctl: set ------------------------------------------------------------
r1=$(expect_ctl 0 "" set cas.a 1)
r2=$(expect_ctl 0 "" set cas.a 2)
[ "$r2" -gt "$r1" ] || fail "revisions $r1 then $r2"
expect_ctl 4 "(current revision $r2)" set cas.a 3 --if-revision "$r1" >/dev/null
expect_ctl 4 "(current revision $r2)" set cas.a 3 --if-revision $((r2 + 1000)) >/dev/null
expect_ctl 4 "(current revision $r2)" set cas.a 3 --if-revision 0 >/dev/null
assert_eq "$(fctl --json get cas.a | json_get revision)" "$r2" "revision after refused sets"
assert_eq "$(fctl get cas.a)" 2 "value after refused sets"
r3=$(expect_ctl 0 "" set cas.a 4 --if-revision "$r2")
[ "$r3" -gt "$r2" ] || fail "matching --if-revision: revision $r3"
assert_eq "$(fctl get cas.a)" 4 "value after a matching --if-revision"
expect_ctl 4 "(current revision 0)" set cas.none 1 --if-revision 5 >/dev/null
expect_ctl 3 "" get cas.none >/dev/null
rn=$(expect_ctl 0 "" set cas.new 1 --if-revision 0)
assert_eq "$(fctl --json get cas.new | json_get revision)" "$rn" "create-only set"

# ---- flipctl: del ------------------------------------------------------------
expect_ctl 4 "(current revision $r3)" del cas.a --if-revision "$r2" >/dev/null
expect_ctl 4 "(current revision $r3)" del cas.a --if-revision $((r3 + 1000)) >/dev/null
expect_ctl 4 "(current revision $r3)" del cas.a --if-revision 0 >/dev/null
assert_eq "$(fctl get cas.a)" 4 "value after refused deletes"
expect_ctl 3 "" del cas.none >/dev/null
expect_ctl 3 "" del cas.none --if-revision 0 >/dev/null
expect_ctl 4 "(current revision 0)" del cas.none --if-revision 5 >/dev/null
r4=$(expect_ctl 0 "" del cas.a --if-revision "$r3")
[ "$r4" -gt "$r3" ] || fail "matching del: revision $r4"
expect_ctl 3 "" get cas.a >/dev/null
expect_ctl 3 "" del cas.a >/dev/null
say "flipctl: exit 4 with the exact current revision, exit 3 for missing flags"

# ---- the wire ----------------------------------------------------------------
r5=$(expect_ctl 0 "" set cas.w 1)
raw_is CAS_CONFLICT "$r5" set cas.w 2 --cas $((r5 - 1))
raw_is CAS_CONFLICT "$r5" set cas.w 2 --cas $((r5 + 1))
raw_is CAS_CONFLICT "$r5" set cas.w 2 --cas 0
raw_is CAS_CONFLICT "$r5" del cas.w --cas $((r5 + 1))
raw_is CAS_CONFLICT "$r5" del cas.w --cas 0
raw_is CAS_CONFLICT 0 set cas.gone 2 --cas 7
raw_is CAS_CONFLICT 0 del cas.gone --cas 7
raw_is NOT_FOUND - del cas.gone
raw_is NOT_FOUND - del cas.gone --cas 0
raw_is NOT_FOUND - get cas.gone
raw_is OK - set cas.gone 1 --cas 0
raw_is OK - del cas.w --cas "$r5"
assert_eq "$(fctl get cas.gone)" 1 "create-only set on the wire"
say "wire: CAS_CONFLICT with current_revision, NOT_FOUND, never swapped"
