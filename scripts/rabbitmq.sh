#!/usr/bin/env bash
# A RabbitMQ of Watchpost's own, one node or a cluster, on free local ports with its own data
# (never the system's instance): the MQTT plugin for devices, AMQP for consumers that read
# quorum queues, the management plugin's HTTP API for `watchpost broker sync-rabbitmq`.
#
#   scripts/rabbitmq.sh provision        install RabbitMQ 4 in a Debian 13 root under the
#                                        Watchpost home (idempotent, needs root, ~1.5 min once)
#   scripts/rabbitmq.sh up DIR [NODES]   start NODES nodes (default 1) under DIR; the first is
#                                        the seed, the others join it on their first boot.
#                                        Prints one line per node: NAME MQTT_PORT AMQP_PORT
#   scripts/rabbitmq.sh kill DIR K       SIGKILL node K (1-based): a crash, not a shutdown
#   scripts/rabbitmq.sh start DIR K      start node K again on its data
#   scripts/rabbitmq.sh http DIR K       node K's management API (http://127.0.0.1:PORT)
#   scripts/rabbitmq.sh version DIR      the RabbitMQ version the nodes of DIR run
#   scripts/rabbitmq.sh down DIR         stop every node under DIR
#
# Which RabbitMQ (RMQ_SERVER, read by `up`; the nodes of a DIR keep the one they started with):
#   auto (default)  RabbitMQ 4 from the root `provision` built when there is one, else the host's
#   newer           RabbitMQ 4 from that root, or fail
#   host            the host's (Debian 12 ships 3.10: its MQTT plugin speaks MQTT 3.1.1 only
#                   and cannot tie a client id to its account, docs/delivery.md)
# RMQ_ACCOUNTS=1 (read by `up`): MQTT clients must log in with an account, as the ones
# `watchpost broker sync-rabbitmq` writes; by default anonymous MQTT clients are let in as
# the default user (guest), which is what a test of delivery alone wants.
set -euo pipefail

if [[ $(id -u) == 0 ]]; then default_home=/var/lib/watchpost; else default_home=${XDG_DATA_HOME:-$HOME/.local/share}/watchpost; fi
WATCHPOST_HOME=${WATCHPOST_HOME:-$default_home}
ROOTFS=$WATCHPOST_HOME/rabbitmq-root
HOST_BIN=/usr/lib/rabbitmq/bin
SUITE=trixie
MIRROR=http://deb.debian.org/debian

log() { echo "rabbitmq: $*" >&2; }

# RabbitMQ 4 (MQTT 5) and the Erlang it needs, from Debian 13, in a minimal Debian root run
# without chroot, like scripts/mosquitto.sh's: Erlang's binaries are pointed at the root's own
# loader and libraries (patchelf), and its `erl` at the root's Erlang, so the nodes read and
# write the host's paths (DIR) and talk to the host's epmd like the host's RabbitMQ.
provision() {
    if [[ -x $ROOTFS/usr/lib/rabbitmq/bin/rabbitmq-server ]]; then
        echo "$ROOTFS"
        return
    fi
    [[ $(id -u) == 0 ]] || { log "installing RabbitMQ 4 needs root"; exit 1; }
    command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }
    local partial=$ROOTFS.partial journal=$WATCHPOST_HOME/rabbitmq-debootstrap.log
    log "building a Debian $SUITE root with RabbitMQ 4 in $ROOTFS (once, ~1.5 min)"
    rm -rf "$partial"
    mkdir -p "$WATCHPOST_HOME"
    debootstrap --variant=minbase "$SUITE" "$partial" "$MIRROR" >"$journal" 2>&1 \
        || { log "debootstrap failed, see $journal"; exit 1; }
    mount -t proc proc "$partial/proc"
    chroot "$partial" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
        sh -c "apt-get install -y -qq --no-install-recommends rabbitmq-server patchelf && apt-get clean" >>"$journal" 2>&1 \
        || { umount "$partial/proc"; log "installing RabbitMQ failed, see $journal"; exit 1; }
    umount "$partial/proc"
    # The paths written into the binaries are the root's final ones (it is renamed below).
    local loader=$ROOTFS/lib64/ld-linux-x86-64.so.2 libs=$ROOTFS/lib/x86_64-linux-gnu:$ROOTFS/usr/lib/x86_64-linux-gnu
    patchelf() {
        "$partial/lib64/ld-linux-x86-64.so.2" --library-path "$partial/lib/x86_64-linux-gnu:$partial/usr/lib/x86_64-linux-gnu" \
            "$partial/usr/bin/patchelf" "$@"
    }
    local f
    while IFS= read -r -d '' f; do
        [[ $(head -c4 "$f") == $'\x7fELF' ]] || continue
        if patchelf --print-interpreter "$f" >/dev/null 2>&1; then patchelf --set-interpreter "$loader" "$f"; fi
        # DT_RPATH, not RUNPATH: it also serves the libraries' own dependencies (libssl's
        # libcrypto…) and the NIFs Erlang loads, so nothing falls back to the host's older ones.
        patchelf --force-rpath --set-rpath "$libs" "$f"
    done < <(find "$partial/usr/lib/erlang" -type f -print0)
    # Debian's `erl` names its root as a constant; this one's is here.
    sed -i "s|ROOTDIR=/usr/lib/erlang\$|ROOTDIR=$ROOTFS/usr/lib/erlang|" "$partial/usr/lib/erlang/bin/erl" \
        "$partial"/usr/lib/erlang/erts-*/bin/erl
    mv "$partial" "$ROOTFS"
    # Only a root whose Erlang runs (with its OpenSSL) is kept where the nodes look for it.
    "$ROOTFS/usr/lib/erlang/bin/erl" -noshell -eval 'crypto:info_lib(), halt().' >>"$journal" 2>&1 \
        || { mv "$ROOTFS" "$partial"; log "the root's Erlang does not run, see $journal"; exit 1; }
    log "RabbitMQ $(ls "$ROOTFS/usr/lib/rabbitmq/lib" | sed 's/rabbitmq_server-//') installed in $ROOTFS"
    echo "$ROOTFS"
}

