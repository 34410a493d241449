#!/usr/bin/env bash
# How fast the commands that read LTF files go, on one batch file, in one run: `validate`,
# `show`, `compare` (the file against itself) and `convert --to loopnet`, against the Python
# reference's `loopotel-validate` on the same file. Prints a Markdown table (runs and MB read
# per second; best of 3 for each).
#
# usage: scripts/read_speed.sh [SEEDS]   (default 2000 seeds × 7 tasks of the built-in envs;
#                                         the Python row needs the reference venv)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
seeds=${1:-2000}
cargo build --release --locked -q -p loopotel-cli
bin=$root/target/release/loopotel
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin" run builtin/summarize-v1 builtin/triage-v1 --seeds "0..$seeds" --out "$tmp/b.jsonl" >/dev/null
runs=$(wc -l <"$tmp/b.jsonl")
bytes=$(stat -c %s "$tmp/b.jsonl")

best() { # best wall time of 3, in seconds
  local times=() s e
  for _ in 1 2 3; do
    s=$(date +%s.%N)
    "$@" >/dev/null 2>&1 || true
    e=$(date +%s.%N)
    times+=("$(awk -v s="$s" -v e="$e" 'BEGIN { print e - s }')")
  done
  printf '%s\n' "${times[@]}" | sort -g | head -n 1
}

row() { # label seconds [files read]
  awk -v l="$1" -v t="$2" -v n="$runs" -v b="$bytes" -v f="${3:-1}" \
    'BEGIN { printf "| %s | %.2f s | %.0f | %.1f |\n", l, t, n * f / t, b * f / 1e6 / t }'
}

echo "$runs runs, $((bytes / 1000000)) MB of JSONL"
echo
echo "| command | time | runs/s | MB/s |"
echo "|---|---|---|---|"
row "loopotel validate" "$(best "$bin" validate "$tmp/b.jsonl")"
row "loopotel validate --strict" "$(best "$bin" validate --strict "$tmp/b.jsonl")"
row "loopotel show (run list)" "$(best "$bin" show "$tmp/b.jsonl")"
row "loopotel compare (the file against itself: two files read)" "$(best "$bin" compare "$tmp/b.jsonl" "$tmp/b.jsonl")" 2
row "loopotel convert --to loopnet" "$(best sh -c "rm -f '$tmp/r.jsonl'; '$bin' convert --to loopnet '$tmp/b.jsonl' -o '$tmp/r.jsonl'")"
if py=$(bash scripts/setup-python-ref.sh 2>/dev/null); then
  validate=$(dirname "$py")/loopotel-validate
  row "Python loopotel-validate (reference)" "$(best "$validate" "$tmp/b.jsonl")"
fi
