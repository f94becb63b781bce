#!/bin/sh
# First start: found a cluster (FEDNODE_INVITE unset) or join one (FEDNODE_INVITE=<token>),
# then lay the mounted config over the node's (prepare-config.mjs: API key from FEDNODE_API_KEY).
# Every start: `fednode start` in the foreground (SIGTERM = clean shutdown, exit 0).
set -eu
DATA="${FEDNODE_DATA_DIR:-/var/lib/fednode}"
CONFIG="${FEDNODE_CONFIG:-/etc/fednode/config.json}"
HERE="$(dirname "$0")"
if [ ! -f "$DATA/identity.key" ]; then
  if [ -n "${FEDNODE_INVITE:-}" ]; then
    fednode join "$FEDNODE_INVITE" --data-dir "$DATA" ${FEDNODE_NAME:+--name "$FEDNODE_NAME"}
  else
    fednode init --new-cluster --data-dir "$DATA" ${FEDNODE_NAME:+--name "$FEDNODE_NAME"}
  fi
fi
if [ -f "$CONFIG" ]; then
  node "$HERE/prepare-config.mjs" "$CONFIG" "$DATA/config.json"
fi
exec fednode start --data-dir "$DATA"
