#!/usr/bin/env bash
# Backs up Watchpost's database with pg_dump's custom format (-Fc), which TimescaleDB
# documents for logical backups: hypertables, their chunks and the catalog all come along.
#
#   scripts/backup.sh OUTPUT.dump [DATABASE_URL]     (URL default: $WATCHPOST_DATABASE_URL)
#
# pg_dump must be the server's major version or newer (an older one refuses; PostgreSQL 17
# here). It is looked for in this order: $WATCHPOST_PG_BIN; the host's
# /usr/lib/postgresql/<major>/bin; the Debian 13 root that scripts/timescaledb.sh builds
# ($WATCHPOST_HOME/timescaledb-root), run with chroot (root only). The dump streams through
# stdout, so no path inside the root is involved. The password travels in PGPASSWORD, never
# on a command line. Restore with scripts/restore.sh. This file is also sourced by it.
set -euo pipefail

if [[ $(id -u) == 0 ]]; then _default_home=/var/lib/watchpost; else _default_home=${XDG_DATA_HOME:-$HOME/.local/share}/watchpost; fi
WATCHPOST_HOME=${WATCHPOST_HOME:-$_default_home}
ROOTFS=${WATCHPOST_PG_ROOTFS:-$WATCHPOST_HOME/timescaledb-root}

die() { echo "${0##*/}: $*" >&2; exit 1; }

# split_url URL: sets PG_URL (the URL without its password) and PG_PASSWORD (decoded).
split_url() {
    local url=$1 re='^(postgres(ql)?://)([^:@/]*)(:([^@/]*))?@(.*)$'
    if [[ $url =~ $re ]]; then
        local pw=${BASH_REMATCH[5]}
        PG_URL="${BASH_REMATCH[1]}${BASH_REMATCH[3]}@${BASH_REMATCH[6]}"
        PG_PASSWORD=$(printf '%b' "${pw//%/\\x}")
    else
        PG_URL=$url
        PG_PASSWORD=${PGPASSWORD:-}
    fi
}

# pg_run TOOL ARGS...: runs a PostgreSQL client tool of the server's major version.
pg_run() {
    local tool=$1; shift
    case $PG_MODE in
        native) PGPASSWORD=$PG_PASSWORD "$PG_BIN/$tool" "$@" ;;
        chroot) chroot "$ROOTFS" /usr/bin/env -i PATH="$PG_BIN:/usr/bin:/bin" LANG=C.UTF-8 \
                    PGPASSWORD="$PG_PASSWORD" "$PG_BIN/$tool" "$@" ;;
    esac
}

# server_major: the server's major version, asked with whichever psql is at hand (an older
# psql can still run a SELECT against a newer server).
server_major() {
    local psql version
    for psql in "${WATCHPOST_PG_BIN:+$WATCHPOST_PG_BIN/psql}" "$(command -v psql || true)" /usr/lib/postgresql/*/bin/psql; do
        [[ -n $psql && -x $psql ]] || continue
        version=$(PGPASSWORD=$PG_PASSWORD "$psql" -XAtqw -d "$PG_URL" -c 'SHOW server_version_num' </dev/null) && break
    done
    if [[ -z ${version:-} && -d $ROOTFS && $(id -u) == 0 ]]; then
        local in_root_psql; in_root_psql=$(cd "$ROOTFS" && ls -d usr/lib/postgresql/*/bin/psql | tail -1)
        version=$(chroot "$ROOTFS" /usr/bin/env -i PATH=/usr/bin:/bin PGPASSWORD="$PG_PASSWORD" \
            "/$in_root_psql" -XAtqw -d "$PG_URL" -c 'SHOW server_version_num' </dev/null)
    fi
    [[ -n ${version:-} ]] || die "cannot reach the database (no psql worked) at $PG_URL"
    echo $((version / 10000))
}

# find_pg_tools: sets PG_MODE (native|chroot) and PG_BIN for the server's major version.
find_pg_tools() {
    local major; major=${WATCHPOST_PG_MAJOR:-$(server_major)}
    if [[ -n ${WATCHPOST_PG_BIN:-} ]]; then
        PG_MODE=native PG_BIN=$WATCHPOST_PG_BIN
    elif [[ -x /usr/lib/postgresql/$major/bin/pg_dump ]]; then
        PG_MODE=native PG_BIN=/usr/lib/postgresql/$major/bin
    elif [[ -x $ROOTFS/usr/lib/postgresql/$major/bin/pg_dump ]]; then
        [[ $(id -u) == 0 ]] || die "PostgreSQL $major client tools are only in $ROOTFS, which needs root to chroot into"
        PG_MODE=chroot PG_BIN=/usr/lib/postgresql/$major/bin
    else
        die "no PostgreSQL $major client tools (pg_dump, pg_restore): install postgresql-client-$major or set WATCHPOST_PG_BIN"
    fi
}

backup_main() {
    [[ $# -ge 1 && $# -le 2 ]] || { echo "usage: $0 OUTPUT.dump [DATABASE_URL]" >&2; exit 2; }
    local out=$1 url=${2:-${WATCHPOST_DATABASE_URL:-}}
    [[ -n $url ]] || die "no database: pass DATABASE_URL or set WATCHPOST_DATABASE_URL"
    split_url "$url"
    find_pg_tools
    local started=$SECONDS partial="$out.partial"
    umask 077   # a backup holds health data and password digests
    # Warnings about circular foreign keys between hypertables and chunks are expected
    # (TimescaleDB's documentation says to ignore them); the restore orders them correctly.
    pg_run pg_dump -Fc -d "$PG_URL" </dev/null >"$partial" 2> >(grep -v 'circular foreign-key\|consider using a full dump\|to avoid this problem\|^pg_dump: detail:\|^pg_dump: hint:' >&2) \
        || { rm -f "$partial"; die "pg_dump failed"; }
    mv "$partial" "$out"    # only a complete dump ever carries the final name
    echo "backup: $out ($(du -h "$out" | cut -f1), $((SECONDS - started)) s, pg_dump from $PG_MODE $PG_BIN)" >&2
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then backup_main "$@"; fi
