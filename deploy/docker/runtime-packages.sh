#!/usr/bin/env bash
# Prints the Debian packages that hold the shared libraries a binary links directly (its DT_NEEDED
# entries), one per line, sorted: what a runtime image must install to run it. The packages' own
# dependencies bring the rest. Run on the Debian system that built the binary (the Dockerfile's build
# stage), where every library it links is installed.
#
#   deploy/docker/runtime-packages.sh build/src/app/framepress
set -euo pipefail

binary="${1:?usage: runtime-packages.sh BINARY}"
[[ -f $binary ]] || { echo "runtime-packages: no such file: $binary" >&2; exit 1; }
command -v objdump >/dev/null || { echo "runtime-packages: objdump (binutils) is needed" >&2; exit 1; }

# NEEDED name → the path the dynamic linker resolves it to → the package that owns that path.
declare -A resolved=()
while read -r name _ path _; do
  [[ -n ${path:-} && $path == /* ]] && resolved[$name]=$path
done < <(ldd "$binary")

missing=0
packages=()
while read -r name; do
  path="${resolved[$name]:-}"
  if [[ -z $path ]]; then
    echo "runtime-packages: $name is not found by the dynamic linker" >&2
    missing=1
    continue
  fi
  # dpkg knows a library by the path its package installed, which may differ from the resolved one by
  # the /lib → /usr/lib merge: try both.
  owner=""
  for candidate in "$path" "$(realpath "$path")" "/usr$path" "${path#/usr}"; do
    owner="$(dpkg-query -S "$candidate" 2>/dev/null | head -n1 | cut -d: -f1)" || owner=""
    if [[ -n $owner ]]; then break; fi
  done
  if [[ -z $owner ]]; then
    echo "runtime-packages: no package owns $path ($name)" >&2
    missing=1
    continue
  fi
  packages+=("$owner")
done < <(objdump -p "$binary" | awk '$1 == "NEEDED" { print $2 }')

((missing == 0)) || exit 1
printf '%s\n' "${packages[@]}" | sort -u
