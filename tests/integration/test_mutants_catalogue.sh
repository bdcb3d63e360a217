#!/usr/bin/env bash
# The mutation catalogue (tests/mutants/catalogue) parses and every
# mutant's line is found exactly once in this tree, so a change that makes
# a mutant stale fails `make test` at once instead of `make mutants` later.
# No build, no nodes: a second or two. (Not in the check tier: `make
# mutants` runs check on mutated trees, where this would always fail.)
#   test_mutants_catalogue.sh BUILD_DIR (unused)
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 tests/mutants/run.py --check
