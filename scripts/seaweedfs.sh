#!/usr/bin/env bash
# A real S3 server for framepress's tests: SeaweedFS (Apache-2.0), built from the Go module proxy.
#
#   scripts/seaweedfs.sh install       build `weed` once into the cache (instant when cached)
#   scripts/seaweedfs.sh start DIR     start it on free 127.0.0.1 ports with data in DIR; prints and writes
#                                      DIR/env (S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY, S3_PID, …)
#   scripts/seaweedfs.sh stop DIR      stop it (SIGTERM, then SIGKILL after 5 s)
#   scripts/seaweedfs.sh kill DIR      kill -9, for fault tests
#   scripts/seaweedfs.sh restart DIR   start it again on the same ports with the same data
#   scripts/seaweedfs.sh path          print where the binary is (or will be) cached
#
# Why a wrapper module: SeaweedFS's tags are not semver, so it is pinned by pseudo-version, and its go.mod
# carries `replace` lines, which make `go install module@version` refuse it. A throwaway module that
# requires it and copies those `replace` lines builds it instead. MinIO is AGPL and is not used here.
#
# Environment: FRAMEPRESS_CACHE (default ~/.cache/framepress), SEAWEEDFS_VERSION (the pinned pseudo-version),
# S3_ACCESS_KEY / S3_SECRET_KEY (test credentials; random when unset), S3_OWNER_PID (start: stop the
# server when that process ends, so a test run that crashes or times out leaves no server behind).
set -euo pipefail

readonly MODULE=github.com/seaweedfs/seaweedfs
VERSION=${SEAWEEDFS_VERSION:-v0.0.0-20261109003541-7506e5f91cd6}
CACHE=${FRAMEPRESS_CACHE:-$HOME/.cache/framepress}
BIN_DIR=$CACHE/seaweedfs-$VERSION
BIN=$BIN_DIR/weed

log() { echo "seaweedfs: $*" >&2; }
die() {
  log "$*"
  exit 1
}

usage() {
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# Prints the `replace` directives of the go.mod file $1 as `old[@v]=new[@v]` arguments for
# `go mod edit -replace`, from both the one-line and the block form, skipping comments. A replacement by a
# local directory cannot be followed from outside the author's machine: it is reported and skipped.
replace_args() {
  awk '
    function emit(line,   parts, n, old, new) {
      sub(/\/\/.*/, "", line)
      n = split(line, parts, /[ \t]*=>[ \t]*/)
      if (n != 2) return
      gsub(/^[ \t]+|[ \t]+$/, "", parts[1]); gsub(/^[ \t]+|[ \t]+$/, "", parts[2])
      old = parts[1]; new = parts[2]
      gsub(/[ \t]+/, "@", old); gsub(/[ \t]+/, "@", new)
      if (new ~ /^(\.|\/)/) { print "skip " old "=" new; return }
      print old "=" new
    }
    /^[ \t]*\/\// { next }
    in_block && /^[ \t]*\)/ { in_block = 0; next }
    in_block { emit($0); next }
    /^replace[ \t]*\(/ { in_block = 1; next }
    /^replace[ \t]/ { line = $0; sub(/^replace[ \t]+/, "", line); emit(line) }
  ' "$1"
}

cmd_install() {
  if [[ -x $BIN ]]; then
    return 0
  fi
  command -v go >/dev/null || die "Go is needed to build SeaweedFS (https://go.dev/doc/install)"
  mkdir -p "$BIN_DIR"
  # Several test runs may install at once (ctest -j): one builds, the others wait for it.
  # The lock's descriptor is closed again on every way out, or a server started next would inherit it.
  exec 9>"$BIN_DIR/.lock"
  flock 9
  if [[ -x $BIN ]]; then
    exec 9>&-
    return 0
  fi

  local started work gomod
  started=$(date +%s)
  work=$(mktemp -d "${TMPDIR:-/tmp}/seaweedfs-build.XXXXXX")
  # shellcheck disable=SC2064 # expand $work now: it is local to this function
  trap "rm -rf '$work'" EXIT
  log "building weed $VERSION (once; cached in $BIN_DIR)"

  # `go mod download -json` names the downloaded go.mod, whose `replace` lines the wrapper must copy.
  gomod=$(go mod download -json "$MODULE@$VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  [[ -f $gomod ]] || die "cannot download $MODULE@$VERSION from the Go module proxy"

  (
    cd "$work"
    go mod init framepress.local/seaweedfs-build >/dev/null 2>&1
    # The wrapper must not ask for an older language version than the module it builds.
    local want
    want=$(sed -n 's/^go \([0-9.]*\).*/\1/p' "$gomod" | head -n1)
    [[ -n $want ]] && go mod edit -go="$want"
    go mod edit -require="$MODULE@$VERSION"
    local arg
    while IFS= read -r arg; do
      case $arg in
        skip\ *) log "ignoring local replace ${arg#skip }" ;;
        *) go mod edit -replace="$arg" ;;
      esac
    done < <(replace_args "$gomod")
    # -mod=mod lets the build fill go.mod/go.sum of the wrapper from the proxy; -s -w keep the binary small.
    GOFLAGS=-mod=mod go build -trimpath -ldflags='-s -w' -o "$BIN.tmp" "$MODULE/weed"
  )
  mv -f "$BIN.tmp" "$BIN"
  rm -rf "$work"
  trap - EXIT
  exec 9>&-
  log "built $BIN in $(($(date +%s) - started)) s"
}

