#!/usr/bin/env bash
# How fast the commands that read LTF files go, on one batch file, in one run: `validate`,
# `show`, `report`, `compare` (the file against itself) and `convert --to loopnet`, against
# the Python reference's `loopotel-validate` on the same file. Prints a Markdown table (runs
# and MB read per second, best of 3 for each; the peak resident memory of one more run).
#
# usage: scripts/read_speed.sh [SEEDS]   (default 2000 seeds x 7 tasks of the built-in envs,
#                                         14 000 runs; 14286 gives 100 000 runs, 350 MB;
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

peak() { # peak resident memory of one run, in MiB
  python3 -c 'import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)' "$@"
}

measure() { # label files-read command...
  local label=$1 files=$2 t m
  shift 2
  t=$(best "$@")
  m=$(peak "$@")
  awk -v l="$label" -v t="$t" -v n="$runs" -v b="$bytes" -v f="$files" -v m="$m" \
    'BEGIN { printf "| %s | %.2f s | %.0f | %.1f | %d MiB |\n", l, t, n * f / t, b * f / 1e6 / t, m }'
}

echo "$runs runs, $((bytes / 1000000)) MB of JSONL"
echo
echo "| command | time | runs/s | MB/s | peak memory |"
echo "|---|---|---|---|---|"
measure "loopotel validate" 1 "$bin" validate "$tmp/b.jsonl"
measure "loopotel validate --strict" 1 "$bin" validate --strict "$tmp/b.jsonl"
measure "loopotel show (run list)" 1 "$bin" show "$tmp/b.jsonl"
measure "loopotel report" 1 "$bin" report "$tmp/b.jsonl" -o "$tmp/report.html"
measure "loopotel compare (the file against itself: two files read)" 2 "$bin" compare "$tmp/b.jsonl" "$tmp/b.jsonl"
measure "loopotel convert --to loopnet" 1 sh -c "rm -f '$tmp/r.jsonl'; '$bin' convert --to loopnet '$tmp/b.jsonl' -o '$tmp/r.jsonl'"
if py=$(bash scripts/setup-python-ref.sh 2>/dev/null); then
  validate=$(dirname "$py")/loopotel-validate
  measure "Python loopotel-validate (reference)" 1 "$validate" "$tmp/b.jsonl"
fi
echo
echo "report page: $(($(stat -c %s "$tmp/report.html") / 1000)) kB"
