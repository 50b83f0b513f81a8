#!/usr/bin/env bash
# Architecture checks (issue 17): the runtime adapters stay independent of each other and
# thin, and no crate has import circles between its files.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
status=0

# Neither std runtime depends on the other: what is shared lives in coap-std.
for pair in "coap-smol coap-tokio" "coap-tokio coap-smol"; do
    set -- $pair
    if cargo tree -p "$1" -e normal --prefix none | grep -q "^$2 "; then
        echo "error: $1 depends on $2 (cargo tree -p $1 -e normal):"
        cargo tree -p "$1" -e normal -i "$2" || true
        status=1
    else
        echo "ok: $1 does not depend on $2"
    fi
done

# The size of each runtime adapter (lines of Rust in src/, tests included).
echo "runtime adapter sizes (lines):"
for dir in runtime-tokio/src runtime-smol/src runtime-embassy/src runtime-std/src; do
    printf '  %-22s %6d\n' "$dir" "$(find "$dir" -name '*.rs' -exec cat {} + | wc -l)"
done
for dir in runtime-tokio/src runtime-smol/src; do
    lines=$(find "$dir" -name '*.rs' -exec cat {} + | wc -l)
    if [ "$lines" -gt 300 ]; then
        echo "error: $dir has $lines lines; a runtime adapter stays under 300 (protocol code goes to coap-std)"
        status=1
    fi
done

# No import circles between the files of a crate (the checker's own tests first).
if out=$(python3 .ci/test_import_cycles.py 2>&1); then
    echo "import-cycles checker: $(echo "$out" | grep '^Ran ')"
else
    echo "$out"
    status=1
fi
python3 .ci/import-cycles.py core/src runtime-std/src runtime-tokio/src runtime-smol/src dtls/src tools/src \
    runtime-embassy/src || status=1

exit "$status"
