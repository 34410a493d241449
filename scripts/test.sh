#!/usr/bin/env bash
# The whole test suite: sets up the Python reference venv, starts Arize Phoenix on 127.0.0.1
# (stopped by PID on exit), then runs every Rust test (unit, integration, interop,
# end-to-end, doc tests) with the interop and Phoenix tests required, not skipped.
#
# It also starts llmock (PyPI; an OpenAI-compatible server with scripted faults) and aimock
# (npm; its request journal keeps headers) for the loopotel-openai tests.
#
# It sets up a headless Chromium (Debian's package) and playwright-core (npm) for the report
# page tests (scripts/browser.sh); no server is left running by them.
#
# It starts a real Prometheus (Debian's package, installed with apt-get on first use) that
# scrapes the dashboard test's metrics endpoint (scripts/prometheus.sh).
#
# LOOPOTEL_SKIP_PHOENIX=1 skips starting Phoenix (its tests then say SKIPPED).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

LOOPOTEL_REF_PYTHON=$(bash scripts/setup-python-ref.sh)
export LOOPOTEL_REF_PYTHON
export LOOPOTEL_REQUIRE_INTEROP=1

cleanup() {
  bash scripts/prometheus.sh stop || true
  bash scripts/aimock.sh stop || true
  bash scripts/llmock.sh stop || true
  bash scripts/phoenix.sh stop || true
}
trap cleanup EXIT

llmock_env=$(bash scripts/llmock.sh start)
while IFS= read -r line; do export "${line?}"; done <<<"$llmock_env"
export LOOPOTEL_REQUIRE_LLMOCK=1
aimock_env=$(bash scripts/aimock.sh start)
while IFS= read -r line; do export "${line?}"; done <<<"$aimock_env"
export LOOPOTEL_REQUIRE_AIMOCK=1
prometheus_env=$(bash scripts/prometheus.sh start)
while IFS= read -r line; do export "${line?}"; done <<<"$prometheus_env"
export LOOPOTEL_REQUIRE_PROMETHEUS=1
browser_env=$(bash scripts/browser.sh setup)
while IFS= read -r line; do export "${line?}"; done <<<"$browser_env"
export LOOPOTEL_REQUIRE_BROWSER=1

if [ "${LOOPOTEL_SKIP_PHOENIX:-0}" != 1 ]; then
  phoenix_env=$(bash scripts/phoenix.sh start)
  while IFS= read -r line; do export "${line?}"; done <<<"$phoenix_env"
  export LOOPOTEL_REQUIRE_PHOENIX=1
fi

cargo test --workspace --locked "$@"
