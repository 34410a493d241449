#!/usr/bin/env bash
# One long run with the journal on, in flat memory: records ITERATIONS iterations of SPANS
# child spans each (default 1 000 000 × 9: 10 000 000 spans with the iterations and the
# root), printing the heap in use and the resident memory as it goes, then how long writing
# the document took. Needs about 8 GB of free disk in TMPDIR (the journal, then the JSONL).
#
# usage: scripts/flat_memory.sh [ITERATIONS] [SPANS]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
cargo build --release --locked -q -p loopotel --example long_run
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$root/target/release/examples/long_run" "${1:-1000000}" "${2:-9}" "$tmp/long.jsonl"
