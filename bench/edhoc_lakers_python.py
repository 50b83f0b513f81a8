#!/usr/bin/env python3
"""EDHOC handshake CPU time per role with lakers-python, the EDHOC engine aiocoap 0.4.17
uses (aiocoap/edhoc.py, aiocoap/oscore_sitewrapper.py make the same calls). Method 3,
cipher suite 2, the RFC 9529 §3 credentials by kid, no message_4, then the OSCORE
Master Secret and Salt from the exporter — the work `cargo bench -p coap-core --bench
edhoc --features edhoc` measures for this crate.

Usage: python3 bench/edhoc_lakers_python.py [ROUNDS]   (prints microseconds per handshake)
"""
import sys
import time

import lakers

SK_I = bytes.fromhex("fb13adeb6518cee5f88417660841142e830a81fe334380a953406a1305e8706b")
SK_R = bytes.fromhex("72cc4761dbd4c78f758931aa589d348d1ef874a7e303ede2f140dcf3e6aa4aac")
CRED_I = bytes.fromhex(
    "a2027734322d35302d33312d46462d45462d33372d33322d333908a101a5010202412b2001215820ac75"
    "e9ece3e50bfc8ed60399889522405c47bf16df96660a41298cb4307f7eb62258206e5de611388a4b8a82"
    "11334ac7d37ecb52a387d257e6db3c2a93df21ff3affc8")
CRED_R = bytes.fromhex(
    "a2026b6578616d706c652e65647508a101a501020241322001215820bbc34960526ea4d32e940cad2a23"
    "4148ddc21791a12afbcbac93622046dd44f02258204519e257236b2a0ce2023f0931f1f386ca7afda64f"
    "cde0108c224c51eabf6072")


def handshake(clock):
    """One handshake; returns (initiator seconds, responder seconds)."""
    t_i = t_r = 0.0
    t = clock()
    initiator = lakers.EdhocInitiator()
    m1 = initiator.prepare_message_1(b"\x05", None)
    t_i += clock() - t

    t = clock()
    responder = lakers.EdhocResponder(r=SK_R, cred_r=CRED_R)
    responder.process_message_1(m1)
    m2 = responder.prepare_message_2(lakers.CredentialTransfer.ByReference, b"\x27", None)
    t_r += clock() - t

    t = clock()
    initiator.parse_message_2(m2)
    initiator.verify_message_2(SK_I, CRED_I, CRED_R)
    m3, _ = initiator.prepare_message_3(lakers.CredentialTransfer.ByReference, None)
    initiator.completed_without_message_4()
    si = (initiator.edhoc_exporter(0, [], 16), initiator.edhoc_exporter(1, [], 8))
    t_i += clock() - t

    t = clock()
    responder.parse_message_3(m3)
    responder.verify_message_3(CRED_I)
    responder.completed_without_message_4()
    sr = (responder.edhoc_exporter(0, [], 16), responder.edhoc_exporter(1, [], 8))
    t_r += clock() - t
    assert bytes(si[0]) == bytes(sr[0]) and bytes(si[1]) == bytes(sr[1])
    return t_i, t_r


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    clock = time.process_time
    for _ in range(10):
        handshake(clock)
    ti = tr = 0.0
    for _ in range(rounds):
        a, b = handshake(clock)
        ti += a
        tr += b
    print(f"lakers-python {lakers.__name__} rounds={rounds}")
    print(f"initiator: {ti / rounds * 1e6:.0f} us per handshake")
    print(f"responder: {tr / rounds * 1e6:.0f} us per handshake")


if __name__ == "__main__":
    main()
