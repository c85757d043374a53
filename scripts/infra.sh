#!/usr/bin/env bash
# Starts, stops and reports the servers walletun needs: PostgreSQL, RabbitMQ and a CQL database.
#
#   scripts/infra.sh up       use each server that already answers; start the others under .data/;
#                             create the services' local CA and certificates (.data/pki) where missing;
#                             install Prometheus (and promtool) where missing, without running it:
#                             `npm start` runs it, `npm test` checks the alert rules with promtool
#                             fetch Zipkin's jar for `npm start`'s trace viewer once (unless
#                             WALLETUN_TRACES=off)
#   scripts/infra.sh down     stop exactly what `up` started (never a server it found running)
#   scripts/infra.sh status   report each server, and who started it
#   scripts/infra.sh prometheus   only install Prometheus and promtool where missing (up does it too)
#                             (up also installs Debian's haproxy where missing, without running it)
#   scripts/infra.sh zipkin-jar   fetch Zipkin's jar when it is not cached; print its path
#
# Everything listens on 127.0.0.1 only. A server started here leaves a marker in .data/run/; `down`
# and `status` read those markers, so a server found running is never touched.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
data="$root/.data"
run="$data/run"
logs="$data/log"
mkdir -p "$run" "$logs"

PGHOST="${PGHOST:-127.0.0.1}"
PGPORT="${PGPORT:-5432}"
PGUSER="${PGUSER:-postgres}"
AMQP_URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672}"
CQL_CONTACT_POINT="${CQL_CONTACT_POINT:-127.0.0.1:9042}"
CASSANDRA_HEAP="${CASSANDRA_HEAP:-512M}"
CASSANDRA_TIMER_SLACK_NS="${CASSANDRA_TIMER_SLACK_NS:-5000000}"
# More JVM flags for a Cassandra node (the cluster adds its own); none for the single node.
CASS_EXTRA_FLAGS=()
DATABASES=(walletun_user walletun_wallet walletun_webhook)

amqp_port() { local p="${AMQP_URL##*:}"; p="${p%%/*}"; [[ "$p" =~ ^[0-9]+$ ]] && echo "$p" || echo 5672; }
cql_port() { echo "${CQL_CONTACT_POINT##*:}"; }

say() { printf '%s\n' "$*"; }
die() { printf 'infra: %s\n' "$*" >&2; exit 1; }
now_ms() { date +%s%3N; }
elapsed() { awk -v a="$1" -v b="$(now_ms)" 'BEGIN { printf "%.1f s", (b - a) / 1000 }'; }
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
rss_of() { awk '/VmRSS/ { printf "%.0f MB", $2 / 1024 }' "/proc/$1/status" 2>/dev/null; }
as_user() { # run a command as a system user when root, as oneself otherwise
  local user="$1"; shift
  if [ "$(id -u)" = 0 ]; then runuser -u "$user" -- "$@"; else "$@"; fi
}
apt_install() { # [--no-recommends] package...
  local -a flags=()
  if [ "${1:-}" = --no-recommends ]; then flags=(--no-install-recommends); shift; fi
  [ "$(id -u)" = 0 ] || die "$* is not installed; install it (Debian: apt-get install $*) and rerun"
  say "infra: installing $* from Debian's packages"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${flags[@]}" "$@" >/dev/null
}

