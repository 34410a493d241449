#!/usr/bin/env bash
# Bounded fuzzing of every target in fuzz/ with cargo-fuzz (libFuzzer; needs a nightly
# toolchain): each target runs for SECONDS (default 20) from its seed corpus
# (fuzz/corpus/<target>; new inputs go to target/fuzz-corpus, not into the repo).
#
#   scripts/fuzz.sh [SECONDS]
#
# Without a nightly toolchain it says so and exits 0: the corpus and mutation pass in
# `cargo test` (tests/tests/fuzz_corpus.rs) still runs every harness on stable.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
secs=${1:-20}
if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "fuzz: no nightly toolchain; skipping libFuzzer runs (the stable corpus pass runs in cargo test)"
  exit 0
fi
if ! cargo +nightly fuzz --help >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked -q
fi
targets=(trace_context ltf_json jsonl lss_spec sse_chunk)
cargo +nightly fuzz build -O
for t in "${targets[@]}"; do
  work="$root/target/fuzz-corpus/$t"
  mkdir -p "$work"
  echo "== fuzz $t for ${secs}s"
  cargo +nightly fuzz run -O "$t" "$work" "fuzz/corpus/$t" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 2>&1 | tail -5
done
