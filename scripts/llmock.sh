#!/usr/bin/env bash
# llmock (PyPI), a real OpenAI-compatible server with scripted faults, for the
# loopotel-openai tests.
#
#   scripts/llmock.sh start   install (once, into .venv-llmock) and start llmock on
#                             127.0.0.1; prints the environment the tests read
#   scripts/llmock.sh stop    stop it (by PID)
#
# Port: LOOPOTEL_LLMOCK_PORT (default 18080).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${LOOPOTEL_LLMOCK_VENV:-$root/.venv-llmock}
state=$root/target/llmock
port=${LOOPOTEL_LLMOCK_PORT:-18080}
pin=llmock==0.2.2

# shellcheck source=scripts/server.sh
source "$root/scripts/server.sh"
stop() { server_stop "$state"; }

start() {
  if [ ! -x "$venv/bin/llmock" ]; then
    # shellcheck source=scripts/python.sh
    source "$root/scripts/python.sh"
    venv_install llmock "$venv" "$pin"
  fi
  stop
  mkdir -p "$state"
  nohup "$venv/bin/llmock" serve --host 127.0.0.1 --port "$port" --log-level warning \
    >"$state/log" 2>&1 &
  echo $! >"$state/pid"
  server_wait llmock "$state" "http://127.0.0.1:$port/_llmock/scenario" 120 0.25 \
    "LOOPOTEL_LLMOCK_URL=http://127.0.0.1:$port"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
