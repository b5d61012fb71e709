#!/usr/bin/env bash
# The console's browser dependencies: Leaflet from the npm registry, copied into
# dashboard/static/vendor/leaflet/ so that the pages load nothing from a CDN.
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

if [[ ${1:-} != --force && -f $STAMP && $(cat "$STAMP") == "leaflet@$LEAFLET_VERSION" \
      && -f $VENDOR/leaflet.js && -f $VENDOR/leaflet.css && -d $VENDOR/images ]]; then
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
        --no-package-lock --loglevel=error "leaflet@$LEAFLET_VERSION" >&2
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
