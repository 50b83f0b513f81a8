#!/usr/bin/env bash
# Installs the real CoAP peers used by the interop tests (see shared/peers/README.md):
#   - libcoap 4.3.1 command-line tools (Debian package libcoap3-bin: coap-client-notls, ...)
#   - aiocoap 0.4.17 in a Python venv at .peers/venv
#   - node-coap 1.5.0 in .peers/node (node_modules/coap)
#   - curl (the HTTP client of the HTTP-to-CoAP proxy tests)
#   - tmux (the terminal of the `coap shell` test)
#   - redis-server (the Redis store of `coap rd`, tests/tests/interop/rd_stores.rs)
# Idempotent and quick when everything is already there. Run as root (apt-get).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PEERS="$ROOT/.peers"
AIOCOAP_VERSION="0.4.17"
NODE_COAP_VERSION="1.5.0"

log() { printf 'peers: %s\n' "$*" >&2; }

# libcoap ------------------------------------------------------------------------------
if command -v coap-client-notls >/dev/null 2>&1; then
    log "libcoap: $(command -v coap-client-notls) present"
else
    log "libcoap: installing libcoap3-bin"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq libcoap3-bin >/dev/null
    command -v coap-client-notls >/dev/null || { log "libcoap: coap-client-notls still missing"; exit 1; }
fi

# curl (the HTTP client of tests/tests/http_proxy.rs) ----------------------------------
if command -v curl >/dev/null 2>&1; then
    log "curl: $(command -v curl) present"
else
    log "curl: installing curl"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq curl >/dev/null
    command -v curl >/dev/null || { log "curl: still missing"; exit 1; }
fi

# tmux (the terminal of tools/tests/shell.rs, which drives `coap shell`) ----------------
if command -v tmux >/dev/null 2>&1; then
    log "tmux: $(command -v tmux) present"
else
    log "tmux: installing tmux"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq tmux >/dev/null
    command -v tmux >/dev/null || { log "tmux: still missing"; exit 1; }
fi

# redis-server (the RD's shared store; the tests start their own, nothing saved) -------
if command -v redis-server >/dev/null 2>&1; then
    log "redis-server: $(command -v redis-server) present"
else
    log "redis-server: installing redis-server"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq redis-server >/dev/null
    command -v redis-server >/dev/null || { log "redis-server: still missing"; exit 1; }
fi

# aiocoap ------------------------------------------------------------------------------
VENV="$PEERS/venv"
aiocoap_version() {
    "$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("aiocoap"))' 2>/dev/null || true
}
# EDHOC (RFC 9528) needs lakers-python (the `oscore` extra), EDN credentials files
# cbor-diag (the `prettyprint` extra) and CoAP over WebSockets (RFC 8323 §4, tests/tests/ws.rs)
# websockets (the `ws` extra); a venv from before any was used is completed.
aiocoap_extras() {
    "$VENV/bin/python" -c 'import lakers, cbor_diag, cbor2, websockets' 2>/dev/null
}
if [[ -x "$VENV/bin/aiocoap-client" && "$(aiocoap_version)" == "$AIOCOAP_VERSION" ]] && aiocoap_extras; then
    log "aiocoap: $AIOCOAP_VERSION present in $VENV"
else
    log "aiocoap: installing $AIOCOAP_VERSION into $VENV"
    mkdir -p "$PEERS"
    [[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        "aiocoap[oscore,linkheader,prettyprint,ws]==$AIOCOAP_VERSION"
    [[ "$(aiocoap_version)" == "$AIOCOAP_VERSION" ]] || { log "aiocoap: install failed"; exit 1; }
    aiocoap_extras || { log "aiocoap: lakers-python, cbor-diag or websockets missing after install"; exit 1; }
fi

# node-coap ----------------------------------------------------------------------------
NODE_DIR="$PEERS/node"
node_coap_version() {
    node -p 'require(process.argv[1]).version' "$NODE_DIR/node_modules/coap/package.json" 2>/dev/null || true
}
if [[ "$(node_coap_version)" == "$NODE_COAP_VERSION" ]]; then
    log "node-coap: $NODE_COAP_VERSION present in $NODE_DIR"
else
    command -v npm >/dev/null || { log "node-coap: npm not found"; exit 1; }
    log "node-coap: installing coap@$NODE_COAP_VERSION into $NODE_DIR"
    mkdir -p "$NODE_DIR"
    [[ -f "$NODE_DIR/package.json" ]] || printf '{\n  "name": "coap-peers",\n  "private": true\n}\n' >"$NODE_DIR/package.json"
    (cd "$NODE_DIR" && npm install --no-audit --no-fund --loglevel=error "coap@$NODE_COAP_VERSION" >/dev/null)
    [[ "$(node_coap_version)" == "$NODE_COAP_VERSION" ]] || { log "node-coap: install failed"; exit 1; }
fi

log "all peers installed"
