#!/usr/bin/env bash
# Enforces the include graph between folders (README.md, "Repository
# layout"), and forbids include circles inside a folder.
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
#   tools/    lib client tools                      -
#   bench/    lib client bench                      -
#   tests/    anything                              anything
#
# Three rules hold everywhere: nothing outside server/ (and tests/, which
# may include any internal header) includes server/, nothing outside tools/
# (and tests/) includes tools/ (flipctl is a program over the library, not
# part of it), and nothing outside tests/ includes tests/. <raft.h> stays in raft/ ("everything that includes
# <raft.h>"), <lmdb.h> in storage/.
#
# Inside a folder, a module is x.c with x.h: module A depends on module B
# when A's .c or .h includes B's header from the same folder. These
# dependencies must form no circle (A -> B -> ... -> A), so that each
# folder's files can be read, and tested, bottom up; a lower module calls
# up only through a table it is handed (e.g. server/conn.h's
# conn_handler). tests/ is exempt. KNOWN_CIRCLES lists the circles that
# were there when the rule came (issue 10), each to be removed with the
# change that breaks it; a circle not listed, or listed and gone, fails.
#
# Prints one line per violation and exits 1 if there is any.
# Usage: tests/check-layers.sh [REPO_ROOT]
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
    tools) echo "lib client tools" ;;
    bench) echo "lib client bench" ;;
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
            elif [ "$to" = tools ] && [ "$src" != tools ] && [ "$src" != tests ]; then
                report "$file:$lineno: includes \"$inc\": nothing outside tools/ may include tools/"
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
done < <(find lib proto storage raft server client tools bench tests \
    -type f \( -name '*.c' -o -name '*.h' \) 2>/dev/null | LC_ALL=C sort)

# Include circles inside each folder: tsort names one if there is any.
KNOWN_CIRCLES=(
    "storage/: snapshot store" # store.c writes snapshots of struct store
    "raft/: dedup fsm"         # dedup.h takes fsm.h's types, fsm.c dedups
)
known_of() { # DIR: the modules of its known circle, if any
    local k
    for k in "${KNOWN_CIRCLES[@]}"; do
        [ "${k%%: *}" = "$1/" ] && echo "${k#*: }" && return
    done
}
known_circle() {
    local k
    for k in "${KNOWN_CIRCLES[@]}"; do
        [ "$k" = "$1" ] && return 0
    done
    return 1
}
for dir in lib proto storage raft server client bench; do
    [ -d "$dir" ] || continue
    loop=$(
        find "$dir" -maxdepth 1 -type f \( -name '*.c' -o -name '*.h' \) |
            LC_ALL=C sort | while IFS= read -r file; do
            from=$(basename "${file%.*}")
            echo "$from $from" # every module is a node, with or without edges
            grep -hE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[^"/]+\.h"' \
                "$file" | sed -E 's/.*"([^"]+)\.h".*/\1/' |
                while IFS= read -r to; do
                    if [ "$to" != "$from" ] && [ -e "$dir/$to.h" ]; then
                        echo "$from $to"
                    fi
                done
        done | tsort 2>&1 >/dev/null | awk '
            /input contains a loop/ { if (out != "") out = out " |"; next }
            /^tsort: [^:]*$/ { out = out " " $2 }
            END { sub(/^ /, "", out); print out }'
    )
    if [ -n "$loop" ] && ! known_circle "$dir/: $loop"; then
        report "$dir/: include circle among modules: $loop"
    elif [ -z "$loop" ] && known_circle "$dir/: $(known_of "$dir")"; then
        report "$dir/: no include circle any more: drop it from KNOWN_CIRCLES"
    fi
done

if [ "$violations" -gt 0 ]; then
    echo "check-layers: $violations violation(s) in $files files (rules: the header of tests/check-layers.sh)"
    exit 1
fi
echo "check-layers: ok ($files files)"
