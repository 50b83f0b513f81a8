#!/usr/bin/env python3
"""aiocoap 0.4.17's own OSCORE protect/unprotect, timed in-process, for comparison with
core/benches/oscore.rs (same messages, same four steps per exchange):

1. client protects the request (RFC 8613 Appendix C.4: CON GET coap://localhost/tv1)
   and encodes the datagram;
2. server decodes it and unprotects it (replay window included);
3. server protects the response (C.7: ACK 2.05 "Hello World!") and encodes it;
4. client decodes and unprotects the response.

Run: /work/main/.peers/venv/bin/python bench/oscore_aiocoap.py [--seconds N] [--rust-ns NS]
(install the venv with `bash tests/peers/install.sh`). With --rust-ns (the Rust
get_exchange time per iteration, in ns) it also prints the ratio.

The contexts are in-memory (no sequence number file writes), built from aiocoap's own
mixins as its test suite does, so only protection is timed. The first exchange is
checked against the RFC's protected bytes (C.4 with sequence number 20, and C.7).
"""

import argparse
import time

import aiocoap
import aiocoap.meta
from aiocoap import oscore
from aiocoap.numbers.codes import Code
from aiocoap.numbers.types import Type
from cryptography.hazmat.primitives import hashes

SECRET = bytes.fromhex("0102030405060708090a0b0c0d0e0f10")
SALT = bytes.fromhex("9e7ca92223786340")
C4 = bytes.fromhex(
    "44025d1f00003974396c6f63616c686f7374620914ff612f1092f1776f1c1668b3825e"
)
C7 = bytes.fromhex("64445d1f0000397490ffdbaad1e9a7e7b2a813d3c31524378303cdafae119106")


class MemoryContext(oscore.CanProtect, oscore.CanUnprotect, oscore.SecurityContextUtils):
    """An in-memory pairwise context (RFC 8613 §3), never persisted."""

    def __init__(self, sender_id, recipient_id, seqno):
        self.sender_id = sender_id
        self.recipient_id = recipient_id
        self.id_context = None
        self.alg_aead = oscore.AES_CCM_16_64_128()
        self.hashfun = hashes.SHA256()
        self.sender_sequence_number = seqno
        self.recipient_replay_window = oscore.ReplayWindow(32, lambda: None)
        self.recipient_replay_window.initialize_empty()
        self.echo_recovery = None
        self.derive_keys(SALT, SECRET)

    def post_seqnoincrease(self):
        pass


def with_header(m, mtype):
    # Type, Message ID and token belong to the messaging layer in aiocoap (set by its
    # message manager after protection): set them as it does.
    m.mtype = mtype
    m.mid = 0x5D1F
    m.token = bytes.fromhex("00003974")
    return m


def request():
    m = aiocoap.Message(code=Code.GET, uri_path=("tv1",))
    m.opt.uri_host = "localhost"
    return m


def response():
    return aiocoap.Message(code=Code.CONTENT, payload=b"Hello World!")


def exchange(client, server, check=False):
    protected, request_id = client.protect(request())
    wire = with_header(protected, Type.CON).encode()
    if check:
        assert wire == C4, wire.hex()
    received = aiocoap.Message.decode(wire)
    _inner, server_request_id = server.unprotect(received)
    protected, _ = server.protect(response(), server_request_id)
    wire = with_header(protected, Type.ACK).encode()
    if check:
        assert wire == C7, wire.hex()
    received = aiocoap.Message.decode(wire)
    inner, _ = client.unprotect(received, request_id)
    return inner


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rust-ns", type=float, default=None)
    args = ap.parse_args()

    client = MemoryContext(b"", b"\x01", 20)
    server = MemoryContext(b"\x01", b"", 0)
    inner = exchange(client, server, check=True)
    assert inner.payload == b"Hello World!"

    for _ in range(200):  # warm-up
        exchange(client, server)
    n = 0
    start = time.perf_counter_ns()
    deadline = start + int(args.seconds * 1e9)
    while True:
        for _ in range(100):
            exchange(client, server)
        n += 100
        now = time.perf_counter_ns()
        if now >= deadline:
            break
    per = (now - start) / n
    print(f"aiocoap {aiocoap.meta.version}: {n} exchanges, {per / 1000:.1f} us per exchange "
          f"(protect+unprotect request and response), {1e9 / per:.0f} exchanges/s")
    if args.rust_ns:
        print(f"coap-core: {args.rust_ns:.0f} ns per exchange; ratio {per / args.rust_ns:.1f}x")


if __name__ == "__main__":
    main()
