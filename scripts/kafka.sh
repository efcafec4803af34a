#!/usr/bin/env bash
# A single-node Apache Kafka (KRaft: one process is broker and controller) for development and tests.
#
#   scripts/kafka.sh install        fetch Kafka's jars with Maven into the cache (quick when cached) and
#                                   install Debian's kcat and librdkafka-dev when missing
#   scripts/kafka.sh start DIR      configure (first time), format and start a broker whose files live in
#                                   DIR; prints KAFKA_BOOTSTRAP=127.0.0.1:<port> and writes it to DIR/env
#   scripts/kafka.sh stop DIR       SIGTERM, then SIGKILL after a grace period
#   scripts/kafka.sh kill DIR       kill -9 (a crash, for fault tests); the data stays
#   scripts/kafka.sh restart DIR    kill -9 if running, then start again on the same data and ports
#   scripts/kafka.sh status DIR     exit 0 and print DIR/env when the broker answers
#
# Environment:
#   KAFKA_VERSION       3.9.x patch to use (3.9 and not 4.x: Kafka 4.0 removed old protocol versions,
#                       KIP-896, and Debian 12's librdkafka 2.0.2 then turns features off, librdkafka #4948)
#   FRAMEPRESS_CACHE    cache root, default ~/.cache/framepress; jars go to kafka-<version>/libs
#   KAFKA_HEAP_OPTS     JVM heap flags, default -Xms256m -Xmx512m
#   KAFKA_OWNER_PID     with `start`: stop the broker once this process has exited (a test harness that
#                       dies without stopping its broker does not leave it running)
#   KAFKA_START_TIMEOUT seconds to wait for the broker to answer, default 90
set -euo pipefail

KAFKA_VERSION="${KAFKA_VERSION:-3.9.2}"
SCALA_VERSION=2.13
# Kafka's jars log through SLF4J but bring no binding; the distribution ships these two.
SLF4J_RELOAD4J_VERSION=1.7.36
CACHE_ROOT="${FRAMEPRESS_CACHE:-$HOME/.cache/framepress}"
KAFKA_HOME="$CACHE_ROOT/kafka-$KAFKA_VERSION"
LIBS="$KAFKA_HOME/libs"
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
STOP_GRACE=30

die() {
  echo "kafka.sh: $*" >&2
  exit 1
}

log() {
  echo "kafka.sh: $*" >&2
}

# ---- install ------------------------------------------------------------------------------------

