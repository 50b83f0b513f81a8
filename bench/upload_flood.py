#!/usr/bin/env python3
"""Legitimate file-server uploads under a flood of spoofed first blocks (issue 26).

Starts `coap serve --dir TMP --write --threads 1` on 127.0.0.1, has SOURCES spoofed
loopback addresses (127.77.0.x, all of 127/8 is local on Linux) send a first Block1 block
(NUM 0, M=1, 1024 bytes) of a PUT every INTERVAL seconds, each its own target file, and
meanwhile runs RUNS uploads of a SIZE-byte file with `coap put -p @FILE`. Prints how many
uploads completed byte-exact, and the datagrams flooded.

    python3 bench/upload_flood.py [COAP_BINARY] [SOURCES] [INTERVAL] [RUNS] [SIZE]

Loopback only; every wait is bounded.
"""

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

coap = sys.argv[1] if len(sys.argv) > 1 else "target/debug/coap"
sources = int(sys.argv[2]) if len(sys.argv) > 2 else 16
interval = float(sys.argv[3]) if len(sys.argv) > 3 else 0.05
runs = int(sys.argv[4]) if len(sys.argv) > 4 else 20
size = int(sys.argv[5]) if len(sys.argv) > 5 else 200 * 1024


def first_block(mid, path):
    # CON PUT, no token; Uri-Path (11); Block1 (27: delta 16 = 13 + 3) NUM 0, M, SZX 6.
    p = path.encode()
    assert len(p) < 13
    msg = bytes([0x40, 0x03, mid >> 8, mid & 0xFF, 0xB0 | len(p)]) + p
    msg += bytes([0xD1, 0x03, 0x0E, 0xFF]) + b"x" * 1024
    return msg


with tempfile.TemporaryDirectory() as root:
    serve = subprocess.Popen(
        [coap, "serve", "--bind", "127.0.0.1:0", "--threads", "1", "--dir", root, "--write"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = serve.stderr.readline()
    addr = line.split("listening on ")[1].split()[0]
    host, port = addr.rsplit(":", 1)
    server = (host, int(port))
    stop = threading.Event()
    sent = [0]

    def flood():
        socks = []
        for i in range(sources):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((f"127.77.{i // 250}.{i % 250 + 1}", 0))
            s.setblocking(False)
            socks.append(s)
        mid = 0
        deadline = time.time() + 600
        while not stop.is_set() and time.time() < deadline:
            mid = (mid + 1) % 65536
            for i, s in enumerate(socks):
                s.sendto(first_block(mid, f"s{i}.bin"), server)
                sent[0] += 1
                try:
                    while True:
                        s.recv(2048)
                except BlockingIOError:
                    pass
            time.sleep(interval)

    t = threading.Thread(target=flood)
    t.start()
    time.sleep(0.5)
    body = bytes((i * 7 + 3) % 256 for i in range(size))
    src = os.path.join(root, "..", f"upload-flood-{os.getpid()}.bin")
    with open(src, "wb") as f:
        f.write(body)
    ok = 0
    for n in range(runs):
        name = f"legit{n}.bin"
        r = subprocess.run(
            [coap, "put", f"coap://{addr}/{name}", "-p", f"@{src}"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        path = os.path.join(root, name)
        good = r.returncode == 0 and os.path.exists(path) and open(path, "rb").read() == body
        ok += good
        if not good:
            print(f"upload {n}: exit {r.returncode}: {r.stderr.strip()[:200]}")
    stop.set()
    t.join(10)
    os.remove(src)
    serve.terminate()
    serve.wait(10)
    print(
        f"{ok}/{runs} uploads of {size} bytes completed; {sources} spoofed sources, "
        f"a first block each every {interval * 1000:.0f} ms, {sent[0]} datagrams"
    )
