#!/usr/bin/env bash
# The tools of the deploy tests, installed when missing (like scripts/install-deps.sh: as root, or with sudo):
#   Debian's shellcheck and sqlite3 (the backup the docs describe), and PyYAML for python3 (Debian's python3-yaml; without root or sudo, a virtual
#   environment under ~/.cache/framepress/deploy-venv with PyYAML from PyPI).
#
#   tests/deploy/tools.sh install              install what is missing (the ctest fixture deploy.tools)
#   tests/deploy/tools.sh python ARGS…         run ARGS with a python3 that has PyYAML
set -euo pipefail

venv="${FRAMEPRESS_CACHE:-${HOME:-/tmp}/.cache/framepress}/deploy-venv"

has_yaml() { "$1" -c 'import yaml' >/dev/null 2>&1; }

# The first python3 that imports yaml: the one on PATH, Debian's, the venv's.
python_with_yaml() {
  local candidate
  for candidate in "$(command -v python3 || true)" /usr/bin/python3 "$venv/bin/python3"; do
    if [[ -n $candidate && -x $candidate ]] && has_yaml "$candidate"; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}


apt_install() {
  command -v apt-get >/dev/null || return 1
  echo "deploy tools: installing $*" >&2
  "$(dirname "${BASH_SOURCE[0]}")/../../scripts/apt-install.sh" "$@" >/dev/null
}

cmd_install() {
  local missing=()
  command -v shellcheck >/dev/null || missing+=(shellcheck)
  command -v sqlite3 >/dev/null || missing+=(sqlite3)
  python_with_yaml >/dev/null || missing+=(python3-yaml)
  if ((${#missing[@]})); then
    apt_install "${missing[@]}" || echo "deploy tools: cannot install ${missing[*]} with apt" >&2
  fi
  if ! python_with_yaml >/dev/null; then
    echo "deploy tools: PyYAML into $venv (from PyPI)" >&2
    python3 -m venv "$venv" && "$venv/bin/python3" -m pip install -q 'PyYAML>=6,<7'
  fi
  command -v shellcheck >/dev/null || { echo "deploy tools: shellcheck is missing (apt-get install shellcheck)" >&2; exit 1; }
  command -v sqlite3 >/dev/null || { echo "deploy tools: sqlite3 is missing (apt-get install sqlite3)" >&2; exit 1; }
  python_with_yaml >/dev/null || { echo "deploy tools: no python3 with PyYAML" >&2; exit 1; }
  echo "deploy tools: $(shellcheck --version | sed -n 's/^version: //p' | sed 's/^/shellcheck /'), $(python_with_yaml) with PyYAML"
}

case "${1:-}" in
  install) cmd_install ;;
  python)
    shift
    python="$(python_with_yaml)" || { echo "deploy tools: no python3 with PyYAML: run tests/deploy/tools.sh install" >&2; exit 1; }
    exec "$python" "$@"
    ;;
  *)
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
