#!/usr/bin/env bash
# Arize Phoenix (PyPI), a real OTLP backend, for the end-to-end tests.
#
#   scripts/phoenix.sh start   install (once, into .venv-phoenix) and start Phoenix on
#                              127.0.0.1; prints the environment the tests read
#   scripts/phoenix.sh stop    stop it (by PID)
#
# Ports: LOOPOTEL_PHOENIX_PORT (HTTP, default 16006), LOOPOTEL_PHOENIX_GRPC_PORT (default 14317).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${LOOPOTEL_PHOENIX_VENV:-$root/.venv-phoenix}
state=$root/target/phoenix
http_port=${LOOPOTEL_PHOENIX_PORT:-16006}
grpc_port=${LOOPOTEL_PHOENIX_GRPC_PORT:-14317}
pin=arize-phoenix==20.26.1

stop() {
  if [ -f "$state/pid" ]; then
    pid=$(cat "$state/pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$state/pid"
  fi
}

start() {
  if [ ! -x "$venv/bin/phoenix" ]; then
    # shellcheck source=scripts/python.sh
    source "$root/scripts/python.sh"
    py=$(find_python) || { echo "phoenix: no Python >= 3.12 found (set LOOPOTEL_PYTHON)" >&2; return 1; }
    echo "phoenix: installing $pin into $venv with $py" >&2
    rm -rf "$venv"
    "$py" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$pin" >&2
  fi
  stop
  mkdir -p "$state"
  PHOENIX_HOST=127.0.0.1 PHOENIX_PORT=$http_port PHOENIX_GRPC_PORT=$grpc_port \
    PHOENIX_SQL_DATABASE_URL=sqlite:///:memory: PHOENIX_WORKING_DIR="$state/work" \
    nohup "$venv/bin/phoenix" serve >"$state/log" 2>&1 &
  echo $! >"$state/pid"
  for _ in $(seq 120); do
    if curl -fsS "http://127.0.0.1:$http_port/v1/projects" >/dev/null 2>&1; then
      echo "LOOPOTEL_PHOENIX_URL=http://127.0.0.1:$http_port"
      echo "LOOPOTEL_PHOENIX_GRPC=http://127.0.0.1:$grpc_port"
      return 0
    fi
    if ! kill -0 "$(cat "$state/pid")" 2>/dev/null; then break; fi
    sleep 0.5
  done
  echo "phoenix: did not start; log follows" >&2
  tail -50 "$state/log" >&2 || true
  stop
  return 1
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
