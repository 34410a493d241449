#!/usr/bin/env bash
# aimock (npm @copilotkit/aimock), an OpenAI-compatible server whose request journal keeps
# request headers: the loopotel-openai tests read the traceparent each attempt carried.
#
#   scripts/aimock.sh start   install (once, into target/aimock) and start aimock on
#                             127.0.0.1 with loopotel-openai/tests/fixtures/aimock.json;
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
  command -v node >/dev/null || { echo "aimock: node is not installed" >&2; return 1; }
  mkdir -p "$state"
  if [ ! -f "$cli" ]; then
    echo "aimock: installing $pin into $state" >&2
    (cd "$state" && npm install --silent --no-audit --no-fund --prefix "$state" "$pin" >&2)
  fi
  stop
  nohup node "$cli" -h 127.0.0.1 -p "$port" --log-level warn \
    -f "$root/loopotel-openai/tests/fixtures/aimock.json" >"$state/log" 2>&1 &
  echo $! >"$state/pid"
  for _ in $(seq 80); do
    if curl -fsS "http://127.0.0.1:$port/__aimock/journal" >/dev/null 2>&1; then
      echo "LOOPOTEL_AIMOCK_URL=http://127.0.0.1:$port"
      return 0
    fi
    if ! kill -0 "$(cat "$state/pid")" 2>/dev/null; then break; fi
    sleep 0.25
  done
  echo "aimock: did not start; log follows" >&2
  tail -50 "$state/log" >&2 || true
  stop
  return 1
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
