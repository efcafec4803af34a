#!/usr/bin/env bash
# Installs the Debian packages framepress builds and runs with, when any is missing.
# Idempotent: does nothing (and needs no root) when everything is already there.
set -euo pipefail

packages=(
  g++ make cmake ninja-build ccache pkg-config
  ffmpeg
  libboost1.81-dev libboost-url1.81-dev libboost-system1.81-dev
  librdkafka-dev libcurl4-openssl-dev libssl-dev libsqlite3-dev
  nlohmann-json3-dev libspdlog-dev libcli11-dev libtomlplusplus-dev prometheus-cpp-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  curl   # the fault tests list the S3 test bucket with it (SigV4)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
"$(dirname "$0")/apt-install.sh" "${missing[@]}"
