#!/usr/bin/env bash
# A RabbitMQ of Watchpost's own, one node or a cluster, on free local ports with its own data
# (never the system's instance): the MQTT plugin for devices, AMQP for consumers that read
# quorum queues.
#
#   scripts/rabbitmq.sh up DIR [NODES]   start NODES nodes (default 1) under DIR; the first is
#                                        the seed, the others join it on their first boot.
#                                        Prints one line per node: NAME MQTT_PORT AMQP_PORT
#   scripts/rabbitmq.sh kill DIR K       SIGKILL node K (1-based): a crash, not a shutdown
#   scripts/rabbitmq.sh start DIR K      start node K again on its data
#   scripts/rabbitmq.sh down DIR         stop every node under DIR
#
# Debian 12 ships RabbitMQ 3.10: its MQTT plugin speaks MQTT 3.1.1 only (docs/delivery.md).
set -euo pipefail

RMQ_BIN=/usr/lib/rabbitmq/bin
[[ -x $RMQ_BIN/rabbitmq-server ]] || { echo "rabbitmq: install rabbitmq-server (apt)" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# The environment of node K: every node of DIR shares one Erlang cookie (its HOME), which is
# what lets them cluster and lets rabbitmqctl reach them.
node_env() {
    local dir=$1 k=$2
    local node_dir=$dir/node$k
    export HOME=$dir/home
    export RABBITMQ_NODENAME=$(cat "$node_dir/name")
    export RABBITMQ_NODE_PORT=$(cat "$node_dir/amqp_port")
    export RABBITMQ_DIST_PORT=$(cat "$node_dir/dist_port")
    export RABBITMQ_MNESIA_BASE=$node_dir/mnesia
    export RABBITMQ_LOG_BASE=$node_dir/log
    export RABBITMQ_CONFIG_FILE=$node_dir/rabbitmq
    export RABBITMQ_ENABLED_PLUGINS_FILE=$dir/enabled_plugins
    export RABBITMQ_PID_FILE=$node_dir/rabbitmq.pid
}

configure() {
    local dir=$1 nodes=$2 k
    mkdir -p "$dir/home"
    if [[ ! -f $dir/home/.erlang.cookie ]]; then
        python3 -c 'import secrets; print(secrets.token_hex(20).upper(), end="")' >"$dir/home/.erlang.cookie"
        chmod 400 "$dir/home/.erlang.cookie"
    fi
    echo "[rabbitmq_mqtt]." >"$dir/enabled_plugins"
    local tag=wp$(basename "$dir" | tr -dc 'a-zA-Z0-9' | tail -c 12)
    for ((k = 1; k <= nodes; k++)); do
        local node_dir=$dir/node$k
        mkdir -p "$node_dir"
        [[ -f $node_dir/name ]] && continue
        echo "${tag}n$k@localhost" >"$node_dir/name"
        free_port >"$node_dir/mqtt_port"
        free_port >"$node_dir/amqp_port"
        free_port >"$node_dir/dist_port"
    done
    for ((k = 1; k <= nodes; k++)); do
        local node_dir=$dir/node$k
        {
            echo "listeners.tcp.default = $(cat "$node_dir/amqp_port")"
            echo "mqtt.listeners.tcp.default = $(cat "$node_dir/mqtt_port")"
            echo "mqtt.allow_anonymous = true"
            echo "loopback_users = none"
            # A cluster of 3 keeps serving with one node down; pause_minority stops a node
            # cut off from the majority instead of letting it diverge.
            echo "cluster_partition_handling = pause_minority"
            if ((nodes > 1)); then
                echo "cluster_formation.peer_discovery_backend = classic_config"
                echo "cluster_formation.classic_config.nodes.1 = $(cat "$dir/node1/name")"
            fi
        } >"$node_dir/rabbitmq.conf"
    done
}

start_node() {
    local dir=$1 k=$2
    (
        node_env "$dir" "$k"
        setsid "$RMQ_BIN/rabbitmq-server" >>"$dir/node$k/server.log" 2>&1 </dev/null &
        # await_startup needs the VM up first: until then it fails at once
        for _ in $(seq 120); do
            "$RMQ_BIN/rabbitmqctl" -q -n "$RABBITMQ_NODENAME" await_startup --timeout 120 >/dev/null 2>&1 && exit 0
            sleep 1
        done
        echo "rabbitmq: node $k did not start; see $dir/node$k/log" >&2
        exit 1
    )
}

node_pid() { cat "$1/node$2/rabbitmq.pid" 2>/dev/null; }

up() {
    local dir=$1 nodes=${2:-1} k
    configure "$dir" "$nodes"
    start_node "$dir" 1  # the seed first: the others find it on their first boot
    for ((k = 2; k <= nodes; k++)); do start_node "$dir" "$k"; done
    for ((k = 1; k <= nodes; k++)); do
        echo "$(cat "$dir/node$k/name") $(cat "$dir/node$k/mqtt_port") $(cat "$dir/node$k/amqp_port")"
    done
}

kill_node() {
    local dir=$1 k=$2 pid
    pid=$(node_pid "$dir" "$k")
    kill -9 "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    rm -f "$dir/node$k/rabbitmq.pid"
}

down() {
    local dir=$1 node_dir pid
    for node_dir in "$dir"/node*; do
        pid=$(cat "$node_dir/rabbitmq.pid" 2>/dev/null) || continue
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        rm -f "$node_dir/rabbitmq.pid"
    done
}

case ${1:-} in
    up) up "$2" "${3:-1}" ;;
    kill) kill_node "$2" "$3" ;;
    start) start_node "$2" "$3" ;;
    down) down "$2" ;;
    *) echo "usage: $0 up DIR [NODES] | kill DIR K | start DIR K | down DIR" >&2; exit 2 ;;
esac
