"""An aiocoap 0.4.17 server over CoAP over TCP or WebSockets (RFC 8323: its `tcpserver`
or `ws` transport) for tests/tests/tcp.rs and ws.rs: `python aiocoap_tcp_server.py PORT
[TRANSPORT]` (TRANSPORT `tcpserver` by default; `ws` listens on PORT + 3000, aiocoap's rule).

/hello GET; /large GET (3000 bytes: more than our Max-Message-Size of 1152, so aiocoap
must send it block-wise); /counter GET, observable, counting up every 0.2 s. Prints
"ready" once bound.
"""

import asyncio
import sys

import aiocoap
import aiocoap.resource as resource
from aiocoap import Message
from aiocoap.numbers.codes import Code

LARGE = bytes((i * 7 + 3) % 251 for i in range(3000))


class Hello(resource.Resource):
    async def render_get(self, request):
        return Message(code=Code.CONTENT, payload=b"Hello over TCP from aiocoap", content_format=0)


class Large(resource.Resource):
    async def render_get(self, request):
        return Message(code=Code.CONTENT, payload=LARGE, content_format=42)


class Counter(resource.ObservableResource):
    def __init__(self):
        super().__init__()
        self.count = 0

    async def tick(self):
        while True:
            await asyncio.sleep(0.2)
            self.count += 1
            self.updated_state()

    async def render_get(self, request):
        return Message(code=Code.CONTENT, payload=str(self.count).encode(), content_format=0)


async def main(port, transport):
    site = resource.Site()
    site.add_resource(["hello"], Hello())
    site.add_resource(["large"], Large())
    counter = Counter()
    site.add_resource(["counter"], counter)
    await aiocoap.Context.create_server_context(
        site, bind=("127.0.0.1", port), transports=[transport]
    )
    asyncio.get_running_loop().create_task(counter.tick())
    print("ready", flush=True)
    # The test kills this process; this bounds its life if the test runner died first.
    await asyncio.sleep(120)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "tcpserver"))
