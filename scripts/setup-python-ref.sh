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

is_312() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }

find_python() {
  local c
  for c in "${LOOPOTEL_PYTHON:-}" python3.13 python3.12 python3; do
    [ -n "$c" ] && command -v "$c" >/dev/null 2>&1 && is_312 "$(command -v "$c")" && { command -v "$c"; return; }
  done
  # pyenv installs that are not the selected version (the bare shim refuses to run them).
  if command -v pyenv >/dev/null 2>&1; then
    for c in "$(pyenv root)"/versions/3.1[2-9]*/bin/python3; do
      [ -x "$c" ] && is_312 "$c" && { echo "$c"; return; }
    done
  fi
  return 1
}

if [ ! -x "$venv/bin/loopotel-validate" ] || ! "$venv/bin/python" -c 'import loopotel, loopgym' >/dev/null 2>&1; then
  py=$(find_python) || { echo "setup-python-ref: no Python >= 3.12 found (set LOOPOTEL_PYTHON)" >&2; exit 1; }
  echo "setup-python-ref: creating $venv with $py" >&2
  rm -rf "$venv"
  "$py" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${pins[@]}" >&2
fi
echo "$venv/bin/python"
