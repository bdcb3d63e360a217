#!/usr/bin/env bash
# The chaos suite's netns mode on real packets: partitions, client sides,
# one-way drops, loss, delay, and teardown (also under SIGTERM). Skips (77)
# when not root or without `ip netns`/iptables. Usage: test_netns.sh BUILD_DIR
set -euo pipefail
exec python3 "$(dirname "$0")/netns_check.py" "$1"