# ---------------------------------------------------------------- PostgreSQL
pg_data="$data/postgres"
pg_bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
pg_answers() {
  local bindir; bindir="$(pg_bindir)"
  if [ -n "$bindir" ]; then "$bindir/pg_isready" -q -h "$PGHOST" -p "$PGPORT" -t 2; else port_open "$PGHOST" "$PGPORT"; fi
}
psql_cmd() { local bindir; bindir="$(pg_bindir)"; "${bindir:+$bindir/}psql" -X -q -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" "$@"; }

pg_up() {
  local t0; t0=$(now_ms)
  if pg_answers; then
    say "postgres: found running on $PGHOST:$PGPORT (not started by walletun)"
  else
    [ -n "$(pg_bindir)" ] || apt_install postgresql
    if pg_answers; then
      say "postgres: found running on $PGHOST:$PGPORT after install (not started by walletun)"
    else
      local bindir; bindir="$(pg_bindir)"
      local owner=postgres; [ "$(id -u)" = 0 ] || owner="$(id -un)"
      if [ ! -f "$pg_data/PG_VERSION" ]; then
        install -d -m 700 -o "$owner" "$pg_data"
        as_user "$owner" "$bindir/initdb" -D "$pg_data" -U postgres -A trust -E UTF8 >"$logs/initdb.log"
      fi
      touch "$logs/postgres.log" && chown "$owner" "$logs/postgres.log"
      as_user "$owner" "$bindir/pg_ctl" -D "$pg_data" -l "$logs/postgres.log" -w -t 60 \
        -o "-c listen_addresses=$PGHOST -p $PGPORT -k /tmp" start >/dev/null
      echo "$bindir" >"$run/postgres.started"
      say "postgres: started on $PGHOST:$PGPORT (data in .data/postgres) in $(elapsed "$t0")"
    fi
  fi
  for db in "${DATABASES[@]}"; do
    if [ "$(psql_cmd -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'")" != 1 ]; then
      psql_cmd -d postgres -c "CREATE DATABASE $db"
      say "postgres: created database $db"
    fi
    pg_role_up "$db"
  done
}

# The service that owns database $1 connects as the role of the same name, which owns the
# database and everything in it and is the only role (superusers aside) that may connect to it: a
# service cannot read another's database. Idempotent; existing objects change owner once.
pg_role_up() {
  local db="$1"
  psql_cmd -d postgres >/dev/null <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$db') THEN CREATE ROLE $db LOGIN; END IF;
END \$\$;
ALTER DATABASE $db OWNER TO $db;
REVOKE CONNECT, TEMPORARY ON DATABASE $db FROM PUBLIC;
GRANT CONNECT ON DATABASE $db TO $db;
SQL
  psql_cmd -d "$db" >/dev/null <<SQL
ALTER SCHEMA public OWNER TO $db;
DO \$\$ DECLARE statement text; BEGIN
  FOR statement IN
    SELECT format('ALTER TABLE public.%I OWNER TO $db', tablename) FROM pg_tables
    WHERE schemaname = 'public' AND tableowner <> '$db'
    UNION ALL
    SELECT format('ALTER FUNCTION public.%I(%s) OWNER TO $db', proname, pg_get_function_identity_arguments(oid))
    FROM pg_proc WHERE pronamespace = 'public'::regnamespace AND proowner <> '$db'::regrole
  LOOP EXECUTE statement; END LOOP;
END \$\$;
ALTER DEFAULT PRIVILEGES FOR ROLE $PGUSER IN SCHEMA public GRANT ALL ON TABLES TO $db;
ALTER DEFAULT PRIVILEGES FOR ROLE $PGUSER IN SCHEMA public GRANT ALL ON SEQUENCES TO $db;
SQL
}

pg_down() {
  [ -f "$run/postgres.started" ] || { say "postgres: not started by walletun, left alone"; return 0; }
  local bindir owner=postgres; bindir="$(cat "$run/postgres.started")"
  [ "$(id -u)" = 0 ] || owner="$(id -un)"
  as_user "$owner" "$bindir/pg_ctl" -D "$pg_data" -m fast -w stop >/dev/null || true
  rm -f "$run/postgres.started"
  say "postgres: stopped"
}

pg_status() {
  local who="not started by walletun"; [ -f "$run/postgres.started" ] && who="started by walletun"
  if pg_answers; then say "postgres: up on $PGHOST:$PGPORT ($who)"; else say "postgres: down on $PGHOST:$PGPORT"; fi
}

# ---------------------------------------------------------------- RabbitMQ
rabbit_base="$data/rabbitmq"
rabbit_node="walletun@localhost"
rabbit_owner() { if [ "$(id -u)" = 0 ]; then echo rabbitmq; else id -un; fi; }
# Runs a RabbitMQ command as its owner, with every file of the node under .data/.
rabbit_run() {
  local port; port="$(amqp_port)"
  (cd "$rabbit_base" && as_user "$(rabbit_owner)" env HOME="$rabbit_base" RABBITMQ_NODENAME="$rabbit_node" \
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$port" RABBITMQ_DIST_PORT="$((port + 20000))" \
    ERL_EPMD_ADDRESS=127.0.0.1 RABBITMQ_MNESIA_BASE="$rabbit_base/mnesia" RABBITMQ_LOG_BASE="$logs/rabbitmq" \
    RABBITMQ_PID_FILE="$run/rabbitmq.pid" RABBITMQ_ENABLED_PLUGINS_FILE="$rabbit_base/enabled_plugins" \
    RABBITMQ_CONFIG_FILE="$rabbit_base/rabbitmq" "$(rabbit_bin "$1")" "${@:2}")
}
rabbit_bin() { if [ -d /usr/lib/rabbitmq/bin ]; then echo /usr/lib/rabbitmq/bin/$1; else command -v "$1"; fi; }

rabbit_up() {
  local t0 port; t0=$(now_ms); port="$(amqp_port)"
  if port_open 127.0.0.1 "$port"; then
    say "rabbitmq: found running on 127.0.0.1:$port (not started by walletun)"
    return 0
  fi
  command -v rabbitmq-server >/dev/null || [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || apt_install rabbitmq-server
  if port_open 127.0.0.1 "$port"; then
    say "rabbitmq: found running on 127.0.0.1:$port after install (not started by walletun)"
    return 0
  fi
  local owner; owner="$(rabbit_owner)"
  install -d -o "$owner" "$rabbit_base" "$rabbit_base/mnesia" "$logs/rabbitmq"
  chown "$owner" "$run"
  if [ ! -f "$rabbit_base/.erlang.cookie" ]; then
    head -c 64 /dev/urandom | base64 | tr -dc 'A-Z' | head -c 20 >"$rabbit_base/.erlang.cookie"
    chown "$owner" "$rabbit_base/.erlang.cookie" && chmod 400 "$rabbit_base/.erlang.cookie"
  fi
  echo "[]." >"$rabbit_base/enabled_plugins"
  printf 'listeners.tcp.default = 127.0.0.1:%s\n' "$port" >"$rabbit_base/rabbitmq.conf"
  rabbit_run rabbitmq-server -detached >"$logs/rabbitmq-start.log" 2>&1
  touch "$run/rabbitmq.started"
  # Bounded: 120 tries, half a second apart.
  for _ in $(seq 1 120); do
    port_open 127.0.0.1 "$port" && { say "rabbitmq: started on 127.0.0.1:$port (data in .data/rabbitmq) in $(elapsed "$t0")"; return 0; }
    sleep 0.5
  done
  die "rabbitmq did not open 127.0.0.1:$port within 60 s; see .data/log/rabbitmq"
}

# rabbitmqctl for the broker on AMQP_URL's port: infra.sh's own node when it started one, else the
# machine's (Debian's wrapper, as root). Fails when neither can manage it (a broker elsewhere).
rabbit_ctl() {
  if [ -f "$run/rabbitmq.started" ]; then rabbit_run rabbitmqctl -n "$rabbit_node" "$@"
  else command -v rabbitmqctl >/dev/null && rabbitmqctl "$@"; fi
}

# One broker user per service, allowed only what it publishes and consumes (see README):
#   walletun-wallet       declares and publishes to wallet.events, reads nothing
#   walletun-transaction  everything else: its exchanges and queues, the bindings to wallet.events
#                         (it declares and reads that exchange) but never a publish to it
#   walletun-webhook      its own exchange and queues under webhooks., and reads wallet.events (to
#                         bind its queue to it); publishes nothing of the money path
# The password is made once and kept in $PKI_DIR/amqp-<service>.password, written only after the
# broker took it; a service connects as its user when that file exists, else with AMQP_URL's.
rabbit_users_up() {
  local pki="${PKI_DIR:-$data/pki}" service user file password
  if ! rabbit_ctl list_users >/dev/null 2>&1; then
    say "rabbitmq: cannot manage its users from here; the services connect with AMQP_URL's credentials"
    return 0
  fi
  for service in wallet transaction webhook; do
    user="walletun-$service"; file="$pki/amqp-$service.password"
    if [ -f "$file" ]; then password="$(cat "$file")"; else password="$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')"; fi
    if rabbit_ctl list_users 2>/dev/null | awk '{print $1}' | grep -qx "$user"; then
      rabbit_ctl change_password "$user" "$password" >/dev/null
    else
      rabbit_ctl add_user "$user" "$password" >/dev/null
    fi
    case "$service" in
      wallet) rabbit_ctl set_permissions -p / "$user" '^wallet\.events$' '^wallet\.events$' '^$' >/dev/null ;;
      transaction) rabbit_ctl set_permissions -p / "$user" '.*' '^(?!wallet\.events$).*' '.*' >/dev/null ;;
      webhook) rabbit_ctl set_permissions -p / "$user" '^webhooks\..*' '^webhooks\..*' '^(webhooks\..*|wallet\.events)$' >/dev/null ;;
    esac
    if [ ! -f "$file" ]; then (umask 077 && printf '%s' "$password" >"$file"); fi
  done
  say "rabbitmq: users walletun-wallet, walletun-transaction and walletun-webhook ready (passwords in ${pki#"$root"/})"
}

