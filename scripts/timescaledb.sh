#!/usr/bin/env bash
# Brings up a local PostgreSQL 17 with TimescaleDB for development, tests and the demo,
# and prints the WATCHPOST_DATABASE_URL that reaches it.
#
#   scripts/timescaledb.sh start   provision if needed, start, print the URL (idempotent)
#   scripts/timescaledb.sh stop    stop the server
#   scripts/timescaledb.sh url     print the URL without starting anything
#
# Debian 12 packages no TimescaleDB and Debian 13's build needs glibc >= 2.38, so where the
# host has no native timescaledb.so we build a minimal Debian 13 root with debootstrap
# (about 40 s, once) and run PostgreSQL inside it with chroot. That needs root. Where the host
# already has PostgreSQL with TimescaleDB, set WATCHPOST_DATABASE_URL instead and skip this.
set -euo pipefail

if [[ $(id -u) == 0 ]]; then default_home=/var/lib/watchpost; else default_home=${XDG_DATA_HOME:-$HOME/.local/share}/watchpost; fi
WATCHPOST_HOME=${WATCHPOST_HOME:-$default_home}
PORT=${WATCHPOST_PG_PORT:-5433}
SUITE=trixie
PG_MAJOR=17
PASSWORD_FILE=$WATCHPOST_HOME/db-password
if [[ -e /usr/lib/postgresql/$PG_MAJOR/lib/timescaledb.so && -x /usr/lib/postgresql/$PG_MAJOR/bin/postgres ]]; then
    # The host packages TimescaleDB natively: no chroot needed.
    NATIVE=1
    ROOTFS=""
    STATE_IN_ROOT=$WATCHPOST_HOME/native
else
    NATIVE=0
    ROOTFS=$WATCHPOST_HOME/timescaledb-root
    STATE_IN_ROOT=/var/lib/watchpost               # path as seen inside the chroot
fi
DATA_IN_ROOT=$STATE_IN_ROOT/pgdata
LOG_IN_ROOT=$STATE_IN_ROOT/postgresql.log

log() { echo "timescaledb: $*" >&2; }

url() {
    printf 'postgresql://watchpost:%s@127.0.0.1:%s/watchpost\n' "$(cat "$PASSWORD_FILE")" "$PORT"
}

in_root() {
    if ((NATIVE)); then /usr/bin/env -i PATH=/usr/lib/postgresql/$PG_MAJOR/bin:/usr/bin:/bin LANG=C.UTF-8 "$@"; return; fi
    chroot "$ROOTFS" /usr/bin/env -i PATH=/usr/lib/postgresql/$PG_MAJOR/bin:/usr/bin:/bin LANG=C.UTF-8 "$@"
}
as_postgres() { in_root /usr/sbin/runuser -u postgres -- "$@"; }

provision_root() {
    ((NATIVE)) && return
    [[ -x $ROOTFS/usr/lib/postgresql/$PG_MAJOR/bin/postgres ]] && return
    [[ $(id -u) == 0 ]] || { log "building the TimescaleDB root needs root (or set WATCHPOST_DATABASE_URL)"; exit 1; }
    command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }
    log "building a Debian $SUITE root with PostgreSQL $PG_MAJOR + TimescaleDB in $ROOTFS (once, ~1 min)"
    rm -rf "$ROOTFS.partial"
    mkdir -p "$WATCHPOST_HOME"
    debootstrap --variant=minbase --include=postgresql-$PG_MAJOR,postgresql-$PG_MAJOR-timescaledb \
        "$SUITE" "$ROOTFS.partial" http://deb.debian.org/debian >"$WATCHPOST_HOME/debootstrap.log" 2>&1 \
        || { log "debootstrap failed, see $WATCHPOST_HOME/debootstrap.log"; exit 1; }
    mv "$ROOTFS.partial" "$ROOTFS"   # only a complete root is ever used
}

mount_pseudo_filesystems() {
    ((NATIVE)) && return
    mountpoint -q "$ROOTFS/proc" || mount -t proc proc "$ROOTFS/proc"
    mountpoint -q "$ROOTFS/dev" || mount --bind /dev "$ROOTFS/dev"
    mountpoint -q "$ROOTFS/dev/shm" || mount -t tmpfs -o mode=1777 shm "$ROOTFS/dev/shm"
}

init_cluster() {
    [[ -f $ROOTFS$DATA_IN_ROOT/PG_VERSION ]] && return
    log "initialising the cluster"
    umask 077
    [[ -f $PASSWORD_FILE ]] || head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$PASSWORD_FILE"
    mkdir -p "$ROOTFS$STATE_IN_ROOT"
    cp "$PASSWORD_FILE" "$ROOTFS$STATE_IN_ROOT/pwfile"
    in_root chown -R postgres:postgres "$STATE_IN_ROOT"
    as_postgres initdb -D "$DATA_IN_ROOT" -U watchpost --pwfile="$STATE_IN_ROOT/pwfile" \
        --auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
    rm -f "$ROOTFS$STATE_IN_ROOT/pwfile"
    # Tuned for a small shared box: the project's tests and benchmarks run broker, database
    # and services on 2 cores. synchronous_commit stays on: ingest acknowledges to the
    # broker only after its commit is durable.
    cat >>"$ROOTFS$DATA_IN_ROOT/postgresql.conf" <<EOF
shared_preload_libraries = 'timescaledb'
listen_addresses = '127.0.0.1'
port = $PORT
max_connections = 200
shared_buffers = 1GB
work_mem = 16MB
maintenance_work_mem = 256MB
wal_buffers = 16MB
max_wal_size = 4GB
checkpoint_timeout = 15min
timescaledb.telemetry_level = off
EOF
}

running() { as_postgres pg_ctl -D "$DATA_IN_ROOT" status >/dev/null 2>&1; }

start() {
    provision_root
    mount_pseudo_filesystems
    mkdir -p "$ROOTFS/run/postgresql"
    in_root chown postgres:postgres /run/postgresql
    ((NATIVE)) && chmod 711 "$WATCHPOST_HOME"
    init_cluster
    if ! running; then
        log "starting PostgreSQL $PG_MAJOR + TimescaleDB on 127.0.0.1:$PORT"
        as_postgres pg_ctl -D "$DATA_IN_ROOT" -l "$LOG_IN_ROOT" -w -t 60 start >/dev/null \
            || { log "start failed, see $ROOTFS$LOG_IN_ROOT"; exit 1; }
    fi
    local pw; pw=$(cat "$PASSWORD_FILE")
    in_root PGPASSWORD="$pw" psql -h 127.0.0.1 -p "$PORT" -U watchpost -d postgres -qAt -w \
        -c "SELECT 1 FROM pg_database WHERE datname = 'watchpost'" </dev/null | grep -q 1 \
        || in_root PGPASSWORD="$pw" createdb -w -h 127.0.0.1 -p "$PORT" -U watchpost watchpost </dev/null
    url
}

stop() {
    ((NATIVE)) || [[ -d $ROOTFS ]] || return 0
    [[ -f $ROOTFS$DATA_IN_ROOT/PG_VERSION ]] || return 0
    running && as_postgres pg_ctl -D "$DATA_IN_ROOT" -m fast -w stop >/dev/null
    return 0
}

case ${1:-start} in
    start) start ;;
    stop) stop ;;
    url) url ;;
    *) echo "usage: $0 start|stop|url" >&2; exit 2 ;;
esac
