"""An aiocoap 0.4.17 server for the interop tests: `python aiocoap_server.py PORT`.

/hello GET; /store GET PUT POST DELETE; /echo POST (payload and Content-Format back);
/counter GET (observable, RFC 7641) POST (adds one and notifies every observer);
/.well-known/core from the Site (WKCResource); anything else 4.04 (aiocoap's Site), other
methods 4.05. Prints "ready" once bound.
"""

import asyncio
import sys

import aiocoap
import aiocoap.resource as resource
from aiocoap import Message
from aiocoap.numbers.codes import Code


class Hello(resource.Resource):
    def get_link_description(self):
        return dict(super().get_link_description(), rt="test.hello", ct="0")

    async def render_get(self, request):
        return Message(code=Code.CONTENT, payload=b"Hello from aiocoap", content_format=0)


class Store(resource.Resource):
    def __init__(self):
        super().__init__()
        self.value = b"initial"

    def get_link_description(self):
        return dict(super().get_link_description(), rt="test.store")

    async def render_get(self, request):
        return Message(code=Code.CONTENT, payload=self.value, content_format=0)

    async def render_put(self, request):
        self.value = request.payload
        return Message(code=Code.CHANGED)

    async def render_post(self, request):
        self.value += request.payload
        return Message(code=Code.CREATED, payload=self.value, content_format=0)

    async def render_delete(self, request):
        self.value = b""
        return Message(code=Code.DELETED)


class Echo(resource.Resource):
    def get_link_description(self):
        return dict(super().get_link_description(), rt="test.echo")

    async def render_post(self, request):
        response = Message(code=Code.CHANGED, payload=request.payload)
        response.opt.content_format = request.opt.content_format
        return response


class Counter(resource.ObservableResource):
    """aiocoap keys its observers by request token, so one client may observe it many
    times (RFC 7641 §4.1)."""

    def __init__(self):
        super().__init__()
        self.count = 0

    async def render_get(self, request):
        return Message(code=Code.CONTENT, payload=str(self.count).encode(), content_format=0)

    async def render_post(self, request):
        self.count += 1
        self.updated_state()
        return Message(code=Code.CHANGED, payload=str(self.count).encode(), content_format=0)


async def main(port):
    site = resource.Site()
    site.add_resource([".well-known", "core"], resource.WKCResource(site.get_resources_as_linkheader))
    site.add_resource(["hello"], Hello())
    site.add_resource(["store"], Store())
    site.add_resource(["echo"], Echo())
    site.add_resource(["counter"], Counter())
    await aiocoap.Context.create_server_context(site, bind=("127.0.0.1", port))
    print("ready", flush=True)
    # The test kills this process; this bounds its life if the test runner died first.
    await asyncio.sleep(120)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
