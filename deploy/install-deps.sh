#!/bin/sh
# Installs what flipd needs to build and test, only when something is missing.
#
# libraft must be 0.22.x from <codename>-backports: bookworm's own 0.15 commits
# entries without a real majority (a libraft bug fixed in later releases). The
# backports suite is enabled on the mirror the machine already uses, read from
# its apt sources, so no mirror host is written here.
#
# Usage: deploy/install-deps.sh [--check] [--coverage]   (--check: report
# only, exit 1 if something is missing; --coverage: also lcov, for make
# coverage)
set -eu

check=0
COVERAGE_PKGS=""
for a in "$@"; do
    case "$a" in
    --check) check=1 ;;
    --coverage) COVERAGE_PKGS="lcov" ;;
    *) echo "usage: deploy/install-deps.sh [--check] [--coverage]" >&2; exit 2 ;;
    esac
done

PKGS="libuv1-dev liblmdb-dev libprotobuf-c-dev protobuf-c-compiler pkg-config gcc make"
# iptables and libnetfilter-queue-dev: the chaos suite's netns mode (its
# partitions and loss, and the NFQUEUE delay helper tests/chaos/nfq/);
# faketime (with libfaketime): its clock-skew scenario; clang with its
# libFuzzer runtime (libclang-rt-*-dev on Debian 12): the fuzz harnesses
# (make fuzz, and their short run in make test)
TOOLS_PKGS="iproute2 procps psmisc python3 valgrind iptables libnetfilter-queue-dev faketime clang libclang-rt-14-dev"

missing=""
for p in $PKGS $TOOLS_PKGS $COVERAGE_PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
        missing="$missing $p"
done
raft_ok=0
if v=$(pkg-config --modversion raft 2>/dev/null); then
    case "$v" in
    0.1[6-9]* | 0.2* | 1.*) raft_ok=1 ;;
    esac
fi

if [ -z "$missing" ] && [ "$raft_ok" = 1 ]; then
    exit 0
fi
if [ "$check" = 1 ]; then
    echo "missing:$missing $( [ $raft_ok = 1 ] || echo 'libraft-dev(>=0.22 from backports)')"
    exit 1
fi

. /etc/os-release
codename="${VERSION_CODENAME:-bookworm}"
bp="$codename-backports"

run() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    else
        echo "flipd: not root; run this yourself:" >&2
        echo "  sudo $*" >&2
        return 1
    fi
}

# Find the Debian mirror the machine uses (deb822 or one-line format).
mirror=""
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
fi
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
    mirror=$(awk '$1=="deb" && $0 !~ /security/ {for(i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' /etc/apt/sources.list)
fi

need_update=1
if [ "$raft_ok" = 0 ]; then
    if ! grep -rqs "$bp" /etc/apt/sources.list /etc/apt/sources.list.d/; then
        [ -n "$mirror" ] || { echo "flipd: cannot find the Debian mirror in apt sources" >&2; exit 1; }
        if [ "$(id -u)" = 0 ]; then
            cat >/etc/apt/sources.list.d/flipd-backports.sources <<SRC
Types: deb
URIs: $mirror
Suites: $bp
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
        else
            echo "flipd: not root; enable $bp on $mirror, then run:" >&2
            echo "  sudo apt-get update && sudo apt-get install -y -t $bp libraft-dev &&" \
                "sudo apt-get install -y$missing" >&2
            exit 1
        fi
    fi
fi
export DEBIAN_FRONTEND=noninteractive
run apt-get update -q
need_update=0
if [ -n "$missing" ]; then
    run apt-get install -y -q $missing
fi
if [ "$raft_ok" = 0 ]; then
    run apt-get install -y -q -t "$bp" libraft-dev
fi
v=$(pkg-config --modversion raft)
case "$v" in
0.15*) echo "flipd: libraft $v is unsafe (diverges replicas); need 0.22 from $bp" >&2; exit 1 ;;
esac
echo "flipd: dependencies ready (libraft $v)"
