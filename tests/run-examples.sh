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

out=$("$bin/decode" 4001 7d34 bb 74656d7065726174757265)
grep -q "temperature" <<<"$out" || { echo "examples: decode printed: $out"; exit 1; }
if "$bin/decode" 4f >/dev/null 2>&1; then echo "examples: decode accepted a bad message"; exit 1; fi
echo "examples: decode ok"
