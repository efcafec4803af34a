#!/usr/bin/env bash
# The runtime stage of deploy/docker/Dockerfile installs the packages deploy/docker/runtime-packages.sh
# names for the built binary. On this Debian system (the build stage's), that list must be the binary's
# libraries, installable packages, and no development package.
#
#   tests/deploy/runtime_packages.sh path/to/framepress SOURCE_DIR
set -euo pipefail

binary="${1:?usage: runtime_packages.sh path/to/framepress SOURCE_DIR}"
source_dir="${2:?usage: runtime_packages.sh path/to/framepress SOURCE_DIR}"
command -v dpkg-query >/dev/null || { echo "runtime_packages: not a Debian system: skipped"; exit 77; }

packages="$("$source_dir/deploy/docker/runtime-packages.sh" "$binary")"
echo "runtime packages: $(echo "$packages" | tr '\n' ' ')"
failed=0
for expected in libc6 libstdc++6 libcurl4 libsqlite3-0 libssl3; do
  grep -qx "$expected" <<<"$packages" || { echo "runtime_packages: $expected is missing"; failed=1; }
done
while read -r package; do
  case $package in
    *-dev) echo "runtime_packages: $package is a development package"; failed=1 ;;
  esac
  apt-cache show "$package" >/dev/null 2>&1 || { echo "runtime_packages: apt does not know $package"; failed=1; }
done <<<"$packages"
exit "$failed"
