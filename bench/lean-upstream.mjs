#!/usr/bin/env node
// Prototype, for the bench only (issue 12, "a leaner HTTP/1 data path"): node:http downstream, and
// upstream a minimal HTTP/1.1 client instead of undici for the common case: keep-alive to a plain
// backend, a response framed by Content-Length. Per backend a last-in-first-out stack of idle
// sockets; the request head is one string and one write; the response head is parsed once from
// the first chunk. Anything else (chunked, no length, 1xx, a head split over reads) answers 502:
// a product version would hand those to undici. Not safe for production: see docs/performance.md.
//   node bench/lean-upstream.mjs --port P --backends URL,URL
import http from 'node:http';
import net from 'node:net';

const flag = (name) => process.argv[process.argv.indexOf(name) + 1];
const backends = flag('--backends').split(',').map((text) => {
  const url = new URL(text);
  return { host: url.hostname, port: Number(url.port || 80), idle: [] };
});
const hopByHop = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'proxy-connection']);
let next = 0;

/** One exchange on one upstream socket: parses the head, relays the body, gives the socket back. */
class Upstream {
  constructor(backend, socket) {
    this.backend = backend;
    this.socket = socket;
    this.res = null;
    this.left = -1;
    socket.on('data', (chunk) => this.onData(chunk));
    socket.on('error', () => this.fail());
    socket.on('close', () => this.fail());
  }

  send(req, res) {
    this.res = res;
    this.left = -1;
    let head = `${req.method} ${req.url} HTTP/1.1\r\n`;
    const raw = req.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) if (!hopByHop.has(raw[i].toLowerCase())) head += `${raw[i]}: ${raw[i + 1]}\r\n`;
    this.socket.write(`${head}\r\n`, 'latin1');
  }

  onData(chunk) {
    const res = this.res;
    if (res === null) return this.socket.destroy();
    if (this.left < 0) {
      const end = chunk.indexOf('\r\n\r\n');
      if (end < 0) return this.fail();
      const lines = chunk.latin1Slice(0, end).split('\r\n');
      const status = Number(lines[0].slice(9, 12));
      const headers = [];
      let length = -1;
      for (let i = 1; i < lines.length; i++) {
        const line = lines[i];
        const colon = line.indexOf(':');
        const name = line.slice(0, colon);
        const value = line.slice(colon + 1).trim();
        const lower = name.toLowerCase();
        if (lower === 'content-length') length = Number(value);
        if (!hopByHop.has(lower)) headers.push(name, value);
      }
      if (length < 0 || status < 200) return this.fail();
      this.left = length;
      res.writeHead(status, headers);
      chunk = chunk.subarray(end + 4);
    }
    this.left -= chunk.length;
    if (this.left === 0) {
      this.res = null;
      this.backend.idle.push(this);
      if (chunk.length > 0) res.end(chunk);
      else res.end();
    } else if (chunk.length > 0 && !res.write(chunk)) {
      this.socket.pause();
      res.once('drain', () => this.socket.resume());
    }
  }

  fail() {
    const res = this.res;
    this.res = null;
    const at = this.backend.idle.indexOf(this);
    if (at >= 0) this.backend.idle.splice(at, 1);
    this.socket.destroy();
    if (res === null) return;
    if (res.headersSent) res.destroy();
    else res.writeHead(502, { 'content-length': '0' }).end();
  }
}

const server = http.createServer({ keepAliveTimeout: 60_000, noDelay: true }, (req, res) => {
  const backend = backends[next];
  next = (next + 1) % backends.length;
  if (req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined) {
    // Request bodies are out of this prototype's scope.
    res.writeHead(501, { 'content-length': '0' }).end();
    return;
  }
  const upstream = backend.idle.pop() ?? new Upstream(backend, net.connect({ host: backend.host, port: backend.port, noDelay: true }));
  upstream.send(req, res);
});
server.listen(Number(flag('--port')), '127.0.0.1');
process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  for (const backend of backends) for (const upstream of backend.idle) upstream.socket.destroy();
});
