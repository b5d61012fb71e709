#!/usr/bin/env bash
# Restores a scripts/backup.sh dump into an empty database, following TimescaleDB's
# documented steps: CREATE EXTENSION, SELECT timescaledb_pre_restore(), pg_restore,
# SELECT timescaledb_post_restore() (which restarts the background jobs).
#
#   scripts/restore.sh INPUT.dump DATABASE_URL
#
# The target database must exist and be empty (createdb it first); the server needs the
# same TimescaleDB version as the one backed up. Client tools are found as in backup.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/backup.sh"

restore_main() {
    [[ $# == 2 ]] || { echo "usage: $0 INPUT.dump DATABASE_URL" >&2; exit 2; }
    local dump=$1 url=$2
    [[ -r $dump ]] || die "cannot read $dump"
    split_url "$url"
    find_pg_tools
    local started=$SECONDS tables
    tables=$(pg_run psql -XAtqw -d "$PG_URL" -c \
        "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')" </dev/null) \
        || die "cannot reach the target database"
    [[ $tables == 0 ]] || die "the target database is not empty ($tables tables): restore into a fresh one"
    pg_run psql -XAtqw -v ON_ERROR_STOP=1 -d "$PG_URL" -c 'CREATE EXTENSION IF NOT EXISTS timescaledb' \
        -c 'SELECT timescaledb_pre_restore()' </dev/null >/dev/null
    # Streamed through stdin, so the chroot needs no path to the file. --no-owner: the
    # restoring role owns what it restores (it may differ from the backed-up one).
    if ! pg_run pg_restore --no-owner --exit-on-error -d "$PG_URL" <"$dump"; then
        pg_run psql -XAtqw -d "$PG_URL" -c 'SELECT timescaledb_post_restore()' </dev/null >/dev/null || true
        die "pg_restore failed; the target database is incomplete: drop it and start again"
    fi
    pg_run psql -XAtqw -v ON_ERROR_STOP=1 -d "$PG_URL" -c 'SELECT timescaledb_post_restore()' </dev/null >/dev/null
    echo "restore: $dump into $PG_URL ($((SECONDS - started)) s)" >&2
}

restore_main "$@"
