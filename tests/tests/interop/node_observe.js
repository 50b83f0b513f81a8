// Observes a CoAP resource with node-coap 1.5.0 and prints each notification's payload,
// one per line, until COUNT (argv[3]) arrived; exits non-zero after 20 s.
const coap = require('coap');
const [uri, count] = [process.argv[2], parseInt(process.argv[3], 10)];
const u = new URL(uri);
const req = coap.request({ hostname: u.hostname, port: u.port, pathname: u.pathname, observe: true });
let seen = 0;
req.on('response', (res) => {
  res.on('data', (chunk) => {
    console.log(`${res.code} ${chunk.toString()}`);
    seen += 1;
    if (seen >= count) {
      res.close();
      process.exit(0);
    }
  });
});
req.on('error', (e) => { console.error(e); process.exit(2); });
req.end();
setTimeout(() => { console.error(`only ${seen} notifications`); process.exit(1); }, 20000);
