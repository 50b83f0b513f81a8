// A node-coap 1.5.0 client for the interop tests:
//   node node_client.js METHOD URI [--non] [--payload TEXT] [--format NAME]
// Prints the response as `key=value` lines: code, type (of the message that carried it),
// format (Content-Format as node-coap names it) and payload (hex).
const coap = require('coap')

const [method, uri, ...rest] = process.argv.slice(2)
const flag = (name) => { const i = rest.indexOf(name); return i >= 0 ? rest[i + 1] : undefined }
const u = new URL(uri)
const req = coap.request({
  hostname: u.hostname,
  port: Number(u.port || 5683),
  pathname: decodeURIComponent(u.pathname),
  method,
  confirmable: !rest.includes('--non'),
  agent: new coap.Agent({ type: 'udp4' })
})
const format = flag('--format')
if (format !== undefined) req.setOption('Content-Format', format)
req.on('response', (res) => {
  const p = res._packet
  const format = res.headers['Content-Format']
  console.log([
    'code=' + res.code,
    'type=' + (p.ack ? 'ACK' : p.reset ? 'RST' : p.confirmable ? 'CON' : 'NON'),
    'format=' + (format === undefined ? '' : String(format)),
    'payload=' + res.payload.toString('hex')
  ].join('\n'))
  process.exit(0)
})
req.on('error', (e) => { console.error('error: ' + e.message); process.exit(1) })
req.on('timeout', (e) => { console.error('timeout: ' + e.message); process.exit(1) })
// Every wait is bounded: give up after 8 s.
setTimeout(() => { console.error('no response within 8 s'); process.exit(1) }, 8000).unref()
const payload = flag('--payload')
req.end(payload === undefined ? undefined : Buffer.from(payload))