rabbit_down() {
  [ -f "$run/rabbitmq.started" ] || { say "rabbitmq: not started by walletun, left alone"; return 0; }
  rabbit_run rabbitmqctl -n "$rabbit_node" stop "$run/rabbitmq.pid" >/dev/null 2>&1 || true
  rm -f "$run/rabbitmq.started"
  say "rabbitmq: stopped"
}

rabbit_status() {
  local port who="not started by walletun"; port="$(amqp_port)"
  [ -f "$run/rabbitmq.started" ] && who="started by walletun"
  if port_open 127.0.0.1 "$port"; then say "rabbitmq: up on 127.0.0.1:$port ($who)"; else say "rabbitmq: down on 127.0.0.1:$port"; fi
}

# ---------------------------------------------------------------- CQL (ScyllaDB, or Cassandra here)
cass_lib="$root/.cache/cassandra/lib"
cass_data="$data/cassandra"
cass_pid="$run/cassandra.pid"
cql_ready() { CQL_CONTACT_POINT="$CQL_CONTACT_POINT" "$root/scripts/with-node.sh" node "$root/scripts/cql-ready.ts" "$@"; }

java17() {
  local candidate
  for candidate in "${CASSANDRA_JAVA:-}" /usr/lib/jvm/java-17-openjdk-*/bin/java /usr/lib/jvm/temurin-17*/bin/java /usr/lib/jvm/java-11-openjdk-*/bin/java; do
    [ -n "$candidate" ] && [ -x "$candidate" ] && { echo "$candidate"; return 0; }
  done
  return 1
}

