#!/usr/bin/env python3
# Usage: python3 bench/hostile_separate.py PATH/TO/coap
# One-off measurement (issue 26): `coap serve --plugtest`, 300 spoofed CON GETs of
# /separate from 127.77/16 (ten every 20 ms; the victims never acknowledge), then a
# legitimate client's CON GET /test every 200 ms for 100 s: how many got 5.03 and until when.
import socket, subprocess, sys, time, select, re
coap = sys.argv[1]
p = subprocess.Popen([coap, "serve", "--bind", "127.0.0.1:0", "--plugtest"],
                     stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
port = int(re.search(r"127\.0\.0\.1:(\d+)", p.stderr.readline()).group(1))
srv = ("127.0.0.1", port)
def req(mid, token, path):
    return bytes([0x40 | len(token), 0x01, mid >> 8, mid & 0xff]) + token + bytes([0xb0 | len(path)]) + path.encode()
victims = []
for k in range(300):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.77.%d.%d" % (k // 254, k % 254 + 1), 0)); s.setblocking(False)
    victims.append(s)
for k, s in enumerate(victims):
    s.sendto(req(k, k.to_bytes(2, "big"), "separate"), srv)
    if k % 10 == 9: time.sleep(0.02)
legit = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
legit.bind(("127.0.0.1", 0)); legit.setblocking(False)
t0 = time.time(); mid = 5000; sent = 0; busy = 0; ok = 0; last_busy = None
next_get = t0
while time.time() - t0 < 100:
    r, _, _ = select.select([legit] + victims, [], [], 0.05)
    for s in r:
        try:
            while True:
                b, _ = s.recvfrom(2048)
                if s is legit:
                    if b[1] == 0xa3: busy += 1; last_busy = time.time() - t0
                    elif b[1] == 0x45: ok += 1
        except BlockingIOError:
            pass
    if time.time() >= next_get:
        mid += 1; sent += 1
        legit.sendto(req(mid, b"lg", "test"), srv)
        next_get = time.time() + 0.2
print("GET /test sent %d: 2.05 %d, 5.03 %d, last 5.03 at %s s" % (sent, ok, busy, None if last_busy is None else round(last_busy, 1)))
p.kill()
