#!/usr/bin/env bash
# Local services for Watchpost: TimescaleDB and the project's Mosquitto 2.1 with its SQLite
# persistence (scripts/mosquitto.sh installs it where the host's is older; the demo's test
# SMSC and simulated family phone run under `watchpost run --simulate`).
#
#   scripts/services.sh up     install what is missing, start both, migrate, load the
#                              simulated Jiashan registry and road network, write
#                              .env.local with the URLs (idempotent)
#   scripts/services.sh down   stop both
#   scripts/services.sh test-deps   what only the tests need (Chromium, a CJK font)
#   scripts/services.sh rabbitmq    RabbitMQ 4 (MQTT 5) for the broker cluster and account
#                              tests, in a Debian 13 root (~1.5 min, once); without it they
#                              run on the host's RabbitMQ 3.10 and skip what needs MQTT 5
#
# A broker or database given in WATCHPOST_MQTT_URL / WATCHPOST_DATABASE_URL is used as it is
# and not started here.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) == 0 ]]; then default_home=/var/lib/watchpost; else default_home=${XDG_DATA_HOME:-$HOME/.local/share}/watchpost; fi
export WATCHPOST_HOME=${WATCHPOST_HOME:-$default_home}
BROKER_PORT=${WATCHPOST_BROKER_PORT:-1884}
BROKER_DIR=$WATCHPOST_HOME/mosquitto
WP=.venv/bin/watchpost

log() { echo "services: $*" >&2; }

