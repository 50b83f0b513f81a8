#!/usr/bin/env bash
# Throughput of CoAP servers on loopback, measured in one run with one generator:
#
#   echo     coap-bench-server echo      a bare UDP echo (one recv_from + one send_to each)
#   libcoap  coap-server-notls           libcoap 4.3.1, GET /example_data (PUT first)
#   tokio    coap serve                  our demo server on coap-tokio, GET /hello
#   smol     coap-bench-server smol      the same resources on coap-smol, GET /hello
#   tokio-async coap-bench-server tokio-async  GET /hello as an async handler (coap_tokio::app)
#   tokio-2  coap serve --threads 2      two shards on the server's core (sharding's cost)
#   tokio-2-wide  the same on every core (the generator shares one on a 2-core machine)
#
# Both resources answer 2.05 with Content-Format 0 and the 13-byte "Hello, world!". The
# generator is `coap bench` (raw UDP, N requests in flight, CON). Server and generator are
# pinned to different cores with taskset (SERVER_CPU, GEN_CPU), and run at nice -15 (as
# root) so that other work on a shared machine takes less of their cores. Each round runs
# every server once, in turn; the table gives the median over the rounds, the server
# process's CPU use (from /proc/PID/stat: user + system, not the softirq work that the
# kernel accounts to no process) and the ratios, as the median of the per-round ratios.
#
# Usage: tools/bench/throughput.sh [SERVER ...]      (default: echo libcoap tokio smol)
#        With BEFORE_BIN=DIR (another build's target/release), the servers tokio-before and
#        smol-before are that build's `coap serve` and `coap-bench-server smol`, measured
#        with this build's generator (before/after comparisons of the adapters).
# Environment: DURATION=10 (seconds per run), ROUNDS=3, INFLIGHT=64, SERVER_CPU=0,
#              GEN_CPU=1, PORT=56830, NICE=-15, NO_BUILD=1 (use the existing release build),
#              OUT=dir (keeps every run's generator output; default a temporary dir).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DURATION="${DURATION:-10}"
ROUNDS="${ROUNDS:-3}"
INFLIGHT="${INFLIGHT:-64}"
SERVER_CPU="${SERVER_CPU:-0}"
GEN_CPU="${GEN_CPU:-1}"
PORT="${PORT:-56830}"
NICE="${NICE:--15}"
[[ $(id -u) == 0 ]] || NICE=0
SERVERS=("$@")
[[ ${#SERVERS[@]} -gt 0 ]] || SERVERS=(echo libcoap tokio smol)

if [[ -z "${NO_BUILD:-}" ]]; then
    cargo build --release --quiet -p coap-tools --manifest-path "$ROOT/Cargo.toml"
fi
BIN="$ROOT/target/release"
for s in "${SERVERS[@]}"; do
    if [[ $s == libcoap ]] && ! command -v coap-server-notls >/dev/null; then
        echo "throughput: coap-server-notls missing (bash tests/peers/install.sh)" >&2
        exit 1
    fi
done
OUT="${OUT:-$(mktemp -d)}"
mkdir -p "$OUT"
HZ="$(getconf CLK_TCK)"

SERVER_PID=""
stop_server() {
    if [[ -n "$SERVER_PID" ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}
trap stop_server EXIT

# Starts server $1 pinned to SERVER_CPU; sets SERVER_PID and URI.
start_server() {
    local addr="127.0.0.1:$PORT"
    local pin=(nice -n "$NICE" taskset -c "$SERVER_CPU")
    case "$1" in
        echo) "${pin[@]}" "$BIN/coap-bench-server" echo "$addr" 2>/dev/null &
              URI="coap://$addr/hello" ;;
        smol) "${pin[@]}" "$BIN/coap-bench-server" smol "$addr" 2>/dev/null &
              URI="coap://$addr/hello" ;;
        tokio-async) "${pin[@]}" "$BIN/coap-bench-server" tokio-async "$addr" 2>/dev/null &
                     URI="coap://$addr/hello" ;;
        tokio) "${pin[@]}" "$BIN/coap" serve --threads 1 --bind "$addr" 2>/dev/null &
               URI="coap://$addr/hello" ;;
        # Two shards (SO_REUSEPORT) on the server's one core: what sharding costs.
        tokio-2) "${pin[@]}" "$BIN/coap" serve --threads 2 --bind "$addr" 2>/dev/null &
                 URI="coap://$addr/hello" ;;
        # Two shards on both cores, the generator sharing one of them (a 2-core machine
        # has no third core to keep it apart).
        tokio-2-wide) nice -n "$NICE" "$BIN/coap" serve --threads 2 --bind "$addr" 2>/dev/null &
                      URI="coap://$addr/hello" ;;
        tokio-before) "${pin[@]}" "${BEFORE_BIN:?}/coap" serve --bind "$addr" 2>/dev/null &
                      URI="coap://$addr/hello" ;;
        smol-before) "${pin[@]}" "${BEFORE_BIN:?}/coap-bench-server" smol "$addr" 2>/dev/null &
                     URI="coap://$addr/hello" ;;
        libcoap) "${pin[@]}" coap-server-notls -A 127.0.0.1 -p "$PORT" -v 0 >/dev/null 2>&1 &
                 URI="coap://$addr/example_data" ;;
        *) echo "throughput: unknown server '$1'" >&2; exit 2 ;;
    esac
    SERVER_PID=$!
    # Ready when it answers (libcoap: once the resource holds the payload).
    local i
    for i in $(seq 50); do
        sleep 0.1
        if [[ $1 == libcoap ]]; then
            coap-client-notls -B 1 -m put -t 0 -e "Hello, world!" "$URI" >/dev/null 2>&1 || continue
        fi
        "$BIN/coap" get "$URI" --timeout 1 >/dev/null 2>&1 && return 0
    done
    echo "throughput: $1 does not answer on $URI" >&2
    exit 1
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

