#!/usr/bin/env bash
# The libFuzzer harnesses (tests/fuzz/: request decoding, replicated-entry
# decoding, what a client decodes from a server) build, pass their
# regression inputs (the F6 entry among them) and run FUZZ_SMOKE_SECONDS
# (default 20) each without a crash, leak or sanitizer report. Skipped when
# clang with libFuzzer is not installed (deploy/install-deps.sh adds it).
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
FUZZ_CC=${FUZZ_CC:-clang}
command -v "$FUZZ_CC" >/dev/null 2>&1 || skip "$FUZZ_CC is not installed"
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n)\n{ (void)d; (void)n; return 0; }\n' >"$TMP/probe.c"
"$FUZZ_CC" -fsanitize=fuzzer -o "$TMP/probe" "$TMP/probe.c" >/dev/null 2>&1 ||
    skip "$FUZZ_CC cannot link libFuzzer (-fsanitize=fuzzer)"
make -C "$ROOT" --no-print-directory BUILD="$BUILD" FUZZ_CC="$FUZZ_CC" \
    FUZZ_SMOKE_SECONDS="${FUZZ_SMOKE_SECONDS:-20}" fuzz-smoke >"$TMP/fuzz.out" 2>&1 ||
    fail "fuzzing failed: $(tail -n 40 "$TMP/fuzz.out")"
grep -E '^(ok|FAIL) ' "$TMP/fuzz.out" >&2
[ "$(grep -c '^ok    fuzz_' "$TMP/fuzz.out")" -ge 3 ] || fail "not every harness ran"
say "fuzz harnesses ran clean"