cass_jars() {
  ls "$cass_lib"/cassandra-all-*.jar >/dev/null 2>&1 && return 0
  command -v mvn >/dev/null || apt_install maven
  local t0; t0=$(now_ms)
  say "cassandra: fetching the jars from Maven Central (once; cached in .cache/cassandra/lib)"
  # Maven prints bare colour resets even when told not to colour; they are dropped from the output.
  mvn -B -q -Dstyle.color=never -f "$root/scripts/cassandra/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$cass_lib.partial" 2>&1 | sed -u 's/\x1b\[[0-9;]*m//g'
  ls "$cass_lib.partial"/cassandra-all-*.jar >/dev/null 2>&1 || die "Maven did not fetch cassandra-all; see the lines above"
  mv "$cass_lib.partial" "$cass_lib"
  say "cassandra: $(ls "$cass_lib" | wc -l) jars fetched in $(elapsed "$t0")"
}

cql_up() {
  local t0; t0=$(now_ms)
  if alive "$cass_pid"; then
    say "cassandra: already started by walletun (pid $(cat "$cass_pid")); waiting for CQL"
    cql_ready --timeout-seconds 180 || die "cassandra (pid $(cat "$cass_pid")) does not answer CQL; see .data/log/cassandra/system.log"
    return 0
  fi
  if cql_ready --quiet; then
    say "cql: found a CQL database on $CQL_CONTACT_POINT (not started by walletun): $(cql_ready)"
    return 0
  fi
  port_open 127.0.0.1 "$(cql_port)" && die "127.0.0.1:$(cql_port) is taken by something that does not answer CQL"
  cass_jars
  t0=$(now_ms)
  local pid
  if pid="$(cass_launch "$root/scripts/cassandra/cassandra.yaml" "$cass_data" "$logs/cassandra" "$cass_pid" "$(cql_port)" "$CASSANDRA_HEAP")" \
    && cql_ready --timeout-seconds 180 --quiet --pid "$pid"; then
    say "cassandra: started on $CQL_CONTACT_POINT (pid $pid, heap $CASSANDRA_HEAP, data in .data/cassandra); CQL answered $(elapsed "$t0") after start"
  else
    tail -n 30 "$logs/cassandra/system.log" "$logs/cassandra/stdout.log" >&2 || true
    kill "$pid" 2>/dev/null || true
    rm -f "$cass_pid"
    die "cassandra did not answer CQL within 180 s"
  fi
}

