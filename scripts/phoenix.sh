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

# shellcheck source=scripts/server.sh
source "$root/scripts/server.sh"
stop() { server_stop "$state"; }

start() {
  if [ ! -x "$venv/bin/phoenix" ]; then
    # shellcheck source=scripts/python.sh
    source "$root/scripts/python.sh"
    venv_install phoenix "$venv" "$pin"
  fi
  stop
  mkdir -p "$state"
  PHOENIX_HOST=127.0.0.1 PHOENIX_PORT=$http_port PHOENIX_GRPC_PORT=$grpc_port \
    PHOENIX_SQL_DATABASE_URL=sqlite:///:memory: PHOENIX_WORKING_DIR="$state/work" \
    nohup "$venv/bin/phoenix" serve >"$state/log" 2>&1 &
  echo $! >"$state/pid"
  server_wait phoenix "$state" "http://127.0.0.1:$http_port/v1/projects" 120 0.5 \
    "LOOPOTEL_PHOENIX_URL=http://127.0.0.1:$http_port" \
    "LOOPOTEL_PHOENIX_GRPC=http://127.0.0.1:$grpc_port"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
