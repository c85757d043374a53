#!/usr/bin/env bash
# The servers of walletun's cluster shape, on this one machine: a 3-node Cassandra cluster (the
# stand-in for a ScyllaDB cluster) and a 3-node RabbitMQ cluster, each node on its own loopback
# address (127.0.0.2, 127.0.0.3, 127.0.0.4) with the servers' default ports. PostgreSQL stays the
# single server of `scripts/infra.sh` (the wallet scales with its database, see ARCHITECTURE.md).
#
#   scripts/cluster.sh start    `npm run cluster`: up, then `npm start`'s orchestrator with the
#                               services pointed at the clusters and WALLETUN_INSTANCES=2 (two
#                               gateways behind HAProxy, two transaction services, two wallets)
#   scripts/cluster.sh up       start every node that is not running (data under .data/cluster/);
#                               idempotent, and waits until each cluster has all three nodes
#   scripts/cluster.sh down     stop every node it started, by pid
#   scripts/cluster.sh status   each node: up or down, pid and RSS
#   scripts/cluster.sh env      the client settings of the cluster, as shell assignments
#   scripts/cluster.sh stop-node cassandra|rabbitmq N    stop node N (1-3) alone (a fault)
#   scripts/cluster.sh start-node cassandra|rabbitmq N   start node N again
#   scripts/cluster.sh leader QUEUE      the number (1-3) of the node that leads quorum queue QUEUE
#   scripts/cluster.sh pid cassandra|rabbitmq N          the pid of node N (a fault pauses it)
#   scripts/cluster.sh wait-node cassandra N             wait (at most 240 s) until node N answers CQL
#
# The CQL nodes share one ring: one token each, spread evenly, so a fresh cluster starts without a
# token allocation or a bootstrap stream. The RabbitMQ nodes find each other from their
# configuration (classic peer discovery) and share one Erlang cookie.
set -euo pipefail
# shellcheck source=infra.sh
source "$(dirname "${BASH_SOURCE[0]}")/infra.sh"

cluster="$data/cluster"
crun="$cluster/run"
clogs="$data/log/cluster"
mkdir -p "$crun" "$clogs"

CLUSTER_ADDRESSES=(127.0.0.2 127.0.0.3 127.0.0.4)
CLUSTER_CASSANDRA_HEAP="${CLUSTER_CASSANDRA_HEAP:-512M}"
# Murmur3 tokens spread evenly over the ring, one per node.
cass_tokens=(-9223372036854775808 -3074457345618258603 3074457345618258602)

# --------------------------------------------------------------- Cassandra nodes
cnode_pid() { echo "$crun/cassandra-$1.pid"; }
cnode_address() { echo "${CLUSTER_ADDRESSES[$(($1 - 1))]}"; }
cnode_ready() { CQL_CONTACT_POINT="$(cnode_address "$1"):9042" cql_ready "${@:2}"; }

# Each node's cassandra.yaml: the single node's, with its own addresses and token, the first node
# as the seed, and no bootstrap stream (the ring is new, its tokens are given).
cnode_yaml() {
  local n="$1" address; address="$(cnode_address "$n")"
  local yaml="$cluster/cassandra-$n/cassandra.yaml"
  mkdir -p "$(dirname "$yaml")"
  sed -e "s/^cluster_name: .*/cluster_name: walletun-cluster/" \
    -e "s/^initial_token: .*/initial_token: \"${cass_tokens[$((n - 1))]}\"/" \
    -e "s/^listen_address: .*/listen_address: $address/" \
    -e "s/^rpc_address: .*/rpc_address: $address/" \
    -e "s/- seeds: .*/- seeds: \"$(cnode_address 1)\"/" \
    "$root/scripts/cassandra/cassandra.yaml" >"$yaml.partial"
  printf '%s\n' "# The cluster's nodes start on a new ring with given tokens: nothing to stream." "auto_bootstrap: false" >>"$yaml.partial"
  mv "$yaml.partial" "$yaml"
  echo "$yaml"
}

