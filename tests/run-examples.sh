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
app_port=$p
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
check cbor /readings "2.05 Content: mean 19.83 (CBOR)"
check upload /upload "2.04 Changed: 65536 bytes of JSON"
if command -v coap-client-notls >/dev/null; then
    out=$(timeout 15 coap-client-notls -m get "coap://127.0.0.1:$p/slow" 2>&1)
    grep -q "done after 2 s" <<<"$out" || { echo "examples: libcoap GET /slow printed: $out"; exit 1; }
    echo "examples: libcoap coap-client → app_server /slow: ok"
    # libcoap sends the 64 KB JSON block-wise (Block1, 1024-byte blocks).
    json=$(mktemp)
    python3 -c 'import json,sys; d=json.dumps([{"n": i} for i in range(3000)]); sys.stdout.write(d + " " * (65536 - len(d)))' >"$json"
    out=$(timeout 20 coap-client-notls -m post -t 50 -b 1024 -f "$json" "coap://127.0.0.1:$p/upload" 2>&1)
    rm -f "$json"
    grep -q "65536 bytes of JSON" <<<"$out" || { echo "examples: libcoap POST /upload printed: $out"; exit 1; }
    echo "examples: libcoap coap-client → app_server /upload (Block1): ok"
fi

# The guided tour (docs/tour.md): each step's example against our server and, where
# possible, libcoap's server or client and aiocoap's client. Every run is bounded.
started() {   # started PATTERN LOG: bounded wait for a server's "serving" line
    for _ in $(seq 1 100); do grep -q "$1" "$2" 2>/dev/null && return 0; sleep 0.1; done
    echo "examples: server did not start: $(cat "$2")"; exit 1
}
expect() {   # expect WHAT PATTERN COMMAND...
    local what=$1 pattern=$2; shift 2
    out=$(timeout 20 "$@" 2>&1) || { echo "examples: $what failed: $out"; exit 1; }
    grep -q -- "$pattern" <<<"$out" || { echo "examples: $what printed: $out"; exit 1; }
    echo "examples: $what: ok"
}
logs=$(mktemp -d)

# 1. First GET: the README's quick start (its own server and client).
readme_block=$(awk '/^```rust title="examples\/examples\/quick_start.rs"/ {on=1; next} on && /^```/ {exit} on' README.md)
[[ "$readme_block" == "$(cat examples/examples/quick_start.rs)" ]] \
    || { echo "examples: README's quick start differs from examples/examples/quick_start.rs"; exit 1; }
expect "quick_start (the README's)" "2.05 Content: Hello, world!" "$bin/quick_start"

# The same async fn on tokio and on smol (one client type, generic over the runtime),
# against the app_server started above.
out=$(timeout 20 "$bin/any_runtime" "coap://127.0.0.1:$app_port/hello" 2>&1) \
    || { echo "examples: any_runtime failed: $out"; exit 1; }
grep -q "^tokio: 2.05 Content: Hello" <<<"$out" && grep -q "^smol: 2.05 Content: Hello" <<<"$out" \
    || { echo "examples: any_runtime printed: $out"; exit 1; }
echo "examples: any_runtime (tokio and smol) → app_server: ok"

# 2. Observe: our client against our server's observed route, libcoap's client against
#    it, and our client against libcoap's observable /time.
p=$(port)
"$bin/observe" serve --bind "127.0.0.1:$p" >"$logs/observe" 2>&1 &
pids+=($!)
started serving "$logs/observe"
out=$(timeout 20 "$bin/observe" client "coap://127.0.0.1:$p/temp" 3 2>&1) \
    || { echo "examples: observe client failed: $out"; exit 1; }
[[ $(grep -c "^notification: .* Cel" <<<"$out") == 3 ]] || { echo "examples: observe client printed: $out"; exit 1; }
echo "examples: observe client → observe serve: ok"
if command -v coap-client-notls >/dev/null; then
    out=$(timeout 15 coap-client-notls -s 2 -m get "coap://127.0.0.1:$p/temp" 2>&1 || true)
    [[ $(grep -o "Cel" <<<"$out" | wc -l) -ge 2 ]] || { echo "examples: libcoap observe printed: $out"; exit 1; }
    echo "examples: libcoap coap-client -s → observe serve: ok"
