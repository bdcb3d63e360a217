#!/usr/bin/env bash
# The quick chaos pass (make chaos QUICK=1): leader kills, leader isolation
# plus a paused follower, a stalled subscriber plus a snapshot install, each
# checked by tests/chaos/checker. Usage: test_chaos_quick.sh BUILD_DIR
set -euo pipefail
exec python3 "$(dirname "$0")/run.py" "$1" --quick
