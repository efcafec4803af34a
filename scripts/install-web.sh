#!/usr/bin/env bash
# Builds the web page (web/dist, served by `framepress serve` at /) and installs what its browser tests
# need. Idempotent: Debian's chromium is installed only when missing, `npm ci` and the build are cheap
# to repeat. npm's cache lives outside the repo ($FRAMEPRESS_NPM_CACHE, default ~/.cache/framepress/npm).
# Never downloads a browser of its own: playwright-core drives /usr/bin/chromium.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
web="$root/web"
cache="${FRAMEPRESS_NPM_CACHE:-${HOME:-/tmp}/.cache/framepress/npm}"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "install-web: node and npm are needed (Node.js 20 or newer)" >&2
  exit 1
fi

if [ ! -x /usr/bin/chromium ]; then
  echo "install-web: installing Debian's chromium" >&2
  "$(dirname "$0")/apt-install.sh" chromium
fi

mkdir -p "$cache"
cd "$web"
# PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: playwright-core downloads nothing, but say so for any later change.
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --cache "$cache" --prefer-offline --no-audit --no-fund
npm run build
