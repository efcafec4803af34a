#!/usr/bin/env bash
# The embedded backup of docs/OPERATIONS.md, done while `framepress serve` runs: an online copy of the
# SQLite database (`sqlite3 framepress.db ".backup …"`, consistent under WAL), then the objects. A server
# started on the restored directory must know the job, completed, with the same renditions.
#
#   tests/deploy/backup_restore.sh path/to/framepress
set -euo pipefail

binary="$(realpath "${1:?usage: backup_restore.sh path/to/framepress}")"
work="$(mktemp -d "${TMPDIR:-/tmp}/framepress-backup.XXXXXX")"
server=""
fail() {
  echo "backup_restore: FAIL: $*" >&2
  for log in "$work"/*.log; do
    [[ -f $log ]] && { echo "--- $log (last 20 lines) ---" >&2; tail -n 20 "$log" >&2; }
  done
  exit 1
}
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  if [[ -n $server ]]; then kill -KILL "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
for tool in sqlite3 curl ffmpeg python3; do
  command -v "$tool" >/dev/null || fail "$tool is needed (tests/deploy/tools.sh install)"
done
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
url="http://127.0.0.1:$port"

start() {
  "$binary" serve --listen "127.0.0.1:$port" --data-dir "$1" --log-format text >"$work/$2.log" 2>&1 &
  server=$!
  for _ in $(seq 1 200); do
    curl -fs "$url/readyz" >/dev/null 2>&1 && return 0
    kill -0 "$server" 2>/dev/null || fail "framepress exited at start-up ($2)"
    sleep 0.1
  done
  fail "framepress did not become ready ($2)"
}
stop() {
  kill -TERM "$server"
  wait "$server" || fail "framepress exited with status $? on SIGTERM"
  server=""
}
job() { curl -fsS "$url/api/videos/$1" | python3 -c "import json, sys; j = json.load(sys.stdin); print($2)"; }

ffmpeg -nostdin -loglevel error -f lavfi -i "testsrc2=size=640x360:rate=25" -f lavfi -i sine -t 2 \
  -c:v libx264 -preset ultrafast -c:a aac "$work/clip.mp4"

live="$work/live"
start "$live" live
id="$(curl -fsS -F "video=@$work/clip.mp4" "$url/api/videos?renditions=240p,144p&preset=fast" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')"
for _ in $(seq 1 300); do
  [[ $(job "$id" 'j["state"]') == completed ]] && break
  sleep 0.5
done
[[ $(job "$id" 'j["state"]') == completed ]] || fail "the job did not complete"
sizes="$(job "$id" '" ".join(r["name"] + "=" + str(r["size"]) for r in sorted(j["renditions"], key=lambda r: r["name"]))')"

# The backup, while the server runs (and takes another upload meanwhile): the database first, then the
# objects, so that every object the copied database refers to is in the copy.
backup="$work/backup"
mkdir -p "$backup"
curl -fsS -F "video=@$work/clip.mp4" "$url/api/videos?renditions=144p&preset=fast" >/dev/null &
uploading=$!
sqlite3 "$live/framepress.db" ".backup '$backup/framepress.db'"
cp -a "$live/objects" "$backup/objects"
wait "$uploading" || fail "the upload during the backup failed"
[[ $(sqlite3 "$backup/framepress.db" 'PRAGMA integrity_check') == ok ]] || fail "the copied database is damaged"
stop

# Restore into an empty directory and start there.
restored="$work/restored"
mkdir -p "$restored"
cp "$backup/framepress.db" "$restored/framepress.db"
cp -a "$backup/objects" "$restored/objects"
start "$restored" restored
[[ $(job "$id" 'j["state"]') == completed ]] || fail "the restored server does not know the job as completed"
restored_sizes="$(job "$id" '" ".join(r["name"] + "=" + str(r["size"]) for r in sorted(j["renditions"], key=lambda r: r["name"]))')"
[[ $restored_sizes == "$sizes" ]] || fail "renditions after the restore: $restored_sizes (before: $sizes)"
for name in 240p 144p; do
  got="$(curl -fsS -o /dev/null -w '%{size_download}' "$url/api/videos/$id/renditions/$name")"
  [[ " $sizes " == *" $name=$got "* ]] || fail "rendition $name downloads $got bytes after the restore ($sizes)"
done
stop
echo "backup_restore: PASS (job $id restored completed: $sizes)"
