#!/usr/bin/env bash
# Runs the examples against each other (tokio and smol servers and clients, IPv4 and
# IPv6, crossed) and the hex decoder, checking their output. Called by tests/run-all.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build -q -p coap-examples --examples
bin=target/debug/examples
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.bind(("::",0)); print(s.getsockname()[1])'; }

for server in tokio_server smol_server; do
    p=$(port)
    "$bin/$server" --bind "[::]:$p" >/dev/null 2>&1 &
    pids+=($!)
    for client in tokio_client smol_client; do
        for host in 127.0.0.1 '[::1]'; do
            ok=
            for _ in $(seq 1 50); do   # the server may still be starting: bounded retries
                if out=$(timeout 10 "$bin/$client" "coap://$host:$p/hello" 2>&1); then ok=1; break; fi
                sleep 0.1
            done
            [[ -n "$ok" ]] || { echo "examples: $client → $server at $host failed: $out"; exit 1; }
            grep -q "Hello" <<<"$out" || { echo "examples: unexpected output from $client: $out"; exit 1; }
            echo "examples: $client → $server ($host): ok"
        done
    done
done

# The async router (app_server): a 2 s handler answered separately, JSON POST/GET, and a
# 64 KB JSON upload reassembled by the router; each client run bounded by `timeout`.
p=$(port)
"$bin/app_server" --bind "[::]:$p" >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do   # bounded wait for the server to start
    timeout 5 "$bin/tokio_client" "coap://127.0.0.1:$p/hello" >/dev/null 2>&1 && break
    sleep 0.1
done
check() {   # check STEP PATH EXPECTED
    out=$(timeout 15 "$bin/app_client" "$1" "coap://[::1]:$p$2" 2>&1) \
        || { echo "examples: app_client $1 failed: $out"; exit 1; }
    grep -q "$3" <<<"$out" || { echo "examples: app_client $1 printed: $out"; exit 1; }
    echo "examples: app_client $1 → app_server: ok"
}
check slow /slow "2.05 Content: \"done after 2 s\""
check json /items 'items: \["tea"\]'
check upload /upload "2.04 Changed: 65536 bytes of JSON"
if command -v coap-client-notls >/dev/null; then
    out=$(timeout 15 coap-client-notls -m get "coap://127.0.0.1:$p/slow" 2>&1)
    grep -q "done after 2 s" <<<"$out" || { echo "examples: libcoap GET /slow printed: $out"; exit 1; }
    echo "examples: libcoap coap-client → app_server /slow: ok"
fi

out=$("$bin/decode" 4001 7d34 bb 74656d7065726174757265)
grep -q "temperature" <<<"$out" || { echo "examples: decode printed: $out"; exit 1; }
if "$bin/decode" 4f >/dev/null 2>&1; then echo "examples: decode accepted a bad message"; exit 1; fi
echo "examples: decode ok"
