# Shared by the scripts that run a test server in the background (sourced, not run):
# start it with `nohup ... &` and `echo $! >"$state/pid"`, then call server_wait; stop it
# with server_stop. Servers bind 127.0.0.1 and are stopped by the PID recorded here.
#
#   server_stop STATE_DIR
#   server_wait NAME STATE_DIR READY_URL TRIES SLEEP ENV_LINE...

# Stops the server whose PID is in STATE_DIR/pid (TERM, then KILL after 10 s).
server_stop() {
  local state=$1 pid
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

# Waits until READY_URL answers, then prints the ENV_LINEs the tests read; if the server
# dies or never answers, prints its log, stops it and fails.
server_wait() {
  local name=$1 state=$2 url=$3 tries=$4 pause=$5
  shift 5
  for _ in $(seq "$tries"); do
    if curl -fsS "$url" >/dev/null 2>&1; then
      printf '%s\n' "$@"
      return 0
    fi
    if ! kill -0 "$(cat "$state/pid")" 2>/dev/null; then break; fi
    sleep "$pause"
  done
  echo "$name: did not start; log follows" >&2
  tail -50 "$state/log" >&2 || true
  server_stop "$state"
  return 1
}
