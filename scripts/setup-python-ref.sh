#!/usr/bin/env bash
# Creates the Python reference venv (loopotel + loopgym from PyPI, pinned) used by the interop
# tests, and prints its python's path. Idempotent: an existing complete venv is reused.
#
#   LOOPOTEL_REF_VENV   where to put the venv (default: <repo>/.venv-ref)
#   LOOPOTEL_PYTHON     a Python >= 3.12 to build it with (default: searched)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${LOOPOTEL_REF_VENV:-$root/.venv-ref}
pins=(loopotel==0.1.0 loopgym==0.1.4)

# shellcheck source=scripts/python.sh
source "$root/scripts/python.sh"

if [ ! -x "$venv/bin/loopotel-validate" ] || ! "$venv/bin/python" -c 'import loopotel, loopgym' >/dev/null 2>&1; then
  venv_install setup-python-ref "$venv" "${pins[@]}"
fi
echo "$venv/bin/python"
