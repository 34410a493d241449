#!/usr/bin/env bash
# One long run with the journal on, in flat memory: records ITERATIONS iterations of SPANS
# child spans each (default 1 000 000 × 9: 10 000 000 spans with the iterations and the
# root), printing the heap in use and the resident memory as it goes, then how long writing
# the document took; then checks the document with `loopotel validate --strict` (read as a
# stream), printing its time and peak memory. Needs about 8 GB of free disk in TMPDIR (the
# journal, then the JSONL).
#
# usage: scripts/flat_memory.sh [ITERATIONS] [SPANS]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
cargo build --release --locked -q -p loopotel --example long_run
cargo build --release --locked -q -p loopotel-cli
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$root/target/release/examples/long_run" "${1:-1000000}" "${2:-9}" "$tmp/long.jsonl"
ls -l "$tmp/long.jsonl"
start=$EPOCHREALTIME
"$root/target/release/loopotel" validate --strict "$tmp/long.jsonl" &
pid=$!
peak=0
while kill -0 "$pid" 2>/dev/null; do
  rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
  [ "${rss:-0}" -gt "$peak" ] && peak=$rss
  sleep 0.2
done
wait "$pid"
awk -v s="$start" -v e="$EPOCHREALTIME" -v p="$peak" \
  'BEGIN { printf "validated in %.1f s, peak resident %d MiB\n", e - s, p / 1024 }'
