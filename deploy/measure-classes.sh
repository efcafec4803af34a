#!/usr/bin/env bash
# Measures, on this machine, how fast one framepress worker encodes each resolution class at a quality
# preset: frames per second, wall time, CPU use and peak memory of the one ffmpeg a worker runs for a
# group of renditions (decode once, split, scale, one x264 per output: the command of
# src/media/ffmpeg_command.cpp). The figures size worker pools (docs/OPERATIONS.md).
#
#   deploy/measure-classes.sh [--preset medium] [--crf 23] [--seconds 10] [--classes sd,hd,uhd] [--threads N]
#
# The sources are synthetic (testsrc2 with a little temporal noise, 30 fps, stereo AAC): real camera
# footage usually encodes somewhat slower. Prints one line per class; needs ffmpeg and GNU time
# (/usr/bin/time) for the memory figure (else "-").
set -euo pipefail

preset=medium
crf=23
seconds=10
classes=sd,hd,uhd
threads=""
while (($#)); do
  case $1 in
    --preset) preset=$2; shift 2 ;;
    --crf) crf=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --classes) classes=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    -h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "measure-classes: unknown argument $1" >&2; exit 2 ;;
  esac
done
command -v ffmpeg >/dev/null || { echo "measure-classes: ffmpeg is needed" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/framepress-measure.XXXXXX")
trap 'rm -rf "$work"' EXIT
fps=30
frames=$((seconds * fps))

# make_source WIDTH HEIGHT → a near-lossless H.264 clip of `seconds` seconds.
make_source() {
  local out="$work/source-$2p.mp4"
  if [[ ! -f $out ]]; then
    ffmpeg -nostdin -loglevel error -f lavfi -i "testsrc2=size=$1x$2:rate=$fps,noise=alls=6:allf=t" \
      -f lavfi -i "sine=frequency=440:sample_rate=48000" -ac 2 -t "$seconds" \
      -c:v libx264 -preset ultrafast -crf 12 -pix_fmt yuv420p -c:a aac -b:a 192k "$out"
  fi
  echo "$out"
}

# A class: its source and its rungs (short sides), the ones framepress groups into one ffmpeg.
declare -A source_of=([sd]=1080 [hd]=1080 [uhd]=2160)
declare -A rungs_of=([sd]="480 360 240 144" [hd]="1080 720" [uhd]="2160 1440")

echo "# $(nproc) cores, load average before: $(cut -d' ' -f1-3 /proc/loadavg); preset $preset, CRF $crf"
printf '%-5s %-7s %-20s %6s %7s %7s %6s %9s\n' class source renditions frames wall_s fps cpu% peak_MiB
IFS=, read -r -a wanted <<<"$classes"
for class in "${wanted[@]}"; do
  [[ -n ${source_of[$class]:-} ]] || { echo "measure-classes: unknown class $class" >&2; exit 2; }
  height=${source_of[$class]}
  source=$(make_source $((height * 16 / 9)) "$height")
  read -r -a rungs <<<"${rungs_of[$class]}"

  args=(-hide_banner -nostdin -loglevel error -y)
  [[ -n $threads ]] && args+=(-threads "$threads")
  args+=(-i "$source")
  graph="[0:V:0]split=${#rungs[@]}"
  for i in "${!rungs[@]}"; do graph+="[s$i]"; done
  for i in "${!rungs[@]}"; do
    h=${rungs[$i]}
    w=$(((h * 16 / 9 + 1) / 2 * 2))
    graph+=";[s$i]scale=$w:$h,setsar=1[v$i]"
  done
  args+=(-filter_complex "$graph")
  for i in "${!rungs[@]}"; do
    args+=(-map "[v$i]" -map "0:a:0?" -c:v libx264 -preset "$preset" -crf "$crf" -pix_fmt yuv420p)
    [[ -n $threads ]] && args+=(-threads "$threads")
    args+=(-c:a aac -b:a 128k -map_metadata -1 -movflags +faststart -f mp4 "$work/out-$class-$i.mp4")
  done

  start=$(date +%s.%N)
  if [[ -x /usr/bin/time ]]; then
    /usr/bin/time -f '%M %P' -o "$work/time" ffmpeg "${args[@]}"
    read -r peak_kib cpu <"$work/time"
    peak=$((peak_kib / 1024))
    cpu=${cpu%\%}
  else
    ffmpeg "${args[@]}"
    peak=- cpu=-
  fi
  end=$(date +%s.%N)
  wall=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
  rate=$(awk -v f="$frames" -v w="$wall" 'BEGIN { printf "%.1f", f / w }')
  list=$(printf '%sp,' "${rungs[@]}")
  printf '%-5s %-7s %-20s %6d %7s %7s %6s %9s\n' "$class" "${height}p" "${list%,}" "$frames" "$wall" "$rate" "$cpu" "$peak"
done