install_debian_packages() {
  local missing=()
  command -v kcat >/dev/null || missing+=(kcat)
  # The header rather than dpkg -s: dpkg's status may be mid-rewrite while someone else installs.
  [[ -f /usr/include/librdkafka/rdkafka.h ]] || missing+=(librdkafka-dev)
  command -v java >/dev/null || missing+=(default-jre-headless)
  command -v mvn >/dev/null || missing+=(maven)
  if ((${#missing[@]} > 0)); then
    log "installing ${missing[*]}"
    "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh" "${missing[@]}" >/dev/null
  fi
}

install_kafka_jars() {
  [[ -f "$LIBS/.complete" ]] && return 0
  mkdir -p "$KAFKA_HOME"
  # Several test processes may install at once: one fetches, the others wait for it.
  exec 9>"$KAFKA_HOME/.install.lock"
  flock 9
  if [[ -f "$LIBS/.complete" ]]; then
    exec 9>&-
    return 0
  fi
  log "fetching org.apache.kafka:kafka_$SCALA_VERSION:$KAFKA_VERSION and its dependencies with Maven"
  cat >"$KAFKA_HOME/pom.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Throwaway pom written by framepress scripts/kafka.sh: only lists the jars a broker needs. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.framepress</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>$KAFKA_VERSION</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_$SCALA_VERSION</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-reload4j</artifactId>
      <version>$SLF4J_RELOAD4J_VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF
  local staging="$KAFKA_HOME/libs.partial"
  rm -rf "$staging"
  if ! mvn -B -q -f "$KAFKA_HOME/pom.xml" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$staging" >"$KAFKA_HOME/mvn.log" 2>&1; then
    tail -n 30 "$KAFKA_HOME/mvn.log" >&2
    die "Maven could not fetch Kafka $KAFKA_VERSION (log: $KAFKA_HOME/mvn.log)"
  fi
  compgen -G "$staging/kafka_$SCALA_VERSION-$KAFKA_VERSION.jar" >/dev/null \
    || die "Maven finished but kafka_$SCALA_VERSION-$KAFKA_VERSION.jar is missing from $staging"
  rm -rf "$LIBS"
  mv "$staging" "$LIBS"
  touch "$LIBS/.complete"
  exec 9>&-
  log "Kafka $KAFKA_VERSION is in $LIBS"
}

cmd_install() {
  install_debian_packages
  install_kafka_jars
}

# ---- broker lifecycle ---------------------------------------------------------------------------

require_installed() {
  [[ -f "$LIBS/.complete" ]] || die "Kafka $KAFKA_VERSION is not installed: run scripts/kafka.sh install"
  command -v java >/dev/null || die "java is missing: run scripts/kafka.sh install"
  command -v kcat >/dev/null || die "kcat is missing: run scripts/kafka.sh install"
}

port_in_use() {
  # A connection that succeeds means someone listens there.
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# A port nobody listens on, below Linux's ephemeral range so outgoing connections do not take it
# between now and the broker's bind.
free_port() {
  local exclude="${1:-0}" port tries
  for ((tries = 0; tries < 200; tries++)); do
    port=$((20000 + RANDOM % 12000))
    [[ $port -eq $exclude ]] && continue
    port_in_use "$port" || {
      echo "$port"
      return 0
    }
  done
  die "found no free port"
}

read_env() {
  local dir="$1"
  KAFKA_PID=""
  KAFKA_BOOTSTRAP=""
  [[ -f "$dir/env" ]] || return 1
  # shellcheck source=/dev/null
  source "$dir/env"
}

pid_alive() {
  [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null
}

broker_answers() {
  kcat -b "$1" -L -m 3 >/dev/null 2>&1
}

write_config() {
  local dir="$1" port="$2" cport="$3"
  cat >"$dir/server.properties" <<EOF
# Written by framepress scripts/kafka.sh: one KRaft process that is broker and controller.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
num.partitions=1
default.replication.factor=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
# Fewer than the default 50: the first consumer group creates them all, which is slow on 2 cores.
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
min.insync.replicas=1
# A joining consumer is assigned at once instead of after 3 s (tests start and kill many).
group.initial.rebalance.delay.ms=0
# Tests use consumer session timeouts of about 6 s; the broker's floor must allow them.
group.min.session.timeout.ms=1000
# After kill -9 the restarted broker may register only once its previous incarnation timed out (9 s by
# default): fault tests restart it often.
broker.session.timeout.ms=2000
broker.heartbeat.interval.ms=500
log.retention.hours=168
EOF
  cat >"$dir/log4j.properties" <<EOF
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$dir/server.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
log4j.logger.state.change.logger=WARN
EOF
}

write_env() {
  local dir="$1" pid="$2" port="$3" cport="$4"
  cat >"$dir/env.tmp" <<EOF
KAFKA_BOOTSTRAP=127.0.0.1:$port
KAFKA_PID=$pid
KAFKA_PORT=$port
KAFKA_CONTROLLER_PORT=$cport
EOF
  mv "$dir/env.tmp" "$dir/env"
}

start_watchdog() {
  local dir="$1" owner="$2" self
  self="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
  (
    while kill -0 "$owner" 2>/dev/null; do sleep 2; done
    "$self" stop "$dir"
  ) </dev/null >/dev/null 2>&1 &
  disown
}

cmd_start() {
  local dir="${1:?usage: kafka.sh start DIR}"
  require_installed
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  if read_env "$dir" && pid_alive "$KAFKA_PID" && broker_answers "$KAFKA_BOOTSTRAP"; then
    echo "KAFKA_BOOTSTRAP=$KAFKA_BOOTSTRAP"
    return 0
  fi

  local port cport
  if [[ -f "$dir/server.properties" && -f "$dir/data/meta.properties" ]]; then
    # Started before: same ports and data (a restart after stop or kill).
    port="$(sed -n 's/^listeners=PLAINTEXT:\/\/127\.0\.0\.1:\([0-9]*\),.*/\1/p' "$dir/server.properties")"
    cport="$(sed -n 's/^controller\.quorum\.voters=1@127\.0\.0\.1:\([0-9]*\)$/\1/p' "$dir/server.properties")"
    [[ -n "$port" && -n "$cport" ]] || die "cannot read the ports from $dir/server.properties"
  else
    port="$(free_port)"
    cport="$(free_port "$port")"
    rm -rf "$dir/data"
    write_config "$dir" "$port" "$cport"
    # A cluster id is 16 random bytes in URL-safe base64 without padding (what `random-uuid` prints);
    # making it here saves a JVM start. Like Kafka's own, never one starting with '-': the tool's
    # argument parser would take it for an option.
    local cluster_id="-"
    while [[ $cluster_id == -* ]]; do
      cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    done
    java -Xmx256m -Dlog4j.configuration="file:$dir/log4j.properties" -cp "$LIBS/*" \
      kafka.tools.StorageTool format -t "$cluster_id" -c "$dir/server.properties" >"$dir/format.log" 2>&1 \
      || { cat "$dir/format.log" >&2; die "formatting the storage in $dir/data failed"; }
  fi

  # shellcheck disable=SC2086 # HEAP_OPTS holds several flags
  setsid java $HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$dir/log4j.properties" -Dkafka.logs.dir="$dir" \
    -cp "$LIBS/*" kafka.Kafka "$dir/server.properties" </dev/null >"$dir/kafka.out" 2>&1 &
  local pid=$!
  write_env "$dir" "$pid" "$port" "$cport"

  local waited=0
  until broker_answers "127.0.0.1:$port"; do
    if ! pid_alive "$pid"; then
      tail -n 40 "$dir/kafka.out" "$dir/server.log" >&2 2>/dev/null || true
      die "the broker exited during start-up (logs: $dir/server.log, $dir/kafka.out)"
    fi
    if ((waited >= START_TIMEOUT * 2)); then
      kill -9 "$pid" 2>/dev/null || true
      tail -n 40 "$dir/server.log" >&2 2>/dev/null || true
      die "the broker did not answer on 127.0.0.1:$port within ${START_TIMEOUT}s"
    fi
    sleep 0.5
    waited=$((waited + 1))
  done
  if [[ -n "${KAFKA_OWNER_PID:-}" ]]; then
    start_watchdog "$dir" "$KAFKA_OWNER_PID"
  fi
  echo "KAFKA_BOOTSTRAP=127.0.0.1:$port"
}

wait_gone() {
  local pid="$1" seconds="$2" i
  for ((i = 0; i < seconds * 10; i++)); do
    pid_alive "$pid" || return 0
    sleep 0.1
  done
  return 1
}

cmd_stop() {
  local dir="${1:?usage: kafka.sh stop DIR}"
  read_env "$dir" || return 0
  pid_alive "$KAFKA_PID" || return 0
  kill -TERM "$KAFKA_PID" 2>/dev/null || true
  if ! wait_gone "$KAFKA_PID" "$STOP_GRACE"; then
    log "the broker did not stop within ${STOP_GRACE}s: killing it"
    kill -KILL "$KAFKA_PID" 2>/dev/null || true
    wait_gone "$KAFKA_PID" 10 || die "pid $KAFKA_PID survived SIGKILL"
  fi
}

cmd_kill() {
  local dir="${1:?usage: kafka.sh kill DIR}"
  read_env "$dir" || die "no broker was started in $dir"
  pid_alive "$KAFKA_PID" || return 0
  kill -KILL "$KAFKA_PID"
  wait_gone "$KAFKA_PID" 10 || die "pid $KAFKA_PID survived SIGKILL"
}

cmd_restart() {
  local dir="${1:?usage: kafka.sh restart DIR}"
  [[ -f "$dir/server.properties" ]] || die "no broker was started in $dir"
  cmd_kill "$dir"
  cmd_start "$dir"
}

cmd_status() {
  local dir="${1:?usage: kafka.sh status DIR}"
  read_env "$dir" || die "no broker was started in $dir"
  pid_alive "$KAFKA_PID" || die "the broker of $dir is not running"
  broker_answers "$KAFKA_BOOTSTRAP" || die "the broker of $dir (pid $KAFKA_PID) does not answer"
  cat "$dir/env"
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start "${2:-}" ;;
  stop) cmd_stop "${2:-}" ;;
  kill) cmd_kill "${2:-}" ;;
  restart) cmd_restart "${2:-}" ;;
  status) cmd_status "${2:-}" ;;
  *)
    sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
