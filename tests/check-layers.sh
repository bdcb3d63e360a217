#!/usr/bin/env bash
# Enforces the include graph of style.md section 3.2 ("doors").
#
# Every #include in every .c/.h under the source folders is resolved to the
# folder it points into, the way the compiler would: a quoted include is
# first looked up next to the including file, then from the repository root
# (-I.); "*.pb-c.h" not found either way is protoc-c output, which belongs to
# proto/. Dependency headers in <...> are checked too.
#
#   folder    may include (project)                 may include (<deps>)
#   lib/      lib                                   libc only
#   proto/    lib proto (+ generated *.pb-c.h)      protobuf-c
#   storage/  lib proto storage                     lmdb, protobuf-c
#   raft/     lib proto storage raft                raft, uv
#   server/   lib proto storage raft server         uv
#   client/   lib proto client                      -
#   bench/    lib client raft storage bench         -
#   tests/    anything                              anything
#
# Two rules hold everywhere: nothing outside server/ (and tests/, which may
# include any internal header) includes server/, and nothing outside tests/
# includes tests/. <raft.h> stays in raft/ ("everything that includes
# <raft.h>"), <lmdb.h> in storage/. Prints one line per violation and exits
# 1 if there is any. Usage: tests/check-layers.sh [REPO_ROOT]
set -uo pipefail

ROOT=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
cd "$ROOT" || exit 2

allowed_project() {
    case "$1" in
    lib) echo "lib" ;;
    proto) echo "lib proto" ;;
    storage) echo "lib proto storage" ;;
    raft) echo "lib proto storage raft" ;;
    server) echo "lib proto storage raft server" ;;
    client) echo "lib proto client" ;;
    bench) echo "lib client raft storage bench" ;;
    tests) echo "ANY" ;;
    *) echo "" ;;
    esac
}

allowed_deps() {
    case "$1" in
    proto) echo "protobuf-c" ;;
    storage) echo "lmdb protobuf-c" ;;
    raft) echo "raft uv" ;;
    server) echo "uv" ;;
    tests) echo "ANY" ;;
    *) echo "" ;;
    esac
}

# Which dependency a <...> header belongs to, or "" for libc/POSIX.
dep_of() {
    case "$1" in
    lmdb.h) echo lmdb ;;
    uv.h | uv/*) echo uv ;;
    raft.h | raft/*) echo raft ;;
    protobuf-c/*) echo protobuf-c ;;
    *) echo "" ;;
    esac
}

# Folder a quoted include from FILE resolves to.
folder_of() {
    local file=$1 inc=$2 dir path
    dir=$(dirname "$file")
    if [ -e "$dir/$inc" ]; then
        path=$(realpath -m --relative-to=. "$dir/$inc")
    elif [ -e "$inc" ]; then
        path=$(realpath -m --relative-to=. "$inc")
    else
        case "$inc" in
        *.pb-c.h) echo proto && return ;;
        esac
        path=$(realpath -m --relative-to=. "$inc")
    fi
    case "$path" in
    */*) echo "${path%%/*}" ;;
    *) echo "(top level: $path)" ;;
    esac
}

contains() { # WORD LIST
    local w
    for w in $2; do
        if [ "$w" = ANY ] || [ "$w" = "$1" ]; then
            return 0
        fi
    done
    return 1
}

violations=0
files=0
report() {
    echo "check-layers: $1"
    violations=$((violations + 1))
}

while IFS= read -r file; do
    files=$((files + 1))
    src=${file%%/*}
    proj=$(allowed_project "$src")
    deps=$(allowed_deps "$src")
    while IFS=: read -r lineno text; do
        [ -n "$lineno" ] || continue
        if [[ $text =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*\"([^\"]+)\" ]]; then
            inc=${BASH_REMATCH[1]}
            to=$(folder_of "$file" "$inc")
            if [ "$to" = server ] && [ "$src" != server ] && [ "$src" != tests ]; then
                report "$file:$lineno: includes \"$inc\": nothing outside server/ may include server/"
            elif [ "$to" = tests ] && [ "$src" != tests ]; then
                report "$file:$lineno: includes \"$inc\": nothing outside tests/ may include tests/"
            elif ! contains "$to" "$proj"; then
                report "$file:$lineno: includes \"$inc\" ($to): $src/ may include only: $proj"
            fi
        elif [[ $text =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*\<([^\>]+)\> ]]; then
            inc=${BASH_REMATCH[1]}
            dep=$(dep_of "$inc")
            [ -n "$dep" ] || continue
            if ! contains "$dep" "$deps"; then
                report "$file:$lineno: includes <$inc>: $src/ may use only: ${deps:-libc}"
            fi
        fi
    done < <(grep -nE '^[[:space:]]*#[[:space:]]*include' "$file")
done < <(find lib proto storage raft server client bench tests \
    -type f \( -name '*.c' -o -name '*.h' \) 2>/dev/null | LC_ALL=C sort)

if [ "$violations" -gt 0 ]; then
    echo "check-layers: $violations violation(s) in $files files (rules: style.md 3.2)"
    exit 1
fi
echo "check-layers: ok ($files files)"
