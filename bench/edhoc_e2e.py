#!/usr/bin/env python3
"""EDHOC + OSCORE end to end, per role, ours beside aiocoap 0.4.17 in the same run.

Each client run is a fresh process: one EDHOC handshake (method 3, suite 2, credentials by
kid, the combined request of RFC 9668, as aiocoap does by default) and one
OSCORE-protected GET, from `edhoc-oscore` credentials in EDN. For comparison the same
client does a plain GET (no credentials): the difference is what EDHOC + OSCORE cost.

- Client role: CPU time (user + system) of the client process, `coap get` and
  `aiocoap-client`, each against both servers.
- Server role: CPU time the server process (`coap serve`, `aiocoap-fileserver`) spends per
  request, read from /proc/PID/stat (10 ms ticks) around a batch of our client's
  requests (the same client for both servers), with and without EDHOC.

Usage: bench/edhoc_e2e.py COAP_BINARY AIOCOAP_BIN_DIR [RUNS]
  e.g. bench/edhoc_e2e.py target/release/coap /work/main/.peers/venv/bin 20
"""
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(coap, path, kid, subject):
    out = subprocess.run(
        [coap, "keygen", str(path), "--kid", kid, "--subject", subject],
        check=True, capture_output=True, text=True)
    return out.stdout.strip()


def entry(own_ccs, key, peer_ccs):
    return ('{"edhoc-oscore": {"suite": 2, "method": 3, "own_cred_style": "by-key-id", '
            f'"own_cred": {own_ccs}, "private_key_file": "{key}", "peer_cred": {peer_ccs}}}}}')


def child_cpu(cmd):
    """Runs cmd to completion; CPU seconds it used (user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        sys.exit(f"{cmd} failed: {r.stderr}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def proc_cpu(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def wait_up(coap, uri):
    for _ in range(100):
        r = subprocess.run([coap, "get", "--timeout", "1", uri], capture_output=True)
        if r.returncode in (0, 4):
            return
        time.sleep(0.1)
    sys.exit(f"server at {uri} did not answer")


def main():
    coap, aio, runs = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 20
    d = Path(tempfile.mkdtemp(prefix="edhoc-e2e-"))
    s_key, c_key = d / "server.cosekey", d / "client.cosekey"
    s_ccs = keygen(coap, s_key, "0b", "server")
    c_ccs = keygen(coap, c_key, "0a", "client")
    files = d / "files"
    files.mkdir()
    (files / "hello").write_text("Hello, world!")

    def start():
        """Fresh servers (aiocoap-fileserver refuses new sessions with 5.00 after a few
        dozen), each with the client's credentials file."""
        p_ours, p_aio = free_port(), free_port()
        (d / "ours.diag").write_text(f'{{":client": {entry(s_ccs, s_key, c_ccs)}}}')
        (d / "aio.diag").write_text(
            f'{{"coap://127.0.0.1:{p_aio}/*": {entry(s_ccs, s_key, c_ccs)}}}')
        procs = {
            "coap serve": (p_ours, subprocess.Popen(
                [coap, "serve", "--bind", f"127.0.0.1:{p_ours}", "--credentials",
                 str(d / "ours.diag")], stderr=subprocess.DEVNULL)),
            "aiocoap-fileserver": (p_aio, subprocess.Popen(
                [str(aio / "aiocoap-fileserver"), "--bind", f"127.0.0.1:{p_aio}",
                 "--credentials", str(d / "aio.diag"), str(files)],
                stderr=subprocess.DEVNULL)),
        }
        for port, _ in procs.values():
            wait_up(coap, f"coap://127.0.0.1:{port}/hello")
            (d / f"client-{port}.diag").write_text(
                f'{{"coap://127.0.0.1:{port}/*": {entry(c_ccs, c_key, s_ccs)}}}')
        return procs

    def stop(procs):
        for _, p in procs.values():
            p.kill()
            p.wait()

    print(f"client role: CPU ms per process (mean of {runs}), EDHOC+OSCORE GET / plain GET")
    for client in ("coap get", "aiocoap-client"):
        servers = start()
        try:
            for name, (port, _) in servers.items():
                uri = f"coap://127.0.0.1:{port}/hello"
                creds = str(d / f"client-{port}.diag")
                if client == "coap get":
                    sec, plain = [coap, "get", "--credentials", creds, uri], [coap, "get", uri]
                else:
                    base = str(aio / "aiocoap-client")
                    sec, plain = [base, "--credentials", creds, uri], [base, uri]
                t_sec = sum(child_cpu(sec) for _ in range(runs)) / runs
                t_plain = sum(child_cpu(plain) for _ in range(runs)) / runs
                print(f"  {client:15} -> {name:19} {t_sec * 1e3:8.1f} / {t_plain * 1e3:8.1f}"
                      f"   (EDHOC+OSCORE adds {(t_sec - t_plain) * 1e3:6.1f})")
        finally:
            stop(servers)

    print(f"server role: CPU ms per request in the server ({runs} `coap get` each)")
    servers = start()
    try:
        for name, (port, proc) in servers.items():
            uri = f"coap://127.0.0.1:{port}/hello"
            creds = str(d / f"client-{port}.diag")
            res = []
            for cmd in ([coap, "get", "--credentials", creds, uri], [coap, "get", uri]):
                before = proc_cpu(proc.pid)
                for _ in range(runs):
                    child_cpu(cmd)
                res.append((proc_cpu(proc.pid) - before) / runs)
            print(f"  {name:19} {res[0] * 1e3:8.2f} / {res[1] * 1e3:8.2f}"
                  f"   (EDHOC+OSCORE adds {(res[0] - res[1]) * 1e3:6.2f})")
    finally:
        stop(servers)


if __name__ == "__main__":
    main()
