#!/usr/bin/env bash
# The API contract test: docs/openapi.yaml against a live `framepress serve`.
#
#   tests/contract/run-schemathesis.sh [--binary PATH] [--examples N] [--seed N|random] [--keep]
#
# Installs schemathesis (tests/contract/requirements.txt, pinned) from PyPI into a virtual environment
# cached outside the repository (~/.cache/framepress/venv, or $FRAMEPRESS_VENV; Debian's python3-venv is
# installed first if missing, as root or with sudo), then runs tests/contract/contract.py with it: two servers on free ports with
# temporary data directories (tokens off, tokens on), a few real jobs, schemathesis on every route but
# the streams (a bounded number of examples each; no 5xx, statuses, content types, headers and bodies
# as documented), and the streams' headers and first events checked on their own. Ends with a plain
# "N passed, M failed" line; exits non-zero when anything failed.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="${FRAMEPRESS_VENV:-$HOME/.cache/framepress/venv}"
requirements="$repo/tests/contract/requirements.txt"

python="/usr/bin/python3"
[[ -x "$python" ]] || python="$(command -v python3)"

# The venv is (re)made when it is missing or was made from other requirements (a copy is kept in it).
if [[ ! -x "$venv/bin/schemathesis" ]] || ! cmp -s "$requirements" "$venv/framepress-requirements.txt"; then
  echo "run-schemathesis.sh: installing $(grep -v '^#' "$requirements" | tr '\n' ' ')into $venv" >&2
  if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
    "$(dirname "${BASH_SOURCE[0]}")/../../scripts/apt-install.sh" python3-venv >/dev/null
  fi
  # Only ever remove a virtual environment (a mistyped FRAMEPRESS_VENV must not cost a directory).
  if [[ -e "$venv" && ! -f "$venv/pyvenv.cfg" ]]; then
    echo "run-schemathesis.sh: $venv exists and is not a virtual environment" >&2
    echo "0 passed, 1 failed"
    exit 1
  fi
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$venv/framepress-requirements.txt"
fi

exec "$venv/bin/python" "$repo/tests/contract/contract.py" --openapi "$repo/docs/openapi.yaml" \
  --schemathesis "$venv/bin/schemathesis" "$@"
