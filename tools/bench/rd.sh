#!/usr/bin/env bash
# Resource directory benchmark: for each store of `coap rd` (memory, sqlite, redis), the
# registrations per second of COUNT endpoints (`coap-rd-bench`: 32 sockets, one CON
# request outstanding each), then LOOKUPS endpoint lookups by name and LOOKUPS paged
# lookups with COUNT registered, the RD's VmRSS with COUNT endpoints, and for SQLite the
# time a restart takes to load them. Then aiocoap-rd (the peer, from the venv) and our
# memory store with PEER_COUNT endpoints, the same load.
#
# Usage: tools/bench/rd.sh
# Environment: COUNT=100000, LOOKUPS=2000, PEER_COUNT=10000, PORT=56850, REDIS_PORT=56851,
#              COAP_PEERS_DIR=.peers, NO_BUILD=1, SERVER_CPU=0, GEN_CPU=1.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
COUNT="${COUNT:-100000}"
LOOKUPS="${LOOKUPS:-2000}"
PEER_COUNT="${PEER_COUNT:-10000}"
PORT="${PORT:-56850}"
REDIS_PORT="${REDIS_PORT:-56851}"
PEERS="${COAP_PEERS_DIR:-$ROOT/.peers}"
SERVER_CPU="${SERVER_CPU:-0}"
GEN_CPU="${GEN_CPU:-1}"

if [[ -z "${NO_BUILD:-}" ]]; then
    cargo build --release --quiet -p coap-tools --bin coap --bin coap-rd-bench \
        --manifest-path "$ROOT/Cargo.toml"
fi
BIN="$ROOT/target/release"
ADDR="127.0.0.1:$PORT"
WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

rss() { awk '/VmRSS/ {print $2 " KiB"}' "/proc/$1/status"; }

# Waits (at most 30 s) until the RD's log says it listens.
wait_listening() {
    local log="$1" i
    for i in $(seq 300); do
        grep -q "listening on" "$log" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "rd: the RD did not start:" >&2; cat "$log" >&2; exit 1
}

gen() { taskset -c "$GEN_CPU" "$BIN/coap-rd-bench" "$@"; }

run_store() {
    local name="$1" store="$2" log="$WORK/$1.log"
    taskset -c "$SERVER_CPU" "$BIN/coap" rd --bind "$ADDR" --store "$store" \
        --max-registrations $((COUNT + 1000)) 2>"$log" &
    local pid=$!
    PIDS+=("$pid")
    wait_listening "$log"
    echo "== coap rd --store $store ($COUNT endpoints)"
    echo "RSS at start: $(rss "$pid")"
    gen "$ADDR" "$COUNT" "$LOOKUPS"
    echo "RSS with $COUNT endpoints: $(rss "$pid")"
    kill "$pid"; wait "$pid" 2>/dev/null || true
}

run_store memory memory
run_store sqlite "sqlite:$WORK/rd.sqlite3"
echo "SQLite file: $(du -k "$WORK/rd.sqlite3" | cut -f1) KiB (+ WAL $(du -k "$WORK/rd.sqlite3-wal" 2>/dev/null | cut -f1 || echo 0) KiB)"
# A restart loads them all.
start=$(date +%s.%N)
"$BIN/coap" rd --bind "$ADDR" --store "sqlite:$WORK/rd.sqlite3" --max-registrations $((COUNT + 1000)) 2>"$WORK/restart.log" &
pid=$!; PIDS+=("$pid")
wait_listening "$WORK/restart.log"
end=$(date +%s.%N)
echo "SQLite restart: $(grep -o '([0-9]* registrations)' "$WORK/restart.log") loaded in $(echo "$end - $start" | bc) s, RSS $(rss "$pid")"
kill "$pid"; wait "$pid" 2>/dev/null || true

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
RPID=$!; PIDS+=("$RPID")
for i in $(seq 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
run_store redis "redis://127.0.0.1:$REDIS_PORT/0"
echo "Redis used_memory: $(redis-cli -p "$REDIS_PORT" info memory | awk -F: '/^used_memory_human/ {print $2}' | tr -d '\r')"
kill "$RPID"; wait "$RPID" 2>/dev/null || true

# The peer, at a count it takes in reasonable time, beside our memory store at the same.
if [[ -x "$PEERS/venv/bin/aiocoap-rd" ]]; then
    taskset -c "$SERVER_CPU" "$PEERS/venv/bin/aiocoap-rd" --bind "$ADDR" 2>"$WORK/aiocoap.log" &
    pid=$!; PIDS+=("$pid")
    sleep 3
    echo "== aiocoap-rd ($PEER_COUNT endpoints)"
    gen "$ADDR" "$PEER_COUNT" "$LOOKUPS" resourcedirectory/ endpoint-lookup/
    echo "RSS with $PEER_COUNT endpoints: $(rss "$pid")"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    COUNT="$PEER_COUNT" run_store memory-at-peer-count memory
else
    echo "aiocoap-rd not found in $PEERS/venv (run tests/peers/install.sh)" >&2
fi
