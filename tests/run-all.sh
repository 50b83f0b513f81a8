#!/usr/bin/env bash
# Every test of the workspace: installs the interop peers (libcoap, aiocoap, node-coap;
# idempotent), runs the whole test suite (unit, property, simulator, runtime, CLI and
# interop tests, doc tests), runs the examples against each other, then the embassy runtime
# on microcontroller targets: its libcoap test over TAP and its firmware in QEMU
# (.ci/embassy.sh, which also prints the footprint).
# README's "run all tests" command.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash tests/peers/install.sh
export COAP_PEERS_DIR="$PWD/.peers"
cargo test --workspace
bash tests/run-examples.sh
bash .ci/embassy.sh