cnode_up() {
  local n="$1" t0 pid; t0=$(now_ms)
  if alive "$(cnode_pid "$n")"; then return 0; fi
  port_open "$(cnode_address "$n")" 9042 && die "$(cnode_address "$n"):9042 is taken by a process this script did not start"
  cass_jars
  # Gossip settles quickly on one machine; the default ring delay (30 s) is for real networks.
  CASS_EXTRA_FLAGS=(-Dcassandra.ring_delay_ms=5000)
  pid="$(cass_launch "$(cnode_yaml "$n")" "$cluster/cassandra-$n/data" "$clogs/cassandra-$n" "$(cnode_pid "$n")" 9042 "$CLUSTER_CASSANDRA_HEAP")"
  if cnode_ready "$n" --timeout-seconds 240 --quiet --pid "$pid"; then
    say "cassandra-$n: started on $(cnode_address "$n"):9042 (pid $pid, heap $CLUSTER_CASSANDRA_HEAP); CQL answered $(elapsed "$t0") after start"
  else
    tail -n 30 "$clogs/cassandra-$n/system.log" >&2 || true
    kill "$pid" 2>/dev/null || true
    rm -f "$(cnode_pid "$n")"
    die "cassandra-$n did not answer CQL within 240 s"
  fi
}

cnode_down() {
  local n="$1" pidfile pid t0; pidfile="$(cnode_pid "$n")"; t0=$(now_ms)
  alive "$pidfile" || { rm -f "$pidfile"; return 0; }
  pid="$(cat "$pidfile")"
  kill -"${2:-TERM}" "$pid"
  # Bounded: 60 s for a clean stop, then SIGKILL (the commit log makes that safe).
  for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  rm -f "$pidfile"
  say "cassandra-$n: stopped in $(elapsed "$t0")"
}

# Every node sees the other two as up (UN in nodetool's terms), read from the first node's peers.
cass_cluster_ready() {
  CQL_CONTACT_POINT="$(cnode_address 1):9042" "$root/scripts/with-node.sh" node "$root/scripts/cql-ready.ts" \
    --timeout-seconds 120 --quiet --peers 2
}

# --------------------------------------------------------------- RabbitMQ nodes
rnode_name() { echo "walletun-c$1@localhost"; }
rnode_base() { echo "$cluster/rabbitmq-$1"; }
rnode_pid() { echo "$crun/rabbitmq-$1.pid"; }
rabbit_home="$cluster/rabbitmq-home"

