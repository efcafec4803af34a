#!/usr/bin/env bash
# The graceful shutdown the deployments rely on (Docker's stop, Kubernetes' terminationGracePeriodSeconds),
# on a bare process: `framepress serve` is encoding when it gets SIGTERM; it must exit with status 0
# within a few seconds, leave no ffmpeg behind, and hand its tasks back, so that started again on the same
# data directory it completes the job, each rendition stored and reported once, as attempt 1 (a hand-back
# is not a failed attempt).
#
# In a container framepress is PID 1, which gets no signal it has not asked for: where `unshare --pid`
# works (root), the first run is PID 1 of its own PID namespace, as in a container.
#
#   tests/deploy/sigterm_handback.sh path/to/framepress
set -euo pipefail

binary="$(realpath "${1:?usage: sigterm_handback.sh path/to/framepress}")"
work="$(mktemp -d "${TMPDIR:-/tmp}/framepress-sigterm.XXXXXX")"
server=""   # the process to signal: framepress
launcher="" # the process to wait for: framepress, or the unshare that runs it as PID 1 (same status)
fail() {
  echo "sigterm_handback: FAIL: $*" >&2
  for log in "$work"/run-*.log; do
    [[ -f $log ]] && { echo "--- $log (last 30 lines) ---" >&2; tail -n 30 "$log" >&2; }
  done
  exit 1
}
stop_server() {
  if [[ -n $server ]] && kill -0 "$server" 2>/dev/null; then
    kill -KILL "$server" 2>/dev/null || true
  fi
  if [[ -n $launcher ]]; then wait "$launcher" 2>/dev/null || true; fi
  server=""
  launcher=""
}
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  stop_server
  rm -rf "$work"
}
trap cleanup EXIT

for tool in curl ffmpeg python3; do
  command -v "$tool" >/dev/null || fail "$tool is needed"
done
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
url="http://127.0.0.1:$port"
data="$work/data"

# 20 s of 720p: the encode of 720p and 480p at the default preset takes tens of seconds here.
ffmpeg -nostdin -loglevel error -f lavfi -i "testsrc2=size=1280x720:rate=30" -f lavfi -i "sine=frequency=440" \
  -t 20 -c:v libx264 -preset ultrafast -crf 20 -c:a aac "$work/clip.mp4"

as_pid1=0
if unshare --pid --fork --kill-child true 2>/dev/null; then as_pid1=1; fi

# start N [PID1]: framepress serve on the data directory; waits until it is ready. Sets $server to the
# pid of framepress itself (inside unshare: the child of unshare) and $launcher to our child.
start() {
  local run=$1 pid1=${2:-0} i
  local -a prefix=()
  ((pid1)) && prefix=(unshare --pid --fork --kill-child)
  "${prefix[@]}" "$binary" serve --listen "127.0.0.1:$port" --data-dir "$data" --workers 1 --log-format text \
    >"$work/run-$run.log" 2>&1 &
  launcher=$!
  server=$launcher
  for ((i = 0; i < 300; i++)); do
    if ((pid1)) && [[ $server == "$launcher" ]]; then
      server="$(pgrep -P "$launcher" || echo "$launcher")"
    fi
    curl -fs "$url/readyz" >/dev/null 2>&1 && return 0
    kill -0 "$launcher" 2>/dev/null || fail "framepress exited at start-up (run $run)"
    sleep 0.1
  done
  fail "framepress did not become ready (run $run)"
}

# job_field ID EXPRESSION: evaluates a Python expression over the job's JSON (j).
job_field() {
  curl -fsS "$url/api/videos/$1" | python3 -c "import json, sys; j = json.load(sys.stdin); print($2)"
}

# ---- run 1: SIGTERM while encoding ----
start 1 "$as_pid1"
if ((as_pid1)); then
  grep -q '^NSpid:.*[[:space:]]1$' "/proc/$server/status" || fail "framepress is not PID 1 of its namespace"
fi
id="$(curl -fsS -F "video=@$work/clip.mp4" "$url/api/videos?renditions=720p,480p" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')"

encoding=0
for ((i = 0; i < 600; i++)); do
  state="$(job_field "$id" '" ".join(r["state"] + ":" + str(r["percent"]) for r in j["renditions"])')"
  if [[ $state == *encoding:* ]] && [[ $(job_field "$id" 'min(r["percent"] for r in j["renditions"])') != 0* ]]; then
    encoding=1
    break
  fi
  sleep 0.1
done
((encoding)) || fail "the job never started encoding: $state"
pgrep -f "$data" >/dev/null || fail "no ffmpeg is running on $data"
[[ $(job_field "$id" 'j["state"]') == processing ]] || fail "the job is not processing when SIGTERM is sent"

started=$(date +%s%N)
kill -TERM "$server"
status=0
for ((i = 0; i < 150; i++)); do
  kill -0 "$server" 2>/dev/null || break
  sleep 0.1
done
kill -0 "$server" 2>/dev/null && fail "framepress still runs 15 s after SIGTERM"
# Under unshare, framepress is unshare's child: unshare exits with framepress's status.
wait "$launcher" || status=$?
server=""
launcher=""
elapsed_ms=$((($(date +%s%N) - started) / 1000000))
((status == 0)) || fail "framepress exited with status $status after SIGTERM"
grep -q "handed back" "$work/run-1.log" || fail "the log does not say the tasks were handed back"
sleep 0.5
if pgrep -f "$data" >/dev/null; then
  fail "an encoder outlived framepress: $(pgrep -af "$data")"
fi
pid1_note=$( ((as_pid1)) && echo "as PID 1 of its namespace" || echo "as a plain process")
echo "sigterm_handback: run 1 ($pid1_note) exited 0 ${elapsed_ms} ms after SIGTERM, encoders gone"

# ---- run 2: same data directory; the handed-back tasks run again and the job completes ----
start 2
for ((i = 0; i < 900; i++)); do
  state="$(job_field "$id" 'j["state"]')"
  [[ $state == processing || $state == queued ]] || break
  sleep 1
done
[[ $state == completed ]] || fail "the job ended $state after the restart"
summary="$(job_field "$id" '" ".join(r["name"] + ":" + r["state"] + ":" + str(r["attempt"]) for r in sorted(j["renditions"], key=lambda r: r["name"]))')"
[[ $summary == "480p:done:1 720p:done:1" ]] ||
  fail "renditions after the restart: $summary (expected both done at attempt 1)"

# Replay the whole log: each rendition reported once, nothing failed or retried.
curl -fsS -H 'Last-Event-ID: 0' "$url/api/videos/$id/events" >"$work/events" || true
done_events=$(grep -c '^event: rendition$' "$work/events" || true)
[[ $done_events == 2 ]] || fail "$done_events rendition events in the log (expected 2)"
if grep -qE '^event: (retrying|rendition_failed|failed)$' "$work/events"; then
  fail "the hand-back was reported as a failure: $(grep '^event:' "$work/events" | sort | uniq -c | tr '\n' ' ')"
fi
for name in 720p 480p; do
  size=$(job_field "$id" "next(r['size'] for r in j['renditions'] if r['name'] == '$name')")
  got=$(curl -fsS -o /dev/null -w '%{size_download}' "$url/api/videos/$id/renditions/$name")
  [[ $size -gt 0 && $got == "$size" ]] || fail "rendition $name: stored $size bytes, downloaded $got"
done
kill -TERM "$server"
wait "$launcher" || fail "framepress exited with status $? after SIGTERM (run 2)"
server=""
launcher=""
echo "sigterm_handback: PASS (job $id completed after the restart: $summary)"