fi

# 3-5. Block-wise, deferred replies, JSON and CBOR: app_server and app_client above.

# 6. OSCORE: a fresh context pair; our client, then aiocoap's with the same credentials.
ctx=$(mktemp -d)
expect "oscore setup" "client.json" "$bin/oscore" setup "$ctx"
p=$(port)
"$bin/oscore" serve "$ctx" --bind "127.0.0.1:$p" >"$logs/oscore" 2>&1 &
pids+=($!)
started serving "$logs/oscore"
expect "oscore client → oscore serve" "2.05 Content (Oscore" "$bin/oscore" client "$ctx" "coap://127.0.0.1:$p/secret"
if command -v coap-client-notls >/dev/null; then
    out=$(timeout 15 coap-client-notls -m get "coap://127.0.0.1:$p/secret" 2>&1 || true)
    grep -q "4.01" <<<"$out" || { echo "examples: plain GET of /secret printed: $out"; exit 1; }
    echo "examples: libcoap plain GET → oscore serve /secret refused 4.01: ok"
fi
peers="${COAP_PEERS_DIR:-$PWD/.peers}"
if [[ -x "$peers/venv/bin/aiocoap-client" ]]; then
    # The same context after our client: both keep its sequence numbers in the directory.
    expect "aiocoap-client --credentials → oscore serve" "the protected answer" \
        "$peers/venv/bin/aiocoap-client" --credentials "$ctx/client.json" "coap://127.0.0.1:$p/secret"
fi

# 7. DTLS: our client and libcoap's against our coaps:// server, ours against libcoap's.
p=$(port)
"$bin/dtls" serve --bind "127.0.0.1:$p" >"$logs/dtls" 2>&1 &
pids+=($!)
started serving "$logs/dtls"
expect "dtls client → dtls serve" "Hello over DTLS session" "$bin/dtls" client "coaps://127.0.0.1:$p/hello"
if command -v coap-client-openssl >/dev/null; then
    expect "libcoap coap-client-openssl → dtls serve" "Hello over DTLS session" \
        coap-client-openssl -u example -k secretkey -m get "coaps://127.0.0.1:$p/hello"
fi

# Our clients against libcoap's server: first GET, observe, coaps://.
if command -v coap-server-openssl >/dev/null; then
    p=$(port)
    coap-server-openssl -A 127.0.0.1 -p "$p" -k secretkey -v 0 >/dev/null 2>&1 &
    pids+=($!)
    for _ in $(seq 1 50); do   # bounded wait for libcoap's server
        timeout 5 "$bin/tokio_client" "coap://127.0.0.1:$p/" >/dev/null 2>&1 && break
        sleep 0.1
    done
    expect "tokio_client → libcoap coap-server" "test server made with libcoap" "$bin/tokio_client" "coap://127.0.0.1:$p/"
    out=$(timeout 20 "$bin/observe" client "coap://127.0.0.1:$p/time" 2 2>&1) \
        || { echo "examples: observe client → libcoap /time failed: $out"; exit 1; }
    [[ $(grep -c "^notification: " <<<"$out") == 2 ]] || { echo "examples: observe client → libcoap printed: $out"; exit 1; }
    echo "examples: observe client → libcoap coap-server /time: ok"
    expect "dtls client → libcoap coap-server (coaps)" "test server made with libcoap" \
        "$bin/dtls" client "coaps://127.0.0.1:$((p + 1))/"
fi
rm -rf "$logs" "$ctx"

out=$("$bin/decode" 4001 7d34 bb 74656d7065726174757265)
grep -q "temperature" <<<"$out" || { echo "examples: decode printed: $out"; exit 1; }
if "$bin/decode" 4f >/dev/null 2>&1; then echo "examples: decode accepted a bad message"; exit 1; fi
echo "examples: decode ok"
