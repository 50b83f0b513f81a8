#!/usr/bin/env python3
"""Time to a first response, one fresh process per request: `coap get` (ours) and
libcoap's `coap-client-openssl`, plain coap:// and coaps:// (DTLS 1.2 PSK, a full
handshake with the cookie exchange every time), against our `coap serve --psk-file` and
libcoap's `coap-server-openssl -k`, in the same run. Each figure is the wall-clock time
of the whole client process (start, resolve, bind, handshake, request, exit), N runs.

Run: python3 bench/first_response.py OURS [BEFORE]
  OURS    the `coap` binary to measure (e.g. target/release/coap)
  BEFORE  optional: another `coap` binary for comparison (e.g. an older build)
libcoap's coap-server-openssl and coap-client-openssl must be on PATH. Ports 47511-47522
on 127.0.0.1 are used.
"""

import statistics
import subprocess
import sys
import tempfile
import time

N = 20


def run(cmd):
    start = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    ms = (time.perf_counter() - start) * 1000
    if r.returncode != 0 or not r.stdout:
        sys.exit(f"{cmd}: exit {r.returncode}: {r.stderr[-300:]!r}")
    return ms


def series(name, cmd):
    xs = [run(cmd) for _ in range(N)]
    print(f"| {name} | {statistics.median(xs):.1f} | {min(xs):.1f} | {max(xs):.1f} |")


def main():
    ours = sys.argv[1]
    before = sys.argv[2] if len(sys.argv) > 2 else None
    psk = tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False)
    psk.write("id:secretkey\n")
    psk.close()
    servers = [
        subprocess.Popen([ours, "serve", "--bind", "127.0.0.1:47511", "--psk-file", psk.name],
                         stderr=subprocess.DEVNULL),
        subprocess.Popen(["coap-server-openssl", "-A", "127.0.0.1", "-p", "47521", "-k",
                          "secretkey", "-v", "0"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    ]
    time.sleep(1.5)
    key = ["--psk-identity", "id", "--psk", "secretkey"]
    try:
        for label, plain, secure, path in [
            ("our coap serve", 47511, 47512, "/hello"),
            ("libcoap coap-server-openssl", 47521, 47522, "/"),
        ]:
            print(f"\nserver: {label}\n")
            print("| client | median ms | min ms | max ms |\n| --- | ---: | ---: | ---: |")
            p = f"coap://127.0.0.1:{plain}{path}"
            s = f"coaps://127.0.0.1:{secure}{path}"
            series(f"`coap get {p}`", [ours, "get", p])
            series(f"`coap get {s}`", [ours, "get", s] + key)
            if before:
                series(f"`coap get {s}` (before)", [before, "get", s] + key)
            # -B bounds libcoap's wait; it exits as soon as the response is in.
            series(f"`coap-client-openssl -B 5 {p}`", ["coap-client-openssl", "-B", "5", p])
            series(f"`coap-client-openssl -B 5 -u id -k secretkey {s}`",
                   ["coap-client-openssl", "-B", "5", "-u", "id", "-k", "secretkey", s])
    finally:
        for srv in servers:
            srv.kill()
            srv.wait()


if __name__ == "__main__":
    main()
