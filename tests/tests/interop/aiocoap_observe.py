"""Observes a CoAP resource with aiocoap and prints each notification's payload, one per
line, until COUNT notifications (argv[2]) arrived. aiocoap-client --observe of 0.4.17
stops after the first response, so this iterates `request.observation` itself."""
import asyncio
import sys

import aiocoap


async def main(uri: str, count: int) -> None:
    ctx = await aiocoap.Context.create_client_context()
    request = aiocoap.Message(code=aiocoap.GET, uri=uri, observe=0)
    req = ctx.request(request)
    first = await req.response
    print(f"{first.code} {first.opt.observe} {first.payload.decode()}", flush=True)
    seen = 1
    async for n in req.observation:
        print(f"{n.code} {n.opt.observe} {n.payload.decode()}", flush=True)
        seen += 1
        if seen >= count:
            req.observation.cancel()
            break
    await ctx.shutdown()


asyncio.run(asyncio.wait_for(main(sys.argv[1], int(sys.argv[2])), 20))
