#!/usr/bin/env bash
# The whole test suite: sets up the Python reference venv, then runs every Rust test
# (unit, integration, doc tests) with the interop tests required, not skipped.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
LOOPOTEL_REF_PYTHON=$(bash scripts/setup-python-ref.sh)
export LOOPOTEL_REF_PYTHON
export LOOPOTEL_REQUIRE_INTEROP=1
cargo test --workspace --locked "$@"
