# shellcheck shell=bash
# tests/integration/preload.sh: sourced (after lib.sh) by the tests that run
# flipd under an LD_PRELOAD helper they build from a C file next to them.
#
#   build_preload NAME   compiles NAME.c (this directory) into $TMP/NAME.so
#                        and echoes nothing; skips the test without a C
#                        compiler, fails it if the build fails. In a
#                        sanitizer build the helper comes before the ASan
#                        runtime in the preload order, which ASan accepts
#                        once told not to check.

build_preload() {
    local name=$1
    command -v cc >/dev/null 2>&1 || skip "no C compiler to build $name.c"
    cc -shared -fPIC -O1 -o "$TMP/$name.so" "$(dirname "${BASH_SOURCE[0]}")/$name.c" -ldl ||
        fail "building $name.so failed"
    # not `| grep -q`: under pipefail, grep leaving early can kill ldd with
    # SIGPIPE and the test then ran without the option (seen in CI)
    if ldd "$FLIPD" 2>/dev/null | grep libasan >/dev/null; then
        case "$ASAN_OPTIONS" in
        *verify_asan_link_order=0*) ;;
        *) export ASAN_OPTIONS="$ASAN_OPTIONS:verify_asan_link_order=0" ;;
        esac
    fi
}
