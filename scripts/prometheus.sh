#!/usr/bin/env bash
# A real Prometheus (Debian's `prometheus` package) for the dashboard test: it scrapes the
# test's loopotel metrics endpoint every second.
#
#   scripts/prometheus.sh start   install (once, with apt-get) and start Prometheus on
#                                 127.0.0.1; prints the environment the tests read
#   scripts/prometheus.sh stop    stop it (by PID)
#
# Ports: LOOPOTEL_PROMETHEUS_PORT (its API, default 19090); the scrape target is
# 127.0.0.1:LOOPOTEL_METRICS_PORT (default 19464), where the test serves its metrics.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
state=$root/target/prometheus
port=${LOOPOTEL_PROMETHEUS_PORT:-19090}
target=127.0.0.1:${LOOPOTEL_METRICS_PORT:-19464}

# shellcheck source=scripts/server.sh
source "$root/scripts/server.sh"
stop() { server_stop "$state"; }

start() {
  if ! command -v prometheus >/dev/null; then
    echo "prometheus: installing Debian's package" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus) >&2
    # The package starts a system service; this project runs its own instance.
    (systemctl stop prometheus prometheus-node-exporter 2>/dev/null || true) >&2
  fi
  stop
  rm -rf "$state"
  mkdir -p "$state/data"
  cat >"$state/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: loopotel
    static_configs:
      - targets: ['$target']
YAML
  nohup prometheus --config.file="$state/prometheus.yml" --storage.tsdb.path="$state/data" \
    --web.listen-address="127.0.0.1:$port" --log.level=warn >"$state/log" 2>&1 &
  echo $! >"$state/pid"
  server_wait prometheus "$state" "http://127.0.0.1:$port/-/ready" 120 0.5 \
    "LOOPOTEL_PROMETHEUS_URL=http://127.0.0.1:$port" \
    "LOOPOTEL_METRICS_ADDR=$target"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
