#!/usr/bin/env bash
# The console's browser dependencies: Leaflet and uPlot (the trend charts) from the npm
# registry, copied into dashboard/static/vendor/{leaflet,uplot}/ so that the pages load
# nothing from a CDN.
#
#   scripts/frontend.sh          install (idempotent: a second run only checks a stamp)
#   scripts/frontend.sh --force  reinstall
#
# npm works in .cache/npm (its own cache and node_modules); the vendor directory is
# generated and not in git.
set -euo pipefail
cd "$(dirname "$0")/.."

LEAFLET_VERSION=1.9.4
CACHE=.cache/npm
VENDOR=dashboard/static/vendor/leaflet
STAMP=$VENDOR/.version

log() { echo "frontend: $*" >&2; }

UPLOT_VERSION=1.6.32
UPLOT_VENDOR=dashboard/static/vendor/uplot
UPLOT_STAMP=$UPLOT_VENDOR/.version

install_uplot() {
    if [[ ${1:-} != --force && -f $UPLOT_STAMP && $(cat "$UPLOT_STAMP") == "uplot@$UPLOT_VERSION" \
          && -f $UPLOT_VENDOR/uPlot.iife.min.js && -f $UPLOT_VENDOR/uPlot.min.css ]]; then
        return 0
    fi
    command -v npm >/dev/null || { log "npm is missing: apt-get install -y nodejs npm"; exit 1; }
    local dist=$CACHE/node_modules/uplot/dist
    if [[ ${1:-} == --force || ! -f $dist/uPlot.iife.min.js ]] \
       || [[ $(node -p "require('./$CACHE/node_modules/uplot/package.json').version" 2>/dev/null) != "$UPLOT_VERSION" ]]; then
        log "installing uplot@$UPLOT_VERSION from the npm registry into $CACHE"
        mkdir -p "$CACHE"
        npm install --prefix "$CACHE" --cache "$CACHE/_cacache" --no-save --no-audit --no-fund \
            --no-package-lock --loglevel=error "uplot@$UPLOT_VERSION" "leaflet@$LEAFLET_VERSION" >&2
    fi
    mkdir -p "${UPLOT_VENDOR%/*}"
    local tmp
    tmp=$(mktemp -d "${UPLOT_VENDOR%/*}/.uplot.XXXXXX")
    cp "$dist/uPlot.iife.min.js" "$dist/uPlot.min.css" "$tmp/"
    cp "$CACHE/node_modules/uplot/LICENSE" "$tmp/" 2>/dev/null || true
    echo "uplot@$UPLOT_VERSION" >"$tmp/.version"
    chmod 755 "$tmp"
    rm -rf "$UPLOT_VENDOR"
    mv "$tmp" "$UPLOT_VENDOR"
    log "uplot@$UPLOT_VERSION is in $UPLOT_VENDOR"
}

if [[ ${1:-} != --force && -f $STAMP && $(cat "$STAMP") == "leaflet@$LEAFLET_VERSION" \
      && -f $VENDOR/leaflet.js && -f $VENDOR/leaflet.css && -d $VENDOR/images ]]; then
    install_uplot "${1:-}"
    exit 0
fi

command -v npm >/dev/null || { log "npm is missing: apt-get install -y nodejs npm"; exit 1; }

dist=$CACHE/node_modules/leaflet/dist
if [[ ${1:-} == --force || ! -f $dist/leaflet.js ]] \
   || [[ $(node -p "require('./$CACHE/node_modules/leaflet/package.json').version" 2>/dev/null) != "$LEAFLET_VERSION" ]]; then
    log "installing leaflet@$LEAFLET_VERSION from the npm registry into $CACHE"
    mkdir -p "$CACHE"
    # --prefix: node_modules goes to $CACHE, not the repository root; --cache keeps npm's
    # download cache there too, so nothing is written to the user's ~/.npm.
    npm install --prefix "$CACHE" --cache "$CACHE/_cacache" --no-save --no-audit --no-fund \
        --no-package-lock --loglevel=error "leaflet@$LEAFLET_VERSION" "uplot@$UPLOT_VERSION" >&2
fi

tmp=$(mktemp -d "${VENDOR%/*}/.leaflet.XXXXXX" 2>/dev/null || { mkdir -p "${VENDOR%/*}"; mktemp -d "${VENDOR%/*}/.leaflet.XXXXXX"; })
trap 'rm -rf "$tmp"' EXIT
cp "$dist/leaflet.js" "$dist/leaflet.css" "$tmp/"
[[ -f $dist/leaflet.js.map ]] && cp "$dist/leaflet.js.map" "$tmp/"
cp -R "$dist/images" "$tmp/images"
echo "leaflet@$LEAFLET_VERSION" >"$tmp/.version"
chmod 755 "$tmp"
rm -rf "$VENDOR"
mv "$tmp" "$VENDOR"
trap - EXIT
log "leaflet@$LEAFLET_VERSION is in $VENDOR"
install_uplot "${1:-}"
