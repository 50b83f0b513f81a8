#!/usr/bin/env bash
# Fuzzes every cargo-fuzz target of coap-core (core/fuzz) for FUZZ_SECONDS seconds each
# (default 60), starting from the committed seed corpus. The corpus is copied to a
# temporary directory first, so the run leaves the work tree as it was. Fails when a
# target crashes (panic, sanitizer report, timeout or out-of-memory); the crashing input
# is printed in base64 and kept under target/fuzz-artifacts/.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fuzz_dir="$root/core/fuzz"
secs="${FUZZ_SECONDS:-60}"

if ! cargo +nightly --version >/dev/null 2>&1; then
    rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo +nightly install cargo-fuzz --locked
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$fuzz_dir"
mapfile -t targets < <(cargo +nightly fuzz list)
cargo +nightly fuzz build

failed=()
for t in "${targets[@]}"; do
    mkdir -p "$work/corpus/$t" "$work/artifacts/$t"
    if [[ -d "corpus/$t" ]]; then
        cp -R "corpus/$t/." "$work/corpus/$t/"
    fi
    echo "=== fuzz $t for ${secs}s ($(find "$work/corpus/$t" -type f | wc -l) seeds)"
    if ! cargo +nightly fuzz run "$t" "$work/corpus/$t" -- \
        -max_total_time="$secs" -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$work/artifacts/$t/"; then
        failed+=("$t")
        keep="$root/target/fuzz-artifacts/$t"
        mkdir -p "$keep"
        for f in "$work/artifacts/$t"/*; do
            [[ -f "$f" ]] || continue
            cp "$f" "$keep/"
            echo "--- $t: $(basename "$f") (base64):"
            base64 "$f"
        done
        echo "--- $t: inputs kept in $keep"
    fi
done

if ((${#failed[@]})); then
    echo "fuzzing failed: ${failed[*]}" >&2
    exit 1
fi
echo "fuzzing passed: ${targets[*]}"