declare -A RATES CPUS P50S P99S ROUND RATIOS
# The ratios reported, with their goals ("-": none).
PAIRS=("tokio libcoap 1.5" "smol tokio 0.8" "tokio echo -" "libcoap echo -"
    "tokio-before libcoap -" "smol-before tokio-before -" "tokio tokio-before -"
    "smol smol-before -" "tokio-async tokio -" "tokio-async libcoap -" "tokio-2 tokio -"
    "tokio-2-wide tokio -" "tokio-2-wide libcoap -")
for round in $(seq "$ROUNDS"); do
    ROUND=()
    for s in "${SERVERS[@]}"; do
        start_server "$s"
        t0="$(cpu_ticks "$SERVER_PID")"
        log="$OUT/$s.$round.txt"
        nice -n "$NICE" taskset -c "$GEN_CPU" "$BIN/coap" bench "$URI" -n "$INFLIGHT" \
            -d "$DURATION" >"$log"
        t1="$(cpu_ticks "$SERVER_PID")"
        stop_server
        rate="$(awk '/req\/s/ {print $4}' "$log")"
        p50="$(awk '/latency/ {print $3}' "$log")"
        p99="$(awk '/latency/ {print $6}' "$log")"
        cpu="$(awk -v t="$((t1 - t0))" -v hz="$HZ" -v d="$DURATION" 'BEGIN {printf "%.0f", 100 * t / hz / d}')"
        printf 'round %d  %-8s %10.0f req/s  server CPU %3d%%  p50 %s ms  p99 %s ms\n' \
            "$round" "$s" "$rate" "$cpu" "$p50" "$p99" >&2
        RATES[$s]+="$rate "
        ROUND[$s]="$rate"
        CPUS[$s]+="$cpu "
        P50S[$s]+="$p50 "
        P99S[$s]+="$p99 "
    done
    for pair in "${PAIRS[@]}"; do
        read -r a b _ <<<"$pair"
        if [[ -n "${ROUND[$a]:-}" && -n "${ROUND[$b]:-}" ]]; then
            RATIOS[$a/$b]+="$(awk -v a="${ROUND[$a]}" -v b="${ROUND[$b]}" \
                'BEGIN {printf "%.3f", (b > 0 ? a / b : 0)}') "
        fi
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
minmax() { tr ' ' '\n' | grep -v '^$' | sort -g | awk 'NR==1 {lo=$1} {hi=$1} END {printf "%.0f-%.0f", lo, hi}'; }

declare -A MED
echo
echo "$(nproc) cores; server on CPU $SERVER_CPU, generator on CPU $GEN_CPU (nice $NICE);" \
    "$INFLIGHT in flight, CON GET; $ROUNDS x ${DURATION} s per server"
printf '| %-8s | %10s | %15s | %10s | %15s | %9s | %9s |\n' \
    server "req/s" "min-max" "server CPU" "CPU us/request" "p50 ms" "p99 ms"
printf '|%s|%s|%s|%s|%s|%s|%s|\n' ---------- ------------ ----------------- ------------ \
    ----------------- ----------- -----------
for s in "${SERVERS[@]}"; do
    MED[$s]="$(echo "${RATES[$s]}" | median)"
    cpu="$(echo "${CPUS[$s]}" | median)"
    us="$(awk -v c="$cpu" -v r="${MED[$s]}" 'BEGIN {printf "%.2f", (r > 0 ? c * 1e4 / r : 0)}')"
    printf '| %-8s | %10.0f | %15s | %9.0f%% | %15s | %9s | %9s |\n' "$s" "${MED[$s]}" \
        "$(echo "${RATES[$s]}" | minmax)" "$cpu" "$us" \
        "$(echo "${P50S[$s]}" | median)" "$(echo "${P99S[$s]}" | median)"
done
echo
echo "ratios (median of the per-round ratios; min-max):"
for pair in "${PAIRS[@]}"; do
    read -r a b goal <<<"$pair"
    [[ -n "${RATIOS[$a/$b]:-}" ]] || continue
    r="$(echo "${RATIOS[$a/$b]}" | median)"
    spread="$(echo "${RATIOS[$a/$b]}" | tr ' ' '\n' | grep -v '^$' | sort -g |
        awk 'NR==1 {lo=$1} {hi=$1} END {printf "%.2f-%.2f", lo, hi}')"
    if [[ $goal == - ]]; then
        printf '%-16s %.2f  (%s)\n' "$a/$b" "$r" "$spread"
    else
        printf '%-16s %.2f  (%s)  goal >= %s\n' "$a/$b" "$r" "$spread" "$goal"
    fi
done
echo "(generator output per run: $OUT)"