# Runs a RabbitMQ command for node N as its owner; every file of the node lies under .data/cluster.
rnode_run() {
  local n="$1" base; base="$(rnode_base "$n")"
  # The node's AMQP listener is in its rabbitmq.conf (its own address); Erlang distribution, how
  # the nodes and rabbitmqctl reach each other by the name `…@localhost`, stays on 127.0.0.1, each
  # node on a port of its own.
  (cd "$base" && as_user "$(rabbit_owner)" env HOME="$rabbit_home" RABBITMQ_NODENAME="$(rnode_name "$n")" \
    RABBITMQ_DIST_PORT="$((25680 + n))" ERL_EPMD_ADDRESS=127.0.0.1 \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
    RABBITMQ_MNESIA_BASE="$base/mnesia" \
    RABBITMQ_LOG_BASE="$clogs/rabbitmq-$n" RABBITMQ_PID_FILE="$(rnode_pid "$n")" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$base/enabled_plugins" RABBITMQ_CONFIG_FILE="$base/rabbitmq" \
    "$(rabbit_bin "$2")" "${@:3}")
}

rnode_up() {
  local n="$1" t0 address owner base; t0=$(now_ms); address="${CLUSTER_ADDRESSES[$((n - 1))]}"
  base="$(rnode_base "$n")"
  if port_open "$address" 5672; then
    [ -f "$crun/rabbitmq-$n.started" ] || die "$address:5672 is taken by a broker this script did not start"
    return 0
  fi
  command -v rabbitmq-server >/dev/null || [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || apt_install rabbitmq-server
  owner="$(rabbit_owner)"
  install -d -o "$owner" "$rabbit_home" "$base" "$base/mnesia" "$clogs/rabbitmq-$n"
  chown "$owner" "$crun"
  if [ ! -f "$rabbit_home/.erlang.cookie" ]; then
    head -c 64 /dev/urandom | base64 | tr -dc 'A-Z' | head -c 20 >"$rabbit_home/.erlang.cookie"
    chown "$owner" "$rabbit_home/.erlang.cookie" && chmod 400 "$rabbit_home/.erlang.cookie"
  fi
  echo "[]." >"$base/enabled_plugins"
  {
    printf 'listeners.tcp.default = %s:5672\n' "$address"
    printf 'cluster_formation.peer_discovery_backend = classic_config\n'
    local i
    for i in 1 2 3; do printf 'cluster_formation.classic_config.nodes.%s = %s\n' "$i" "$(rnode_name "$i")"; done
    # A node that comes back after an outage waits for its peers rather than forming a cluster alone.
    printf 'cluster_partition_handling = pause_minority\n'
  } >"$base/rabbitmq.conf"
  rnode_run "$n" rabbitmq-server -detached >"$clogs/rabbitmq-$n-start.log" 2>&1
  touch "$crun/rabbitmq-$n.started"
  # Bounded: 240 tries, half a second apart.
  for _ in $(seq 1 240); do
    port_open "$address" 5672 && { say "rabbitmq-$n: started on $address:5672 as $(rnode_name "$n") in $(elapsed "$t0")"; return 0; }
    sleep 0.5
  done
  die "rabbitmq-$n did not open $address:5672 within 120 s; see .data/log/cluster/rabbitmq-$n"
}

rnode_down() {
  local n="$1" t0; t0=$(now_ms)
  [ -f "$crun/rabbitmq-$n.started" ] || return 0
  rnode_run "$n" rabbitmqctl -n "$(rnode_name "$n")" stop "$(rnode_pid "$n")" >/dev/null 2>&1 || true
  rm -f "$crun/rabbitmq-$n.started"
  say "rabbitmq-$n: stopped in $(elapsed "$t0")"
}

# rabbitmqctl on the first node that answers (one may be down: a fault). The users and
# permissions of scripts/infra.sh are made through it too; they live in every node.
rabbit_ctl() {
  local n
  for n in 1 2 3; do
    port_open "${CLUSTER_ADDRESSES[$((n - 1))]}" 5672 || continue
    rnode_run "$n" rabbitmqctl -n "$(rnode_name "$n")" "$@" && return 0
  done
  return 1
}

rabbit_cluster_ready() {
  local running
  # Bounded: 120 tries, a second apart.
  for _ in $(seq 1 120); do
    running="$(rabbit_ctl cluster_status --formatter json 2>/dev/null | node_json_count running_nodes || true)"
    [ "$running" = 3 ] && return 0
    sleep 1
  done
  die "the RabbitMQ cluster did not reach 3 running nodes within 120 s (last count: ${running:-none})"
}
node_json_count() { "$root/scripts/with-node.sh" node -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{console.log((JSON.parse(s)['$1']??[]).length)})"; }

# --------------------------------------------------------------- commands
cluster_env() {
  local cql="" amqp="" a
  for a in "${CLUSTER_ADDRESSES[@]}"; do
    cql="${cql:+$cql,}$a:9042"
    amqp="${amqp:+$amqp,}amqp://guest:guest@$a:5672"
  done
  printf 'CQL_CONTACT_POINT=%s\nAMQP_URL=%s\nCQL_REPLICATION_FACTOR=3\n' "$cql" "$amqp"
}

cluster_up() {
  local t0 n; t0=$(now_ms)
  pki_up
  pg_up
  for n in 1 2 3; do rnode_up "$n"; done
  rabbit_cluster_ready
  say "rabbitmq: cluster of 3 running nodes"
  rabbit_users_up
  for n in 1 2 3; do cnode_up "$n"; done
  cass_cluster_ready
  say "cassandra: ring of 3 nodes, each up"
  say "cluster: servers ready in $(elapsed "$t0")"
}

cluster_down() {
  local n
  for n in 3 2 1; do rnode_down "$n"; done
  for n in 3 2 1; do cnode_down "$n"; done
}

cluster_status() {
  local n address pid
  for n in 1 2 3; do
    address="$(cnode_address "$n")"
    if alive "$(cnode_pid "$n")"; then
      pid="$(cat "$(cnode_pid "$n")")"
      say "cassandra-$n: $(cnode_ready "$n" --quiet && echo up || echo starting) on $address:9042 (pid $pid, RSS $(rss_of "$pid"))"
    else
      say "cassandra-$n: down on $address:9042"
    fi
  done
  for n in 1 2 3; do
    address="${CLUSTER_ADDRESSES[$((n - 1))]}"
    if port_open "$address" 5672; then
      pid="$(cat "$(rnode_pid "$n")" 2>/dev/null || echo '?')"
      say "rabbitmq-$n: up on $address:5672 as $(rnode_name "$n") (pid $pid, RSS $(rss_of "$pid"))"
    else
      say "rabbitmq-$n: down on $address:5672"
    fi
  done
}

# The node that leads a quorum queue now (Raft elects another when it goes).
rabbit_leader() {
  local queue="$1" leader
  leader="$(rabbit_ctl list_queues name leader --formatter json 2>/dev/null |
    "$root/scripts/with-node.sh" node -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{const q=JSON.parse(s).find(x=>x.name===process.argv[1]);console.log(q?.leader??'')})" "$queue")"
  case "$leader" in
    "$(rnode_name 1)") echo 1 ;;
    "$(rnode_name 2)") echo 2 ;;
    "$(rnode_name 3)") echo 3 ;;
    *) die "no leader known for queue $queue (${leader:-not found})" ;;
  esac
}