ensure_packages() {
    local missing=()
    command -v mosquitto >/dev/null || [[ -x /usr/sbin/mosquitto ]] || missing+=(mosquitto)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    command -v psql >/dev/null || missing+=(postgresql-client)
    # Telephony: the SIP user agent that places calls (and plays the demo's family phone) and
    # the offline voice of the prompts.
    command -v baresip >/dev/null || missing+=(baresip-core)
    command -v espeak-ng >/dev/null || missing+=(espeak-ng)
    command -v sox >/dev/null || missing+=(sox)
    if ((${#missing[@]})); then
        log "installing ${missing[*]}"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# The locked versions (with their hashes) first, then Watchpost itself without resolving
# anything again. Keyed on the lock file (and pyproject.toml, whose entry points the
# editable install writes), so a changed lock reinstalls and an unchanged one costs nothing.
ensure_venv() {
    local stamp=.venv/.installed-$(cat requirements-test.lock pyproject.toml | sha256sum | cut -c1-16)
    [[ -f $stamp ]] && return
    log "installing the Python environment in .venv from requirements-test.lock"
    [[ -x .venv/bin/python ]] || python3 -m venv .venv
    .venv/bin/pip install -q --upgrade pip >/dev/null
    .venv/bin/pip install -q -r requirements-test.lock
    .venv/bin/pip install -q --no-deps -e .
    rm -f .venv/.installed-* && touch "$stamp"
}

broker_running() { [[ -f $BROKER_DIR/mosquitto.pid ]] && kill -0 "$(cat "$BROKER_DIR/mosquitto.pid")" 2>/dev/null; }

up() {
    ensure_packages
    ensure_venv
    scripts/frontend.sh
    if [[ -z ${WATCHPOST_DATABASE_URL:-} ]]; then
        WATCHPOST_DATABASE_URL=$(scripts/timescaledb.sh start)
    fi
    export WATCHPOST_DATABASE_URL
    $WP db migrate >&2
    # The simulated Jiashan county: registry (deterministic) and roads.
    # Made again when the simulated county's code changed (new rivers, stations, doctors…).
    local registry_file=$WATCHPOST_HOME/jiashan-registry.yaml stamp=$WATCHPOST_HOME/jiashan-simulated.stamp county
    county=$(cat simulators/jiashan_*.py simulators/data/* | sha256sum | cut -c1-16)
    local changed=0
    [[ -f $registry_file && $(cat "$stamp" 2>/dev/null) == "$county" ]] || changed=1
    ((changed)) && .venv/bin/python -m simulators.jiashan_registry --out "$registry_file" >&2
    $WP registry load "$registry_file" >&2
    # (again if the map's region layers are missing: a database from before they existed)
    if ((changed)) || [[ $(psql "$WATCHPOST_DATABASE_URL" -qAtc "SELECT (SELECT count(*) FROM road_nodes) * (SELECT count(*) FROM region_layers)") == 0 ]]; then
        $WP roads load --synthetic-jiashan simulators/data/jiashan-region.geojson >&2
    fi
    echo "$county" >"$stamp"
    if [[ -z ${WATCHPOST_MQTT_URL:-} ]]; then
        local mosquitto
        mosquitto=$(scripts/mosquitto.sh provision)
        $WP broker sync --directory "$BROKER_DIR" --port "$BROKER_PORT" >/dev/null
        # A broker started by another Mosquitto (an older checkout's) is replaced: the
        # persistence plugin is loaded at start only.
        if broker_running && [[ $(cat "$BROKER_DIR/mosquitto.cmd" 2>/dev/null) != "$mosquitto" ]]; then
            log "restarting Mosquitto with $mosquitto"
            kill "$(cat "$BROKER_DIR/mosquitto.pid")"
            while broker_running; do sleep 0.1; done
        fi
        if ! broker_running; then
            log "starting Mosquitto on 127.0.0.1:$BROKER_PORT"
            echo "$mosquitto" >"$BROKER_DIR/mosquitto.cmd"
            "$mosquitto" -c "$BROKER_DIR/mosquitto.conf" -d
            # mosquitto -d writes no pid file unless configured; find it by its config path
            sleep 0.3
            pgrep -f -n "mosquitto -c $BROKER_DIR/mosquitto.conf" >"$BROKER_DIR/mosquitto.pid"
        fi
        local broker=127.0.0.1:$BROKER_PORT
        WATCHPOST_MQTT_URL="mqtt://watchpost-ingest-1:$($WP broker password watchpost-ingest-1)@$broker"
        WATCHPOST_DISPATCH__MQTT_URL="mqtt://watchpost-dispatch-1:$($WP broker password watchpost-dispatch-1)@$broker"
        WATCHPOST_API__MQTT_URL="mqtt://watchpost-api-1:$($WP broker password watchpost-api-1)@$broker"
        WATCHPOST_ALERTS__MQTT_URL="mqtt://watchpost-alerts-1:$($WP broker password watchpost-alerts-1)@$broker"
    fi
    umask 077
    cat >.env.local <<ENV
WATCHPOST_DATABASE_URL=$WATCHPOST_DATABASE_URL
WATCHPOST_MQTT_URL=$WATCHPOST_MQTT_URL
WATCHPOST_DISPATCH__MQTT_URL=${WATCHPOST_DISPATCH__MQTT_URL:-$WATCHPOST_MQTT_URL}
WATCHPOST_API__MQTT_URL=${WATCHPOST_API__MQTT_URL:-$WATCHPOST_MQTT_URL}
WATCHPOST_ALERTS__MQTT_URL=${WATCHPOST_ALERTS__MQTT_URL:-$WATCHPOST_MQTT_URL}
WATCHPOST_NOTIFY__SMPP_URL=${WATCHPOST_NOTIFY__SMPP_URL:-smpp://watchpost:demo@127.0.0.1:2775}
WATCHPOST_NOTIFY__SIP_AGENT=${WATCHPOST_NOTIFY__SIP_AGENT:-$(command -v baresip)}
WATCHPOST_NOTIFY__SIP_PHONEBOOK=${WATCHPOST_NOTIFY__SIP_PHONEBOOK:-$WATCHPOST_HOME/phonebook.json}
ENV
    demo_logins
    log "services are up; their URLs are in .env.local"
}

# Demo logins for the simulated county: random passwords, made once, kept (mode 600) in
# $WATCHPOST_HOME/demo-logins — never in the repository.
demo_logins() {
    local file=$WATCHPOST_HOME/demo-logins family user password
    if [[ ! -f $file ]]; then
        family=$(psql "$WATCHPOST_DATABASE_URL" -qAtc "SELECT username FROM family_links ORDER BY username LIMIT 1")
        umask 077
        for user in op1 disp1 "$family"; do
            echo "$user $(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(9))')"
        done >"$file.tmp"
        mv "$file.tmp" "$file"
    fi
    # Applied at every start: the database may be newer than the file.
    while read -r user password; do
        echo "$password" | $WP user set-password "$user" --password-stdin >/dev/null
    done <"$file"
    log "console: http://127.0.0.1:8000/console   family page: http://127.0.0.1:8000/family"
    while read -r user password; do log "  login $user / $password"; done <"$file"
    doctor_logins
}

# The village doctors' logins (doc-FAP-nnn, one per first-aid post): one random password for
# all of them, kept (mode 600) in $WATCHPOST_HOME/doctor-password, where `watchpost run
# --simulate` finds it for the simulated doctors (and a person can log in as any post's doctor).
doctor_logins() {
    local file=$WATCHPOST_HOME/doctor-password doctors
    if [[ ! -f $file ]]; then
        (umask 077; .venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(9))' >"$file.tmp")
        mv "$file.tmp" "$file"
    fi
    doctors=$(psql "$WATCHPOST_DATABASE_URL" -qAtc "SELECT username FROM users WHERE username LIKE 'doc-FAP-%' ORDER BY username")
    [[ -n $doctors ]] || return 0
    # Applied at every start, all at once (one hash): the database may be newer than the file.
    # shellcheck disable=SC2086
    $WP user set-password $doctors --password-stdin <"$file" >/dev/null
    log "  village doctors: login doc-FAP-nnn / $(cat "$file")"
}

# What only the tests need: Debian's Chromium for the browser tests (Playwright's own
# browser download does not work here; the shift report's PDF uses it too), a CJK font so
# that screenshots are readable, pdftoppm to turn the report's pages into images, and
# RabbitMQ for the broker cluster tests: the host's (Debian 12: 3.10, MQTT 3.1.1 only) for
# its Erlang tools, and RabbitMQ 4 in a Debian 13 root (once, ~1 min) so that MQTT 5 devices,
# the accounts' client-id rule and the alert lane are tested against the version to deploy.
test_deps() {
    local missing=()
    [[ -x /usr/bin/chromium ]] || missing+=(chromium)
    fc-list 2>/dev/null | grep -qi "wenquanyi" || missing+=(fonts-wqy-microhei)
    command -v pdftoppm >/dev/null || missing+=(poppler-utils)
    # The broker cluster test starts RabbitMQ nodes of its own (scripts/rabbitmq.sh)
    [[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]] || missing+=(rabbitmq-server)
    if ((${#missing[@]})); then
        log "installing ${missing[*]} for the browser tests"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    scripts/rabbitmq.sh provision >/dev/null
}

down() {
    if broker_running; then kill "$(cat "$BROKER_DIR/mosquitto.pid")"; rm -f "$BROKER_DIR/mosquitto.pid"; fi
    scripts/timescaledb.sh stop
}

case ${1:-up} in
    up) up ;;
    down) down ;;
    test-deps) test_deps ;;
    rabbitmq) scripts/rabbitmq.sh provision ;;
    *) echo "usage: $0 up|down|test-deps|rabbitmq" >&2; exit 2 ;;
esac
