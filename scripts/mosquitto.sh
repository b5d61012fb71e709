#!/usr/bin/env bash
# The project's Mosquitto: version 2.1 or later, for its SQLite persistence plugin, which
# writes every message it accepts to disk before acknowledging it. Mosquitto 2.0 (Debian 12)
# keeps queued messages in memory and snapshots them every 30 s, so a crash of the broker
# loses what it acknowledged since (docs/delivery.md).
#
#   scripts/mosquitto.sh provision   make sure one is installed (idempotent); print how to run it
#
# Where the host's Mosquitto already has the plugin (Debian 13 and later packages 2.1 as it
# reaches them), nothing is installed. Otherwise Debian's 2.1 goes into a minimal Debian root
# under the Watchpost home (about 2 minutes, once), with a `run-mosquitto` that starts it
# through the root's own dynamic loader: no chroot, so it reads the host's paths and drops to
# the host's `mosquitto` user like a native one.
set -euo pipefail

if [[ $(id -u) == 0 ]]; then default_home=/var/lib/watchpost; else default_home=${XDG_DATA_HOME:-$HOME/.local/share}/watchpost; fi
WATCHPOST_HOME=${WATCHPOST_HOME:-$default_home}
ROOTFS=$WATCHPOST_HOME/mosquitto-root
PLUGIN=mosquitto_persist_sqlite.so
# Debian's stable release carries 2.0 at the time of writing and its unstable one 2.1: the
# root is stable with Mosquitto (and what it needs) taken from unstable.
SUITE=trixie
NEWER=sid
MIRROR=http://deb.debian.org/debian

log() { echo "mosquitto: $*" >&2; }

host_has_plugin() {
    local dir
    for dir in /usr/lib/x86_64-linux-gnu/mosquitto /usr/lib/aarch64-linux-gnu/mosquitto /usr/lib/mosquitto /usr/local/lib; do
        [[ -f $dir/$PLUGIN ]] && return 0
    done
    return 1
}

provision() {
    if host_has_plugin; then
        command -v mosquitto || echo /usr/sbin/mosquitto
        return
    fi
    if [[ ! -x $ROOTFS/run-mosquitto ]]; then
        [[ $(id -u) == 0 ]] || { log "installing Mosquitto 2.1 needs root (or a host Mosquitto with $PLUGIN)"; exit 1; }
        command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }
        log "building a Debian root with Mosquitto 2.1 in $ROOTFS (once, ~2 min)"
        rm -rf "$ROOTFS.partial"
        mkdir -p "$WATCHPOST_HOME"
        debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$ROOTFS.partial" "$MIRROR" \
            >"$WATCHPOST_HOME/mosquitto-debootstrap.log" 2>&1 \
            || { log "debootstrap failed, see $WATCHPOST_HOME/mosquitto-debootstrap.log"; exit 1; }
        echo "deb $MIRROR $NEWER main" >"$ROOTFS.partial/etc/apt/sources.list.d/$NEWER.list"
        printf 'Package: *\nPin: release n=%s\nPin-Priority: 100\n' "$NEWER" >"$ROOTFS.partial/etc/apt/preferences.d/$NEWER"
        mount -t proc proc "$ROOTFS.partial/proc"
        # An unstable release's signature has a validity window a mirror snapshot outlives.
        chroot "$ROOTFS.partial" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
            sh -c "apt-get -o Acquire::Check-Valid-Until=false update -qq && \
                   apt-get install -y -qq --no-install-recommends -t $NEWER mosquitto && apt-get clean" \
            >>"$WATCHPOST_HOME/mosquitto-debootstrap.log" 2>&1 \
            || { umount "$ROOTFS.partial/proc"; log "installing Mosquitto failed, see $WATCHPOST_HOME/mosquitto-debootstrap.log"; exit 1; }
        umount "$ROOTFS.partial/proc"
        [[ -f $ROOTFS.partial/usr/lib/x86_64-linux-gnu/mosquitto/$PLUGIN ]] \
            || { log "the installed Mosquitto has no $PLUGIN"; exit 1; }
        cat >"$ROOTFS.partial/run-mosquitto" <<'RUN'
#!/bin/sh
# Mosquitto 2.1 from this Debian root, started through the root's own loader and libraries.
root=$(dirname "$(readlink -f "$0")")
exec "$root/lib64/ld-linux-x86-64.so.2" --library-path "$root/usr/lib/x86_64-linux-gnu:$root/lib/x86_64-linux-gnu" \
    "$root/usr/sbin/mosquitto" "$@"
RUN
        chmod 755 "$ROOTFS.partial/run-mosquitto"
        mv "$ROOTFS.partial" "$ROOTFS"   # only a complete root is ever used
        log "Mosquitto 2.1 installed in $ROOTFS"
    fi
    echo "$ROOTFS/run-mosquitto"
}

case ${1:-provision} in
    provision) provision ;;
    *) echo "usage: $0 provision" >&2; exit 2 ;;
esac