node_arg() { [[ "${1:-}" =~ ^[123]$ ]] || die "node: 1, 2 or 3"; echo "$1"; }

case "${1:-}" in
  start)
    cluster_up
    prom_install
    lb_install
    # Infra.sh's own CQL node, if it runs, is not part of this shape: the services use the ring.
    set -a
    eval "$(cluster_env)"
    set +a
    export WALLETUN_INSTANCES="${WALLETUN_INSTANCES:-2}"
    # exec all the way down (with-node.sh execs node), so signals reach the orchestrator itself.
    exec bash "$root/scripts/with-node.sh" node "$root/packages/lab/src/start.ts" ;;
  up) cluster_up ;;
  down) cluster_down ;;
  status) cluster_status ;;
  env) cluster_env ;;
  stop-node)
    case "${2:-}" in
      cassandra) cnode_down "$(node_arg "${3:-}")" "${4:-TERM}" ;;
      rabbitmq) rnode_down "$(node_arg "${3:-}")" ;;
      *) die "usage: scripts/cluster.sh stop-node cassandra|rabbitmq 1|2|3" ;;
    esac ;;
  start-node)
    case "${2:-}" in
      cassandra) cnode_up "$(node_arg "${3:-}")" ;;
      rabbitmq) rnode_up "$(node_arg "${3:-}")" ;;
      *) die "usage: scripts/cluster.sh start-node cassandra|rabbitmq 1|2|3" ;;
    esac ;;
  leader) rabbit_leader "${2:?usage: scripts/cluster.sh leader QUEUE}" ;;
  wait-node)
    [ "${2:-}" = cassandra ] || die "usage: scripts/cluster.sh wait-node cassandra 1|2|3"
    n="$(node_arg "${3:-}")"
    cnode_ready "$n" --timeout-seconds 240 --quiet || die "cassandra-$n does not answer CQL" ;;
  pid)
    case "${2:-}" in
      cassandra) cat "$(cnode_pid "$(node_arg "${3:-}")")" ;;
      rabbitmq) cat "$(rnode_pid "$(node_arg "${3:-}")")" ;;
      *) die "usage: scripts/cluster.sh pid cassandra|rabbitmq 1|2|3" ;;
    esac ;;
  *) die "usage: scripts/cluster.sh start|up|down|status|env|stop-node|start-node|leader|pid|wait-node" ;;
esac
