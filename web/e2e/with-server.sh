#!/usr/bin/env bash
# Runs e2e/run.mjs against a framepress server of its own: a fresh data directory, a free port, a clip
# made with ffmpeg and a text file, the built page (web/dist). For ctest or by hand:
#   web/e2e/with-server.sh build/src/app/framepress
# Screenshots go to FRAMEPRESS_SCREENSHOTS (default build/screenshots). Exits with run.mjs's status.
set -euo pipefail

binary="$(realpath "${1:?usage: with-server.sh path/to/framepress}")"
web="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d)"
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

[ -f "$web/dist/index.html" ] || { echo "with-server: build the page first (scripts/install-web.sh)" >&2; exit 1; }
port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"

ffmpeg -nostdin -loglevel error -f lavfi -i testsrc2=size=640x360:rate=25 -f lavfi -i sine -t 3 \
  -c:v libx264 -preset ultrafast -c:a aac "$work/clip.mp4"
printf 'This is a text file, not a video.\n' > "$work/notes.txt"

"$binary" serve --listen "127.0.0.1:$port" --data-dir "$work/data" --encoder-preset ultrafast \
  --web-root "$web/dist" --log-format text > "$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/readyz" > /dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { cat "$work/server.log" >&2; echo "with-server: framepress exited" >&2; exit 1; }
  sleep 0.1
done

status=0
FRAMEPRESS_URL="http://127.0.0.1:$port" FRAMEPRESS_CLIP="$work/clip.mp4" FRAMEPRESS_TEXT_FILE="$work/notes.txt" \
  node "$web/e2e/run.mjs" || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- framepress log (last 40 lines) ---" >&2
  tail -n 40 "$work/server.log" >&2
fi
exit "$status"
