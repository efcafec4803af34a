#!/bin/sh
# Starts SeaweedFS for framepress (deploy/compose.yaml): master, volume server, filer and S3 gateway in
# one `weed server` process, with one S3 identity whose keys come from files (Docker or Kubernetes
# secrets), never from the command line or the image. framepress creates its bucket on first start.
#
# Environment (all optional):
#   S3_ACCESS_KEY_FILE   default /run/secrets/s3_access_key
#   S3_SECRET_KEY_FILE   default /run/secrets/s3_secret_key
#   SEAWEEDFS_DATA       the data directory (a volume), default /data
#   SEAWEEDFS_S3_PORT    default 8333
#   SEAWEEDFS_S3_CONFIG  where the identity file is written, default /tmp/seaweedfs-s3.json (outside the
#                        data volume: it is written again from the secrets at every start)
#   WEED                 the weed binary, default weed (from PATH)
# Extra arguments are passed to `weed server`.
set -eu

access_file=${S3_ACCESS_KEY_FILE:-/run/secrets/s3_access_key}
secret_file=${S3_SECRET_KEY_FILE:-/run/secrets/s3_secret_key}
data=${SEAWEEDFS_DATA:-/data}
s3_port=${SEAWEEDFS_S3_PORT:-8333}
config=${SEAWEEDFS_S3_CONFIG:-/tmp/seaweedfs-s3.json}
weed=${WEED:-weed}

die() {
  echo "seaweedfs/start.sh: $*" >&2
  exit 1
}

# A key file's contents without the trailing newline editors add. Keys are written into JSON as they
# are, so only the characters S3 keys are made of are accepted.
read_key() {
  [ -r "$1" ] || die "cannot read $1"
  key=$(tr -d '\r\n' <"$1")
  [ -n "$key" ] || die "$1 is empty"
  case $key in
    *[!A-Za-z0-9/+=._-]*) die "$1 holds characters other than A-Z a-z 0-9 / + = . _ -" ;;
  esac
  printf '%s' "$key"
}

access=$(read_key "$access_file")
secret=$(read_key "$secret_file")

mkdir -p "$data" "$(dirname "$config")"
(
  umask 077
  printf '{"identities":[{"name":"framepress","credentials":[{"accessKey":"%s","secretKey":"%s"}],%s}]}\n' \
    "$access" "$secret" '"actions":["Admin","Read","List","Tagging","Write"]' >"$config"
)

# -ip=127.0.0.1: the master, volume server and filer talk to each other inside this process; only the
# S3 port is published to the other containers (-s3.ip.bind). -master.volumeSizeLimitMB: every bucket is a
# collection of volumes, smaller volumes fill fewer gigabytes before the next one is made.
exec "$weed" server \
  -dir="$data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
  -master.volumeSizeLimitMB=1024 -volume.max=0 \
  -filer \
  -s3 -s3.port="$s3_port" -s3.ip.bind=0.0.0.0 -s3.config="$config" \
  "$@"