# The RabbitMQ that `up` starts: its bin directory, and the Erlang directory to put first on
# PATH (empty for the host's).
choose_server() {
    local choice=${RMQ_SERVER:-auto}
    local newer=$ROOTFS/usr/lib/rabbitmq/bin
    case $choice in
        auto) if [[ -x $newer/rabbitmq-server ]]; then choice=newer; else choice=host; fi ;;
        newer) [[ -x $newer/rabbitmq-server ]] || { log "no RabbitMQ 4 in $ROOTFS: run $0 provision"; exit 1; } ;;
        host) ;;
        *) log "RMQ_SERVER is auto, newer or host, not $choice"; exit 2 ;;
    esac
    if [[ $choice == newer ]]; then
        echo "$newer $ROOTFS/usr/lib/erlang/bin"
    else
        [[ -x $HOST_BIN/rabbitmq-server ]] || { log "install rabbitmq-server (apt), or run $0 provision"; exit 1; }
        echo "$HOST_BIN"
    fi
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# The environment of node K: every node of DIR shares one Erlang cookie (its HOME), which is
# what lets them cluster and lets rabbitmqctl reach them.
node_env() {
    local dir=$1 k=$2 bin erl_bin
    local node_dir=$dir/node$k
    read -r bin erl_bin <"$dir/server"
    RMQ_BIN=$bin
    [[ -z $erl_bin ]] || export PATH=$erl_bin:$PATH
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
    # A DIR keeps the RabbitMQ it was first started with: its data is that version's.
    if [[ ! -s $dir/server ]]; then
        local server
        server=$(choose_server)
        echo "$server" >"$dir/server"
    fi
    echo "[rabbitmq_mqtt,rabbitmq_management]." >"$dir/enabled_plugins"
    local tag=wp$(basename "$dir" | tr -dc 'a-zA-Z0-9' | tail -c 12)
    for ((k = 1; k <= nodes; k++)); do
        local node_dir=$dir/node$k
        mkdir -p "$node_dir"
        [[ -f $node_dir/name ]] && continue
        echo "${tag}n$k@localhost" >"$node_dir/name"
        free_port >"$node_dir/mqtt_port"
        free_port >"$node_dir/amqp_port"
        free_port >"$node_dir/dist_port"
        free_port >"$node_dir/http_port"
    done
    local anonymous=true
    [[ ${RMQ_ACCOUNTS:-0} == 1 ]] && anonymous=false
    for ((k = 1; k <= nodes; k++)); do
        local node_dir=$dir/node$k
        {
            echo "listeners.tcp.default = $(cat "$node_dir/amqp_port")"
            echo "mqtt.listeners.tcp.default = $(cat "$node_dir/mqtt_port")"
            echo "mqtt.allow_anonymous = $anonymous"
            echo "management.tcp.port = $(cat "$node_dir/http_port")"
            echo "management.tcp.ip = 127.0.0.1"
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

version() {
    local bin
    read -r bin _ <"$1/server"
    ls "$bin/../lib" | sed -n 's/^rabbitmq_server-//p'
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
    provision) provision ;;
    up) up "$2" "${3:-1}" ;;
    kill) kill_node "$2" "$3" ;;
    start) start_node "$2" "$3" ;;
    http) echo "http://127.0.0.1:$(cat "$2/node$3/http_port")" ;;
    version) version "$2" ;;
    down) down "$2" ;;
    *) echo "usage: $0 provision | up DIR [NODES] | kill DIR K | start DIR K | http DIR K | version DIR | down DIR" >&2; exit 2 ;;
esac
