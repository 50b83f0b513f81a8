#!/usr/bin/env bash
# Server memory under sustained load: runs `coap bench` (64 in flight, CON GET /hello)
# against one of our servers until REQUESTS responses, sampling the server's VmRSS from
# /proc/PID/status every INTERVAL seconds; prints the samples, then start / end / max.
#
# Usage: tools/bench/rss.sh [tokio|smol]      (default: tokio, i.e. `coap serve`)
# Environment: REQUESTS=10000000, INTERVAL=5, SERVER_CPU=0, GEN_CPU=1, PORT=56840,
#              NICE=-15, NO_BUILD=1, MAX_SECONDS=900 (bound on the run).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SERVER="${1:-tokio}"
REQUESTS="${REQUESTS:-10000000}"
INTERVAL="${INTERVAL:-5}"
SERVER_CPU="${SERVER_CPU:-0}"
GEN_CPU="${GEN_CPU:-1}"
PORT="${PORT:-56840}"
NICE="${NICE:--15}"
MAX_SECONDS="${MAX_SECONDS:-900}"
[[ $(id -u) == 0 ]] || NICE=0

if [[ -z "${NO_BUILD:-}" ]]; then
    cargo build --release --quiet -p coap-tools --manifest-path "$ROOT/Cargo.toml"
fi
BIN="$ROOT/target/release"
ADDR="127.0.0.1:$PORT"
URI="coap://$ADDR/hello"
pin=(nice -n "$NICE" taskset -c "$SERVER_CPU")
case "$SERVER" in
    tokio) "${pin[@]}" "$BIN/coap" serve --bind "$ADDR" 2>/dev/null & ;;
    smol) "${pin[@]}" "$BIN/coap-bench-server" smol "$ADDR" 2>/dev/null & ;;
    *) echo "rss: unknown server '$SERVER'" >&2; exit 2 ;;
esac
PID=$!
GEN=""
cleanup() {
    [[ -n "$GEN" ]] && kill "$GEN" 2>/dev/null || true
    kill "$PID" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 50); do
    sleep 0.1
    "$BIN/coap" get "$URI" --timeout 1 >/dev/null 2>&1 && break
done

rss() { awk '/^VmRSS/ {print $2}' "/proc/$PID/status"; }
OUT="$(mktemp)"
# Generator runs in slices, so that the count of requests is known at each sample.
SLICE="$INTERVAL"
done_requests=0
elapsed=0
printf '%8s %12s %10s\n' "seconds" "requests" "VmRSS kB"
printf '%8d %12d %10d\n' 0 0 "$(rss)"
samples=("$(rss)")
while (( done_requests < REQUESTS && elapsed < MAX_SECONDS )); do
    nice -n "$NICE" taskset -c "$GEN_CPU" "$BIN/coap" bench "$URI" -n 64 -d "$SLICE" >"$OUT" &
    GEN=$!
    wait "$GEN"
    GEN=""
    n="$(awk '/req\/s/ {print $2}' "$OUT")"
    done_requests=$((done_requests + n))
    elapsed=$((elapsed + SLICE))
    r="$(rss)"
    samples+=("$r")
    printf '%8d %12d %10d\n' "$elapsed" "$done_requests" "$r"
done
rm -f "$OUT"
max="$(printf '%s\n' "${samples[@]}" | sort -n | tail -1)"
echo "$SERVER: $done_requests requests in ${elapsed} s; VmRSS start ${samples[0]} kB," \
    "end ${samples[-1]} kB, max $max kB"
