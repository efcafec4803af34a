#!/usr/bin/env bash
# Makes a corpus of hostile and broken media files in DIR, for tests/e2e/hostile_test.cpp: nothing of it
# is committed, everything is made here with ffmpeg's lavfi sources and printf/head/dd.
#
#   scripts/make-bad-inputs.sh DIR [URL]
#
# URL is where the network-reaching cases point (an HTTP listener of the test's own, which must never be
# contacted); default http://127.0.0.1:9/segment.ts (the discard port).
# Prints the name of every file made, one a line. Also leaves good.mp4 and good-faststart.mp4, the clips
# the broken ones are made from (and that the playlists point at: files on the server's own disk).
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
  echo "usage: $0 DIR [URL]" >&2
  exit 2
fi
dir=$1
url=${2:-http://127.0.0.1:9/segment.ts}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
cd "$dir"

ff() { ffmpeg -nostdin -hide_banner -loglevel error -y "$@"; }
made() { printf '%s\n' "$@"; }
size_of() { stat -c %s "$1"; }
# The offset of the first occurrence of the 4 bytes $2 in file $1.
offset_of() { grep -obUa -m1 -- "$2" "$1" | head -n1 | cut -d: -f1; }
# Writes the 32-bit little-endian number $3 at byte $2 of file $1, in place.
poke_le32() {
  local n=$3
  printf '%b' "\\x$(printf %02x $((n & 255)))\\x$(printf %02x $(((n >> 8) & 255)))\\x$(printf %02x $(((n >> 16) & 255)))\\x$(printf %02x $(((n >> 24) & 255)))" |
    dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# ---- the sources ----------------------------------------------------------------------------------------
# 2 s, 320x180, H.264 + AAC: the index (moov) at the end as ffmpeg writes it, and at the front.
ff -f lavfi -i testsrc2=size=320x180:rate=25 -f lavfi -i sine=frequency=440 -t 2 \
  -c:v libx264 -preset ultrafast -g 25 -c:a aac -shortest good.mp4
ff -i good.mp4 -c copy -movflags +faststart good-faststart.mp4
# Longer, for corruption in the middle: enough frames either side of the damage.
ff -f lavfi -i testsrc2=size=320x180:rate=25 -t 4 -c:v libx264 -preset ultrafast -g 25 -movflags +faststart \
  long.mp4
# Deterministic noise (seeded white noise as unsigned bytes), for the random file and for overwriting.
ff -f lavfi -i anoisesrc=seed=42:sample_rate=48000 -t 22 -ac 1 -f u8 noise.raw

# ---- not media at all -----------------------------------------------------------------------------------
: >empty.mp4
printf 'This is not a video.\nJust some text that happens to be called .mp4.\n' >text.mp4
head -c 1048576 noise.raw >random.mp4
made empty.mp4 text.mp4 random.mp4

# ---- cut short ------------------------------------------------------------------------------------------
for source in good good-faststart; do
  total=$(size_of "$source.mp4")
  for percent in 10 50 90; do
    name=${source/good/truncated}-$percent.mp4
    head -c $((total * percent / 100)) "$source.mp4" >"$name"
    made "$name"
  done
done
# The index missing: cut off just before it (as a recording stopped before its end), and renamed away in a
# whole file (the bytes of a moov, in a 'skip' box; not 'free', where ffmpeg looks for a lost moov).
head -c "$(($(offset_of good.mp4 moov) - 4))" good.mp4 >no-moov-cut.mp4
cp good-faststart.mp4 no-moov-renamed.mp4
printf 'skip' | dd of=no-moov-renamed.mp4 bs=1 seek="$(offset_of no-moov-renamed.mp4 moov)" conv=notrunc status=none
made no-moov-cut.mp4 no-moov-renamed.mp4

# ---- media, but no video --------------------------------------------------------------------------------
ff -f lavfi -i sine=frequency=440:duration=2 -c:a aac -f mp4 audio-only.mp4
ff -f lavfi -i testsrc2=size=320x180 -frames:v 1 -f image2 -update 1 -c:v png still.png
cp still.png still-png.mp4
ff -f lavfi -i testsrc2=size=320x180 -frames:v 1 -c:v libx264 -preset ultrafast still-frame.mp4
# An MP4 without a single frame: zero duration.
ff -f lavfi -i testsrc2=size=320x180 -frames:v 0 -c:v libx264 zero-duration.mp4
made audio-only.mp4 still-png.mp4 still-frame.mp4 zero-duration.mp4

# ---- declared sizes beyond reason -----------------------------------------------------------------------
# A 16x16 raw-video AVI whose headers then claim far more: the AVI main header (avih: width at +32 of its
# data) and the stream's BITMAPINFOHEADER (strf: width at +4, height at +8). 15360x15360 is a size ffmpeg
# still accepts (236 Mpixels, 1.4 GB a frame, against 768 bytes of data); 30000x30000 one it refuses itself.
ff -f lavfi -i testsrc2=size=16x16:rate=5 -t 2 -c:v rawvideo -pix_fmt bgr24 tiny.avi
for side in 15360 30000; do
  name=huge-declared-$side.avi
  cp tiny.avi "$name"
  avih=$(offset_of "$name" avih)
  strf=$(offset_of "$name" strf)
  for at in $((avih + 8 + 32)) $((avih + 8 + 36)) $((strf + 8 + 4)) $((strf + 8 + 8)); do poke_le32 "$name" "$at" "$side"; done
  made "$name"
done
rm -f tiny.avi
# A real 1080p clip: over the pixel limit the test's server is given (--limits-max-pixels 1000000).
ff -f lavfi -i testsrc2=size=1920x1080:rate=5 -t 2 -c:v libx264 -preset ultrafast big-1080p.mp4
made big-1080p.mp4

# ---- damaged in the middle ------------------------------------------------------------------------------
cp long.mp4 corrupted-mid.mp4
dd if=noise.raw of=corrupted-mid.mp4 bs=1 count=16384 seek="$(($(size_of long.mp4) / 2))" conv=notrunc status=none
rm -f long.mp4
made corrupted-mid.mp4

# ---- files that make a demuxer open others (the ffmpeg playlist attack) ---------------------------------
# HLS playlists under a video's name, pointing at a file on the server's disk (absolute, relative with ../,
# and as a file: URL) and at the network.
hls() { printf '#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n%s\n#EXT-X-ENDLIST\n' "$1"; }
hls "$dir/good.mp4" >playlist-local.mp4
hls "../../../../../../../..$dir/good.mp4" >playlist-traversal.mp4
hls "file://$dir/good.mp4" >playlist-file-url.mp4
hls "$url" >playlist-http.mp4
printf 'ffconcat version 1.0\nfile %s\n' "'$dir/good.mp4'" >concat.mp4
# A DASH manifest and an SDP description (which would have ffmpeg listen for RTP) under a video's name.
cat >dash-http.mp4 <<EOF
<?xml version="1.0" encoding="utf-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT2S" minBufferTime="PT1S"
     profiles="urn:mpeg:dash:profile:isoff-on-demand:2011">
  <Period><AdaptationSet mimeType="video/mp4"><Representation id="1" bandwidth="100000" width="320" height="180">
    <BaseURL>$url</BaseURL>
  </Representation></AdaptationSet></Period>
</MPD>
EOF
printf 'v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=video 5004 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n' \
  >sdp.mp4
made playlist-local.mp4 playlist-traversal.mp4 playlist-file-url.mp4 playlist-http.mp4 concat.mp4 dash-http.mp4 sdp.mp4

rm -f noise.raw still.png
