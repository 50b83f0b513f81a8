#!/usr/bin/env python3
# Usage: python3 bench/hostile_observers.py PATH/TO/coap [coap serve flags...]
# One-off measurement (issue 26): `coap serve` with its CLI defaults, 300 spoofed dead
# observers of /time on 127.77/16; how long until a legitimate client on 127.0.0.1 can
# register, how many of its GET /hello got 5.03 meanwhile, and what the victims received.
import socket, subprocess, sys, time, select, re
coap = sys.argv[1]
extra = sys.argv[2:]
p = subprocess.Popen([coap, "serve", "--bind", "127.0.0.1:0", "--threads", "1"] + extra,
                     stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
line = p.stderr.readline()
port = int(re.search(r"127\.0\.0\.1:(\d+)", line).group(1))
srv = ("127.0.0.1", port)

def req(mid, token, path, observe):
    b = bytes([0x40 | len(token), 0x01, mid >> 8, mid & 0xff]) + token
    last = 0
    if observe:
        b += bytes([0x60]); last = 6
    d = 11 - last
    b += bytes([(d << 4) | len(path)]) + path.encode()
    return b

def parse(b):
    ty = (b[0] >> 4) & 3; tkl = b[0] & 0xf; code = b[1]
    i = 4 + tkl; num = 0; observe = False
    while i < len(b) and b[i] != 0xff:
        d = b[i] >> 4; l = b[i] & 0xf; i += 1
        if d == 13: d = b[i] + 13; i += 1
        elif d == 14: d = (b[i] << 8 | b[i+1]) + 269; i += 2
        if l == 13: l = b[i] + 13; i += 1
        elif l == 14: l = (b[i] << 8 | b[i+1]) + 269; i += 2
        num += d
        if num == 6: observe = True
        i += l
    return ty, code, observe

victims = []
for k in range(300):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.77.%d.%d" % (k // 254, k % 254 + 1), 0))
    s.setblocking(False)
    victims.append(s)
for k, s in enumerate(victims):
    s.sendto(req(k, k.to_bytes(2, "big"), "time", True), srv)
legit = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
legit.bind(("127.0.0.1", 0)); legit.setblocking(False)
t0 = time.time(); vbytes = 0; vdgrams = 0
mid = 1000; gets = 0; busy = 0; registered_at = None; first_refused = None
next_get = t0; next_obs = t0 + 0.5
while time.time() - t0 < 120 and registered_at is None:
    r, _, _ = select.select(victims + [legit], [], [], 0.05)
    for s in r:
        try:
            while True:
                b, _ = s.recvfrom(2048)
                if s is legit:
                    ty, code, obs = parse(b)
                    if code == 0x45 and obs:
                        registered_at = time.time() - t0
                    elif code == 0x45 and b[4:6] == b"ob" and first_refused is None:
                        first_refused = time.time() - t0
                    elif code == 0xa3:
                        busy += 1
                else:
                    vbytes += len(b); vdgrams += 1
        except BlockingIOError:
            pass
    now = time.time()
    if now >= next_get:
        mid += 1; gets += 1
        legit.sendto(req(mid, b"ge", "hello", False), srv)
        next_get = now + 0.2
    if now >= next_obs and registered_at is None:
        mid += 1
        legit.sendto(req(mid, b"ob", "time", True), srv)
        next_obs = now + 1.0
print("extra flags:", extra or "(CLI defaults)")
print("legitimate client refused Observe first at %.1f s" % (first_refused or -1))
print("legitimate client registered at %s s" % (None if registered_at is None else round(registered_at, 1)))
print("GET /hello sent: %d, answered 5.03: %d" % (gets, busy))
print("victims received until then: %d datagrams, %d bytes" % (vdgrams, vbytes))
p.kill()
