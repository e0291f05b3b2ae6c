#!/usr/bin/env node
// The bisection's floor: node:http in front of one undici Pool per backend, round-robin, one
// handler object per request, raw header arrays, no features (no forwarding headers, retries,
// health, metrics). Usage: node bench/lean-forwarder.mjs --port P --backends URL,URL
import http from 'node:http';
import { Pool } from 'undici';

const flag = (name) => process.argv[process.argv.indexOf(name) + 1];
const pools = flag('--backends').split(',').map((url) => new Pool(url, { connections: null, pipelining: 1 }));
const hopByHop = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'proxy-connection']);
let next = 0;

class Forward {
  constructor(res) { this.res = res; }
  onConnect() {}
  onHeaders(status, raw, resume, statusText) {
    const headers = [];
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i].toString('latin1');
      if (!hopByHop.has(name.toLowerCase())) headers.push(name, raw[i + 1].toString('latin1'));
    }
    this.res.writeHead(status, statusText, headers);
    return true;
  }
  onData(chunk) { return this.res.write(chunk); }
  onComplete() { this.res.end(); }
  onError() {
    if (this.res.headersSent) this.res.destroy();
    else { this.res.writeHead(502, { 'content-length': '0' }); this.res.end(); }
  }
}

const server = http.createServer({ keepAliveTimeout: 60_000, noDelay: true }, (req, res) => {
  const pool = pools[next];
  next = (next + 1) % pools.length;
  const headers = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) if (!hopByHop.has(req.rawHeaders[i].toLowerCase())) headers.push(req.rawHeaders[i], req.rawHeaders[i + 1]);
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  pool.dispatch({ path: req.url, method: req.method, headers, body: hasBody ? req : null }, new Forward(res));
});
server.listen(Number(flag('--port')), '127.0.0.1');
process.on('SIGTERM', () => { server.close(); server.closeAllConnections(); for (const pool of pools) pool.close(); });
