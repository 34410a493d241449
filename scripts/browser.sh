#!/usr/bin/env bash
# A real headless browser for the report tests: Debian's `chromium` (installed with apt-get on
# first use) driven by playwright-core (npm, installed once into target/browser; it drives
# the system Chromium and downloads no browser of its own).
#
#   scripts/browser.sh setup   install what is missing; prints the environment the tests
#                              read (LOOPOTEL_CHROMIUM, LOOPOTEL_PLAYWRIGHT_DIR)
#
# No server is started: each test launches Chromium itself and closes it.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
state=$root/target/browser
pin=playwright-core@1.65.1

setup() {
  if ! command -v chromium >/dev/null; then
    echo "browser: installing Debian's chromium" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >&2
  fi
  command -v node >/dev/null || { echo "browser: node is not installed" >&2; return 1; }
  if [ ! -f "$state/node_modules/playwright-core/package.json" ]; then
    echo "browser: installing $pin into $state" >&2
    mkdir -p "$state"
    (cd "$state" && npm install --silent --no-audit --no-fund --prefix "$state" "$pin" >&2)
  fi
  echo "LOOPOTEL_CHROMIUM=$(command -v chromium)"
  echo "LOOPOTEL_PLAYWRIGHT_DIR=$state/node_modules"
}

case "${1:-}" in
  setup) setup ;;
  *) echo "usage: $0 setup" >&2; exit 2 ;;
esac
