# Sourced by the scripts that build Python venvs: find_python prints a Python >= 3.12.
# LOOPOTEL_PYTHON chooses one; else python3.13, python3.12, python3, then pyenv installs
# (the bare pyenv shim refuses to run a version that is not selected).

is_312() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }

find_python() {
  local c
  for c in "${LOOPOTEL_PYTHON:-}" python3.13 python3.12 python3; do
    [ -n "$c" ] && command -v "$c" >/dev/null 2>&1 && is_312 "$(command -v "$c")" && { command -v "$c"; return 0; }
  done
  if command -v pyenv >/dev/null 2>&1; then
    for c in "$(pyenv root)"/versions/3.1[2-9]*/bin/python3; do
      [ -x "$c" ] && is_312 "$c" && { echo "$c"; return 0; }
    done
  fi
  return 1
}

# venv_install NAME VENV PIN...: a fresh venv at VENV with the pinned packages (messages
# name NAME). Fails with a clear message when no Python >= 3.12 exists.
venv_install() {
  local name=$1 venv=$2 py
  shift 2
  py=$(find_python) || { echo "$name: no Python >= 3.12 found (set LOOPOTEL_PYTHON)" >&2; return 1; }
  echo "$name: installing $* into $venv with $py" >&2
  rm -rf "$venv"
  "$py" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@" >&2
}
