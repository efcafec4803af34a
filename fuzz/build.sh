#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ into their own tree (default: build/fuzz) with Debian's clang,
# AddressSanitizer and UBSan. Installs what is missing first (clang, its runtime libraries with libFuzzer,
# and the headers the sources need), as root or with sudo; instant when everything is there.
#
#   fuzz/build.sh [BUILD_DIR]      (or FUZZ_BUILD_DIR=...)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${1:-${FUZZ_BUILD_DIR:-$repo/build/fuzz}}"

# What the fuzz build needs from Debian 12: clang 16 (Debian's default clang 14 cannot compile some of the
# project's C++20, e.g. a lambda capturing a structured binding in config.cpp) and the runtime that carries
# libFuzzer and the sanitizers (libclang-rt-16-dev), CMake and Ninja, and the headers of the libraries the
# sources include.
packages=(clang-16 libclang-rt-16-dev cmake ninja-build libboost1.81-dev libboost-url1.81-dev
          nlohmann-json3-dev libtomlplusplus-dev)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# libFuzzer itself: the package may be there and still not the file (a half-installed runtime).
if ! ls /usr/lib/llvm-16/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  [[ " ${missing[*]} " == *" libclang-rt-16-dev "* ]] || missing+=(libclang-rt-16-dev)
fi
if ((${#missing[@]})); then
  echo "fuzz/build.sh: installing ${missing[*]}" >&2
  "$repo/scripts/apt-install.sh" "${missing[@]}" >/dev/null
fi

if [[ ! -f "$build_dir/build.ninja" ]]; then
  cmake -S "$repo/fuzz" -B "$build_dir" -G Ninja \
    -DCMAKE_CXX_COMPILER=clang++-16 -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build_dir" -j "${JOBS:-2}"
