"""Memory per idle CoAP-over-TCP connection (RFC 8323) of a running server: opens N
connections to 127.0.0.1:PORT, sends a CSM on each and reads the server's, then reports
the server's VmRSS before and after. `python3 bench/tcp_idle_memory.py PID PORT N`."""
import socket, sys, time, os
pid=int(sys.argv[1]); port=int(sys.argv[2]); n=int(sys.argv[3])
def rss(): 
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS"): return int(l.split()[1])
time.sleep(0.5); before=rss(); socks=[]
for i in range(n):
    s=socket.create_connection(("127.0.0.1",port)); s.sendall(b"\x00\xe1"); s.settimeout(5); s.recv(64); socks.append(s)
time.sleep(1); after=rss()
print(f"{n} idle coap+tcp connections: RSS {before} KiB -> {after} KiB, {(after-before)*1024/n:.0f} bytes per connection")
