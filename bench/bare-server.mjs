#!/usr/bin/env node
// Node's floor: a node:http server that answers every request itself, the way the bench's
// backends do (`ok from bN`), with no upstream. Takes (and ignores) --backends so that
// bench/measure.mjs can start it in place of a proxy.
//   node bench/bare-server.mjs --port P [--backends …]
import http from 'node:http';

const port = Number(process.argv[process.argv.indexOf('--port') + 1]);
const body = Buffer.from('ok from b1\n');
const server = http.createServer({ keepAliveTimeout: 60_000, noDelay: true }, (req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length, 'x-backend': 'b1' });
  res.end(body);
});
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => { server.close(); server.closeAllConnections(); });
