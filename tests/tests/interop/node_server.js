// A node-coap 1.5.0 server for the interop tests: `node node_server.js PORT`.
// /hello GET; /store GET PUT POST DELETE; /echo POST (payload and Content-Format back);
// /large GET (8000 bytes, byte i = 33 + (7 * i + (i >> 8)) % 94; node-coap serves it
// block-wise); /.well-known/core; anything else 4.04. Prints "ready" once listening.
const coap = require('coap')

const port = Number(process.argv[2])
let stored = Buffer.from('initial')
const large = Buffer.alloc(8000)
for (let i = 0; i < large.length; i++) large[i] = 33 + (7 * i + (i >> 8)) % 94
const links = '</hello>;rt="test.hello";ct=0,</store>;rt="test.store",</echo>;rt="test.echo"'

function reply (res, code, payload, format) {
  res.code = code
  if (format !== undefined) res.setOption('Content-Format', format)
  res.end(payload)
}

const server = coap.createServer({ type: 'udp4' }, (req, res) => {
  const path = req.url.split('?')[0]
  const m = req.method
  if (path === '/hello' && m === 'GET') return reply(res, '2.05', 'Hello from node-coap', 'text/plain')
  if (path === '/hello') return reply(res, '4.05')
  if (path === '/store') {
    if (m === 'GET') return reply(res, '2.05', stored, 'text/plain')
    if (m === 'PUT') { stored = Buffer.from(req.payload); return reply(res, '2.04') }
    if (m === 'POST') { stored = Buffer.concat([stored, req.payload]); return reply(res, '2.01', stored, 'text/plain') }
    if (m === 'DELETE') { stored = Buffer.alloc(0); return reply(res, '2.02') }
    return reply(res, '4.05')
  }
  if (path === '/large' && m === 'GET') return reply(res, '2.05', large, 'text/plain')
  if (path === '/echo' && m === 'POST') return reply(res, '2.04', req.payload, req.headers['Content-Format'])
  if (path === '/.well-known/core' && m === 'GET') return reply(res, '2.05', links, 'application/link-format')
  return reply(res, '4.04')
})
server.listen(port, '127.0.0.1', () => console.log('ready'))
// The test kills this process; this bounds its life if the test runner died first.
setTimeout(() => process.exit(3), 120000).unref()
