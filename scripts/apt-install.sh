#!/usr/bin/env bash
# Installs Debian packages: `scripts/apt-install.sh PACKAGE...` (apt-get update, then install), as root or
# through sudo. Every install step of the project goes through here, because ctest runs tests in parallel
# and several of them install what they need on first use (clang for the fuzzers, shellcheck, python3-venv):
# two apt-get runs at once fail on dpkg's lock. Ours wait for each other on a lock file of their own, and
# for anyone else's apt (unattended upgrades) for up to 10 minutes.
set -euo pipefail
(($# > 0)) || { echo "usage: $0 PACKAGE..." >&2; exit 2; }

as_root=()
[[ "$(id -u)" -eq 0 ]] || as_root=(sudo)
"${as_root[@]}" flock --timeout 900 /var/lock/framepress-apt.lock env DEBIAN_FRONTEND=noninteractive bash -c '
  apt-get -o DPkg::Lock::Timeout=600 -qq update
  apt-get -o DPkg::Lock::Timeout=600 -qq install -y --no-install-recommends "$@"' apt-install "$@"
