#!/usr/bin/env bash
# Runs framepress's libFuzzer targets, each for a while, and tells which found something.
#
#   fuzz/run.sh [--seconds N] [--target NAME]... [--build-dir DIR]
#
# Builds them first if needed (fuzz/build.sh). Each target starts from its committed seeds
# (fuzz/corpus/<target>, replayed first, so every past finding kept there is a regression test) plus
# what earlier runs found (DIR/corpus/<target>, never the committed folder), for N seconds (default 20,
# or $FUZZ_SECONDS). A crash, a sanitizer report, a leak, a time-out or an out-of-memory is a failure; the
# input is kept in DIR/findings/<target>/ and replayed with `DIR/<target> FILE`. Logs: DIR/logs/.
# Ends with a plain line "N passed, M failed"; exits non-zero when any failed.
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${FUZZ_SECONDS:-20}"
build_dir="${FUZZ_BUILD_DIR:-$repo/build/fuzz}"
all_targets=(multipart progress config router)
targets=()
while (($#)); do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --seconds=*) seconds="${1#*=}"; shift ;;
    --target) targets+=("${2#fuzz_}"); shift 2 ;;
    --target=*) t="${1#*=}"; targets+=("${t#fuzz_}"); shift ;;
    --build-dir) build_dir="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "fuzz/run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
((${#targets[@]})) || targets=("${all_targets[@]}")
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "fuzz/run.sh: --seconds wants a whole number" >&2; exit 2; }

mkdir -p "$build_dir/logs"
if ! "$repo/fuzz/build.sh" "$build_dir" >"$build_dir/logs/build.log" 2>&1; then
  cat "$build_dir/logs/build.log" >&2
  echo "fuzz/run.sh: the fuzz targets did not build"
  echo "0 passed, ${#targets[@]} failed"
  exit 1
fi

passed=0
failed=0
for name in "${targets[@]}"; do
  bin="$build_dir/fuzz_$name"
  seeds="$repo/fuzz/corpus/$name"
  work="$build_dir/corpus/$name"
  findings="$build_dir/findings/$name"
  log="$build_dir/logs/$name.log"
  mkdir -p "$work" "$findings" "$(dirname "$log")"
  if [[ ! -x "$bin" || ! -d "$seeds" ]]; then
    echo "FAIL fuzz_$name: no such target or no seeds ($bin, $seeds)"
    failed=$((failed + 1))
    continue
  fi
  options=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=16384
           -artifact_prefix="$findings/" -print_final_stats=1)
  [[ -f "$repo/fuzz/dict/$name.dict" ]] && options+=(-dict="$repo/fuzz/dict/$name.dict")
  # New inputs go to the first folder (the work corpus); the committed seeds are only read.
  ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}" \
  UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
    "$bin" "${options[@]}" "$work" "$seeds" >"$log" 2>&1
  rc=$?
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+')
  if ((rc == 0)); then
    echo "PASS fuzz_$name: ${runs:-?} inputs in ${seconds}s, coverage ${cov:-?} edges"
    passed=$((passed + 1))
  else
    echo "FAIL fuzz_$name (exit $rc): log $log"
    grep -E 'ERROR: |runtime error:|fuzz property failed|SUMMARY:|Test unit written to|resolve\(\) let' "$log" | head -8 | sed 's/^/    /'
    failed=$((failed + 1))
  fi
done
echo "$passed passed, $failed failed"
((failed == 0))