# Starts one Cassandra node detached: cass_launch <cassandra.yaml> <storage dir> <log dir> <pid file>
# <native port> <heap>. Prints its pid; the caller waits for CQL (cql_ready --pid).
cass_launch() {
  local yaml="$1" storage="$2" logdir="$3" pidfile="$4" port="$5" heap="$6"
  local java; java="$(java17)" || { apt_install openjdk-17-jre-headless >&2; java="$(java17)"; }
  mkdir -p "$storage" "$logdir"
  local jamm; jamm="$(ls "$cass_lib"/jamm-*.jar | head -n 1)"
  local -a flags=(
    -Xms"$heap" -Xmx"$heap" -Xss256k -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError
    -Dcassandra.config="file://$yaml"
    -Dlogback.configurationFile="$root/scripts/cassandra/logback.xml"
    -Dcassandra.logdir="$logdir" -Dcassandra.storagedir="$storage"
    -Dcassandra-foreground=yes -Dcassandra.skip_wait_for_gossip_to_settle=0
    -Dcassandra.native_transport_port="$port"
    -Djdk.attach.allowAttachSelf=true -Dio.netty.tryReflectionSetAccessible=true -Djava.net.preferIPv4Stack=true
    -javaagent:"$jamm"
    "${CASS_EXTRA_FLAGS[@]}"
  )
  local m
  for m in java.base/jdk.internal.misc java.management.rmi/com.sun.jmx.remote.internal.rmi \
    java.management/com.sun.jmx.remote.security java.rmi/sun.rmi.registry java.rmi/sun.rmi.server \
    java.sql/java.sql java.base/java.lang.ref jdk.unsupported/sun.misc; do
    flags+=(--add-exports "$m=ALL-UNNAMED")
  done
  for m in java.base/java.lang.module java.base/jdk.internal.loader java.base/jdk.internal.ref \
    java.base/jdk.internal.reflect java.base/jdk.internal.math java.base/jdk.internal.module \
    java.base/jdk.internal.util.jar jdk.management/com.sun.management.internal java.base/sun.nio.ch \
    java.base/java.io java.base/java.lang.reflect java.base/java.lang java.base/java.util java.base/java.nio; do
    flags+=(--add-opens "$m=ALL-UNNAMED")
  done
  # Cassandra's shared request threads poll for work in sleeps of 10 us and up when idle, and under
  # any load each wake-up costs CPU: a timer slack of CASSANDRA_TIMER_SLACK_NS (set on the launching
  # shell, kept across exec and inherited by every thread) lets the kernel batch those wake-ups.
  # The price: while one worker spins, work handed to the pool wakes nobody and waits for that
  # worker's stretched sleep, up to the slack (a CQL request a few ms after another: about 5.9 ms
  # at p50 with 5 ms, 0.5 ms with the kernel's 50 us; bench README, seventeenth session). The same
  # pid is the JVM's (exec, no fork).
  setsid bash -c 'echo "$0" >/proc/self/timerslack_ns 2>/dev/null || true; exec "$@"' \
    "$CASSANDRA_TIMER_SLACK_NS" "$java" "${flags[@]}" -cp "$cass_lib/*" org.apache.cassandra.service.CassandraDaemon \
    </dev/null >"$logdir/stdout.log" 2>&1 &
  echo $! >"$pidfile"
  echo $!
}

cql_down() {
  alive "$cass_pid" || { rm -f "$cass_pid"; say "cassandra: not started by walletun, left alone"; return 0; }
  local pid t0; pid="$(cat "$cass_pid")"; t0=$(now_ms)
  kill -TERM "$pid"
  # Bounded: 60 s for a clean stop, then SIGKILL (the commit log makes that safe).
  for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  rm -f "$cass_pid"
  say "cassandra: stopped in $(elapsed "$t0")"
}

cql_status() {
  if alive "$cass_pid"; then
    local pid; pid="$(cat "$cass_pid")"
    if cql_ready --quiet; then state=up; else state="starting (no CQL yet)"; fi
    say "cassandra: $state on $CQL_CONTACT_POINT (started by walletun, pid $pid, RSS $(rss_of "$pid"))"
  elif cql_ready --quiet; then
    say "cql: up on $CQL_CONTACT_POINT (not started by walletun)"
  else
    say "cql: down on $CQL_CONTACT_POINT"
  fi
}

