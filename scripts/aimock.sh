#!/usr/bin/env bash
# aimock (npm @copilotkit/aimock), an OpenAI-compatible server whose request journal keeps
# request headers: the loopotel-openai tests read the traceparent each attempt carried.
#
#   scripts/aimock.sh start   install (once, into target/aimock) and start aimock on
#                             127.0.0.1 with tests/fixtures/aimock.json;
#                             prints the environment the tests read
#   scripts/aimock.sh stop    stop it (by PID)
#
# Port: LOOPOTEL_AIMOCK_PORT (default 14010).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
state=$root/target/aimock
port=${LOOPOTEL_AIMOCK_PORT:-14010}
pin=@copilotkit/aimock@1.43.0
cli=$state/node_modules/@copilotkit/aimock/dist/cli.js

# shellcheck source=scripts/server.sh
source "$root/scripts/server.sh"
stop() { server_stop "$state"; }

start() {
  command -v node >/dev/null || { echo "aimock: node is not installed" >&2; return 1; }
  mkdir -p "$state"
  if [ ! -f "$cli" ]; then
    echo "aimock: installing $pin into $state" >&2
    (cd "$state" && npm install --silent --no-audit --no-fund --prefix "$state" "$pin" >&2)
  fi
  stop
  nohup node "$cli" -h 127.0.0.1 -p "$port" --log-level warn \
    -f "$root/tests/fixtures/aimock.json" >"$state/log" 2>&1 &
  echo $! >"$state/pid"
  server_wait aimock "$state" "http://127.0.0.1:$port/__aimock/journal" 80 0.25 \
    "LOOPOTEL_AIMOCK_URL=http://127.0.0.1:$port"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
