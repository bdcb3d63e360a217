#!/usr/bin/env bash
# The chaos checker catches every hand-made violation (lost ack, stale
# read, phantom value, duplicate or out-of-order event, silent gap, wrong
# resync contents, minority ack, untold leaderless subscriber) and passes
# valid histories.
# tier: check
set -euo pipefail
exec python3 "$(dirname "$0")/checker/test_check.py"
