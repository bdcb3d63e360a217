#!/usr/bin/env bash
# Code lines per top-level folder: the measure behind issue 10's "bench/ at
# most 20% of the code lines".
#
# A code line is a line of a .c, .h, .sh or .py file (or an extensionless
# executable with a sh/python shebang) that is neither blank nor only
# comment: C block comments and // lines, # lines in shell and Python (the
# shebang included). Python docstrings count as code, strings containing
# comment markers are not parsed: the figure is for comparing folders, not
# for billing. Generated code (build/) and documentation (*.md) are not
# counted. "Non-test" is every folder except tests/ and docs/.
#
# Usage: tests/count-lines.sh [REPO_ROOT]
# Prints "folder lines" per folder, the non-test total and bench/'s share.
set -uo pipefail

ROOT=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
cd "$ROOT" || exit 2

is_code() {
    case "$1" in
    *.c | *.h | *.sh | *.py) return 0 ;;
    *.*) return 1 ;;
    esac
    [ -x "$1" ] && head -n 1 "$1" | grep -Eq '^#!.*(sh|python)'
}

count_file() {
    case "$1" in
    *.c | *.h)
        awk '
        {
            line = $0; code = 0
            while (length(line) > 0) {
                if (incom) {
                    e = index(line, "*/")
                    if (e == 0) { line = ""; break }
                    line = substr(line, e + 2); incom = 0
                } else {
                    s = index(line, "/*"); d = index(line, "//")
                    if (d > 0 && (s == 0 || d < s)) line = substr(line, 1, d - 1)
                    s = index(line, "/*")
                    pre = (s > 0) ? substr(line, 1, s - 1) : line
                    if (pre ~ /[^ \t]/) code = 1
                    if (s == 0) break
                    line = substr(line, s + 2); incom = 1
                }
            }
            n += code
        }
        END { print n + 0 }' "$1"
        ;;
    *) grep -Evc '^[[:space:]]*(#|$)' "$1" ;;
    esac
}

total=0
bench=0
for dir in */; do
    dir=${dir%/}
    case "$dir" in build* | docs) continue ;; esac
    n=0
    while IFS= read -r f; do
        is_code "$f" || continue
        n=$((n + $(count_file "$f")))
    done < <(find "$dir" -type f ! -path '*/results/*' | sort)
    printf '%-10s %6d\n' "$dir" "$n"
    [ "$dir" = tests ] && continue
    total=$((total + n))
    [ "$dir" = bench ] && bench=$n
done
printf '%-10s %6d\n' non-test "$total"
if [ "$total" -gt 0 ]; then
    printf 'bench/ share of non-test code: %d.%d%%\n' \
        $((bench * 100 / total)) $((bench * 1000 / total % 10))
fi
