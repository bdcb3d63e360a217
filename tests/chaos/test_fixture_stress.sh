#!/usr/bin/env bash
# The deterministic layer below the processes: libraft's raft_fixture
# running our real FSM over LMDB through random kills, partitions and slow
# disks, seeds 1..2000; every replica must apply the same entries and end
# byte-identical (tests/stress/). A seed that hits a known libraft bug
# signature fails unless tests/stress/known-seeds.txt lists it with its
# reason. Usage: test_fixture_stress.sh BUILD_DIR
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
exec "$1/tests/fixture_stress" --seeds 1..2000 --known "$ROOT/tests/stress/known-seeds.txt"
