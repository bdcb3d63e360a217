#!/usr/bin/env bash
# A flag's type is fixed once it exists (the kill-switch footgun of the
# operations review: `set payments.kill TRUE` turned a bool into a string
# every service ignored). flipctl's auto type is the existing flag's type,
# with the usual bool spellings; another type is refused unless
# --change-type is given, and the server refuses it too.
# tier: check
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"

cluster_start 3
wait_leader 20 >/dev/null || fail "no leader"

type_of() { fctl get "$1" --json | json_get type; }

fctl set payments.kill false >/dev/null || fail "create"
assert_eq "$(type_of payments.kill)" bool "created as bool"
for v in TRUE on Yes 1; do
    fctl set payments.kill "$v" >/dev/null || fail "set $v"
    assert_eq "$(type_of payments.kill)" bool "after set $v"
    assert_eq "$(fctl get payments.kill)" true "value after set $v"
done
fctl set payments.kill OFF >/dev/null || fail "set OFF"
assert_eq "$(fctl get payments.kill)" false "value after set OFF"

# not a bool: refused by flipctl before anything is sent
expect_rc 2 fctl set payments.kill maybe
# an explicit other type: refused by the server
if out=$(fctl set payments.kill hello --type string 2>&1); then
    fail "type change without --change-type was accepted"
fi
say "refused: $out"
case "$out" in *"another value type"*) ;; *) fail "unclear refusal: $out" ;; esac
assert_eq "$(type_of payments.kill)" bool "still bool"
expect_rc 2 fctl set payments.kill hello --change-type
fctl set payments.kill hello --type string --change-type >/dev/null ||
    fail "explicit type change"
assert_eq "$(type_of payments.kill)" string "changed on purpose"
# a string flag keeps taking strings that look like other types
fctl set payments.kill 42 >/dev/null || fail "string flag, numeric text"
assert_eq "$(type_of payments.kill)" string "numeric text stays a string"
say "ok"
