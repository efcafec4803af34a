#!/usr/bin/env bash
# Runs shellcheck on every shell script under the given directories of the source tree: files ending in .sh
# and files whose first line is a sh or bash shebang (build trees and node_modules skipped). Exits 1
# when shellcheck reports anything, naming each file.
#
#   tests/deploy/shellcheck.sh SOURCE_DIR DIR…
#
# SC2317 ("command appears to be unreachable") is left out: shellcheck 0.9.0 (Debian 12) reports every
# function that only a trap calls (koalaman/shellcheck#2660). Everything else counts, at every severity.
set -euo pipefail

source_dir="$(cd "${1:?usage: shellcheck.sh SOURCE_DIR DIR…}" && pwd)"
shift
(($#)) || { echo "shellcheck.sh: name at least one directory" >&2; exit 2; }
command -v shellcheck >/dev/null || { echo "shellcheck.sh: shellcheck is missing (tests/deploy/tools.sh install)" >&2; exit 1; }

scripts=()
for dir in "$@"; do
  [[ -d $source_dir/$dir ]] || continue
  while IFS= read -r -d '' file; do
    if [[ $file == *.sh ]] || head -n1 "$file" 2>/dev/null | grep -qE '^#!.*[/ ](ba)?sh([[:space:]]|$)'; then
      scripts+=("$file")
    fi
  done < <(find "$source_dir/$dir" \( -name node_modules -o -name 'build*' -o -name .git \) -prune -o -type f -print0)
done
((${#scripts[@]})) || { echo "shellcheck.sh: no scripts under $*"; exit 0; }

failed=0
for script in "${scripts[@]}"; do
  if shellcheck --exclude=SC2317 --external-sources "$script"; then
    echo "ok      ${script#"$source_dir"/}"
  else
    echo "FAILED  ${script#"$source_dir"/}"
    failed=$((failed + 1))
  fi
done
echo "shellcheck: ${#scripts[@]} script(s), $failed with findings"
((failed == 0))