# --- running a server -------------------------------------------------------------------------------
# DIR holds everything of one server: data/ (its volumes and filer metadata), s3.json (the identity),
# ports (so that restart comes back on the same ports), weed.log, and env (what clients need).

# Succeeds when something accepts connections on 127.0.0.1:$1.
port_in_use() { (: <"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Prints $1 distinct ports that nothing listens on, below the kernel's ephemeral range (32768+) so that
# outgoing connections cannot take them between the check and the server's bind.
free_ports() {
  local want=$1 tries=0 p
  local -a found=()
  while ((${#found[@]} < want)); do
    ((++tries < 1000)) || die "no free ports found"
    p=$((20000 + RANDOM % 12000))
    [[ " ${found[*]} " == *" $p "* ]] && continue
    port_in_use "$p" && continue
    found+=("$p")
  done
  echo "${found[*]}"
}

# Waits while both $1 (the owner) and $2 (the server) live; kills the server if the owner went first.
watchdog() {
  while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done
  if kill -0 "$2" 2>/dev/null; then kill -KILL "$2"; fi
}

random_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

# The pid recorded in DIR, when that process is still our weed (a recycled pid is not ours to signal).
running_pid() {
  local dir=$1 pid state
  [[ -f $dir/pid ]] || return 1
  pid=$(<"$dir/pid")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "-dir=$dir/data" || return 1
  # A zombie has exited already; only its parent's wait is missing.
  state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$pid/status" 2>/dev/null || true)
  [[ $state != Z ]]
}

wait_exit() {
  local dir=$1 deadline=$(($(date +%s) + $2))
  while running_pid "$dir"; do
    (($(date +%s) < deadline)) || return 1
    sleep 0.1
  done
}

# Succeeds when the S3 gateway answers a signed ListBuckets with 200: then it is up and the identity loaded.
s3_ready() {
  local endpoint=$1 access=$2 secret=$3 code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --aws-sigv4 "aws:amz:us-east-1:s3" \
    --user "$access:$secret" "$endpoint/" 2>/dev/null || true)
  [[ $code == 200 ]]
}

# Starts weed with the ports in DIR/ports and waits until S3 answers. Returns 1 when weed exited during
# start-up (its log is shown), 0 when it is up; gives up on a server that neither answers nor exits.
launch() {
  local dir=$1 access=$2 secret=$3
  local -a ports
  read -r -a ports <"$dir/ports"
  ((${#ports[@]} == 8)) || die "$dir/ports is damaged"
  local s3_port=${ports[6]}
  if port_in_use "$s3_port"; then
    log "port $s3_port (S3) is taken by another process"
    return 1
  fi

  # Unix sockets go in DIR when its path is short enough for sun_path (108 bytes), else weed's /tmp default.
  local -a sockets=()
  if ((${#dir} < 90)); then
    sockets=(-filer.localSocket="$dir/filer.sock" -s3.localSocket="$dir/s3.sock")
    rm -f "$dir/filer.sock" "$dir/s3.sock"
  fi

  # -volume.max: every bucket is a collection that grows several volumes at once, and each test has its
  # own bucket, so the default of 8 volumes runs out. -volume.preStopSeconds=0: SIGTERM would otherwise
  # wait 10 s for clients to move away. -master.electionTimeout=1s: a restarted master is leader again
  # after ~1 s instead of ~17 s. Telemetry is off; nothing listens beyond 127.0.0.1.
  local -a args=(
    server -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$dir/data"
    -master.port="${ports[0]}" -master.port.grpc="${ports[1]}" -master.telemetry=false
    -master.volumeSizeLimitMB=256 -master.electionTimeout=1s
    -volume.port="${ports[2]}" -volume.port.grpc="${ports[3]}" -volume.max=1000 -volume.preStopSeconds=0
    -filer -filer.port="${ports[4]}" -filer.port.grpc="${ports[5]}"
    -s3 -s3.port="$s3_port" -s3.port.grpc="${ports[7]}" -s3.port.iceberg=0 -s3.port.lance=0
    -s3.config="$dir/s3.json"
    "${sockets[@]}"
  )
  local log_start=1
  [[ -f $dir/weed.log ]] && log_start=$(($(stat -c %s "$dir/weed.log") + 1))
  # Detached from the caller's stdio: a test runner waits for every holder of its pipes to close them.
  nohup "$BIN" "${args[@]}" </dev/null >>"$dir/weed.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$dir/pid"
  if [[ -n ${S3_OWNER_PID:-} ]]; then
    # A watchdog for the owner: it ends with the server, or kills the server when the owner is gone.
    watchdog "$S3_OWNER_PID" "$pid" </dev/null >/dev/null 2>&1 &
  fi

  local endpoint=http://127.0.0.1:$s3_port deadline=$(($(date +%s) + 90))
  until s3_ready "$endpoint" "$access" "$secret"; do
    if ! running_pid "$dir"; then
      tail -c "+$log_start" "$dir/weed.log" | tail -n 20 >&2
      log "weed exited during start-up (log: $dir/weed.log)"
      remove_grpc_sockets "$dir"
      return 1
    fi
    if (($(date +%s) >= deadline)); then
      tail -n 30 "$dir/weed.log" >&2
      cmd_stop "$dir"
      die "S3 did not answer on $endpoint within 90 s (log: $dir/weed.log)"
    fi
    sleep 0.2
  done

  (
    umask 077
    cat >"$dir/env" <<ENV
S3_ENDPOINT=$endpoint
S3_ACCESS_KEY=$access
S3_SECRET_KEY=$secret
S3_REGION=us-east-1
S3_PID=$pid
ENV
  )
}

cmd_start() {
  local dir=$1
  cmd_install
  mkdir -p "$dir/data"
  dir=$(cd "$dir" && pwd)
  if running_pid "$dir"; then
    die "a server already runs in $dir (pid $(<"$dir/pid")); stop it first"
  fi

  local access secret
  if [[ -f $dir/s3.json ]]; then
    access=$(sed -n 's/.*"accessKey": *"\([^"]*\)".*/\1/p' "$dir/s3.json")
    secret=$(sed -n 's/.*"secretKey": *"\([^"]*\)".*/\1/p' "$dir/s3.json")
  else
    access=${S3_ACCESS_KEY:-fp$(random_hex 8)}
    secret=${S3_SECRET_KEY:-$(random_hex 20)}
    (
      umask 077
      printf '{"identities":[{"name":"framepress","credentials":[{"accessKey":"%s","secretKey":"%s"}],%s}]}\n' \
        "$access" "$secret" '"actions":["Admin","Read","List","Tagging","Write"]' >"$dir/s3.json"
    )
  fi

  if [[ -f $dir/ports ]]; then
    # restart: the same ports, so that clients need no new settings.
    launch "$dir" "$access" "$secret" || die "cannot start weed again on the ports in $dir/ports"
  else
    # First start. Another process may take a port between our check and weed's bind (parallel test
    # runs start servers at the same moment): then try other ports.
    local try
    for try in 1 2 3; do
      free_ports 8 >"$dir/ports"
      if launch "$dir" "$access" "$secret"; then break; fi
      ((try < 3)) || die "weed failed to start three times (log: $dir/weed.log)"
      log "trying other ports"
    done
  fi
  cat "$dir/env"
}

# weed server leaves its gRPC sockets in /tmp (the path is built in); remove those of our ports.
remove_grpc_sockets() {
  local dir=$1 socket
  local -a ports
  [[ -f $dir/ports ]] || return 0
  read -r -a ports <"$dir/ports"
  for socket in "/tmp/seaweedfs-master-grpc-${ports[1]}.sock" "/tmp/seaweedfs-volume-grpc-${ports[3]}.sock" \
    "/tmp/seaweedfs-filer-grpc-${ports[5]}.sock" "/tmp/seaweedfs-s3-grpc-${ports[7]}.sock"; do
    if [[ -S $socket ]]; then rm -f "$socket"; fi
  done
}

# SIGTERM, then SIGKILL: after its first writes weed server may take 15 s and more to stop, and the data
# is safe either way (it is in the files; only the process goes).
cmd_stop() {
  local dir=$1
  if running_pid "$dir"; then
    kill -TERM "$(<"$dir/pid")" 2>/dev/null || true
    if ! wait_exit "$dir" 5; then
      kill -KILL "$(<"$dir/pid")" 2>/dev/null || true
      wait_exit "$dir" 10 || die "cannot stop pid $(<"$dir/pid")"
    fi
  fi
  remove_grpc_sockets "$dir"
}

cmd_kill() {
  local dir=$1
  if running_pid "$dir"; then
    kill -KILL "$(<"$dir/pid")" 2>/dev/null || true
    wait_exit "$dir" 10 || die "pid $(<"$dir/pid") survived kill -9"
  fi
  remove_grpc_sockets "$dir"
}

main() {
  [[ $# -ge 1 ]] || usage
  local cmd=$1
  shift
  case $cmd in
    install) cmd_install ;;
    path) echo "$BIN" ;;
    start | stop | kill | restart)
      [[ $# -eq 1 && -n $1 ]] || usage
      local dir=$1
      [[ -d $dir || $cmd == start ]] || die "no such directory: $dir"
      [[ $cmd == start ]] || dir=$(cd "$dir" && pwd)
      case $cmd in
        start) cmd_start "$dir" ;;
        stop) cmd_stop "$dir" ;;
        kill) cmd_kill "$dir" ;;
        restart)
          cmd_stop "$dir"
          cmd_start "$dir"
          ;;
      esac
      ;;
    *) usage ;;
  esac
}

main "$@"