# ---------------------------------------------------------------- Prometheus (installed only)
# Debian's package brings `prometheus` and `promtool`. It is not started here: `npm start` runs it
# with a configuration of its own (packages/lab/src/Prometheus.ts), and `npm test` only needs
# promtool (packages/ops/test/PrometheusRules.test.ts). Recommends are left out, so no node
# exporter comes along.
prom_install() {
  command -v prometheus >/dev/null && command -v promtool >/dev/null && return 0
  local t0; t0=$(now_ms)
  apt_install --no-recommends prometheus
  command -v promtool >/dev/null || die "Debian's prometheus package did not bring promtool"
  say "prometheus: installed $(prometheus --version 2>&1 | head -n 1 | awk '{print $3}') in $(elapsed "$t0")"
}

# ---------------------------------------------------------------- HAProxy (installed only)
# Debian's package; `npm start` runs it in front of the instances when WALLETUN_INSTANCES is above 1
# (`npm run cluster`), with a configuration of its own (packages/lab/src/LoadBalancer.ts). Debian's
# own service is not started here.
lb_install() {
  [ -x /usr/sbin/haproxy ] && return 0
  local t0; t0=$(now_ms)
  apt_install --no-recommends haproxy
  # The package may start Debian's own instance (on no port of ours); it is not walletun's to run.
  if command -v systemctl >/dev/null && systemctl is-active --quiet haproxy 2>/dev/null; then systemctl stop haproxy || true; fi
  say "haproxy: installed $(/usr/sbin/haproxy -v 2>&1 | head -n 1 | awk '{print $3}') in $(elapsed "$t0")"
}

# ---------------------------------------------------------------- Zipkin (the trace viewer of `npm start`)
# Only its jar is handled here, fetched once like Cassandra's; packages/lab/src/Zipkin.ts runs it
# (npm start, and the test that checks the export) and stops it by pid.
ZIPKIN_VERSION="${ZIPKIN_VERSION:-3.4.2}"
zipkin_jar_path="$root/.cache/zipkin/zipkin-server-$ZIPKIN_VERSION-exec.jar"

zipkin_jar() {
  # Zipkin 3 needs Java 17 or later; the `java` on PATH runs it.
  command -v java >/dev/null || apt_install openjdk-17-jre-headless
  [ -f "$zipkin_jar_path" ] && return 0
  command -v curl >/dev/null || apt_install curl
  local t0 url expected actual partial="$zipkin_jar_path.partial"; t0=$(now_ms)
  url="https://repo1.maven.org/maven2/io/zipkin/zipkin-server/$ZIPKIN_VERSION/zipkin-server-$ZIPKIN_VERSION-exec.jar"
  say "zipkin: fetching zipkin-server $ZIPKIN_VERSION from Maven Central (once; cached in .cache/zipkin)"
  mkdir -p "$(dirname "$zipkin_jar_path")"
  # Maven Central publishes a sha1 next to each file; a truncated or altered jar is never cached.
  expected="$(curl -fsSL --retry 3 "$url.sha1" | awk '{ print $1 }')" || die "cannot fetch $url.sha1"
  curl -fsSL --retry 3 -o "$partial" "$url" || { rm -f "$partial"; die "cannot fetch $url"; }
  actual="$(sha1sum "$partial" | awk '{ print $1 }')"
  [ "$actual" = "$expected" ] || { rm -f "$partial"; die "$url: sha1 $actual, Maven Central says $expected"; }
  mv "$partial" "$zipkin_jar_path"
  say "zipkin: fetched $(du -m "$zipkin_jar_path" | cut -f1) MB in $(elapsed "$t0")"
}

# The services' certificates for mutual TLS (scripts/pki.ts): created where missing, never replaced.
pki_up() { bash "$root/scripts/with-node.sh" node "$root/scripts/pki.ts"; }

# Sourced (by scripts/cluster.sh) for its functions; run, it does what it is asked.
[ "${BASH_SOURCE[0]}" = "$0" ] || return 0

case "${1:-}" in
  up) pki_up; cql_up; pg_up; rabbit_up; rabbit_users_up; prom_install; lb_install; [ "${WALLETUN_TRACES:-on}" = off ] || zipkin_jar ;;
  # Prints the path of the Zipkin jar, fetching it first when it is not cached.
  zipkin-jar) zipkin_jar >&2; echo "$zipkin_jar_path" ;;
  down) rabbit_down; pg_down; cql_down ;;
  status) cql_status; pg_status; rabbit_status ;;
  prometheus) prom_install ;;
  *) die "usage: scripts/infra.sh up|down|status|prometheus|zipkin-jar" ;;
esac
