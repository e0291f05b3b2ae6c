import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import { installFastPath } from '../../src/server/h1/fast-path.js';
import { cleanupFor } from '../helpers/cleanup.js';

/**
 * The listener's own HTTP/1.1 path must put on the wire what node:http puts there for the same
 * handler calls. One handler serves two servers, node:http alone and node:http behind the fast
 * path; the same raw requests go to both and the bytes that come back are compared, with only
 * the Date values masked.
 */

type Res = http.ServerResponse;
const big = Buffer.alloc(100_000, 'b');

const handlers: Record<string, (res: Res, req: http.IncomingMessage) => void> = {
  '/echo': (res, req) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      res.writeHead(200, ['content-length', String(body.length), 'x-complete', String(req.complete)]);
      res.end(body);
    });
  },
  '/cl': (res) => {
    res.writeHead(200, ['content-type', 'text/plain', 'content-length', '5']);
    res.end('hello');
  },
  // One write per tick: node:http 24 joins the writes of one tick into one chunk, 20 does not.
  '/chunked': (res) => {
    res.writeHead(200, ['x-a', '1']);
    res.write('abc');
    setImmediate(() => {
      res.write(Buffer.from('defg'));
      setImmediate(() => res.end());
    });
  },
  '/end-chunk': (res) => {
    res.writeHead(200, ['x-a', '1']);
    res.end('xyz');
  },
  '/implicit': (res) => {
    res.end('implicit length');
  },
  '/204': (res) => {
    res.writeHead(204, ['x-b', '2']);
    res.end();
  },
  '/304': (res) => {
    res.writeHead(304, ['etag', '"v1"']);
    res.end();
  },
  '/reason': (res) => {
    res.writeHead(299, 'Custom Reason', ['content-length', '0']);
    res.end();
  },
  '/unknown-status': (res) => {
    res.writeHead(599, ['content-length', '0']);
    res.end();
  },
  '/trailers': (res) => {
    // Refused where the body cannot be chunked (HEAD, HTTP/1.0): both paths must throw alike.
    try {
      res.writeHead(200, ['trailer', 'x-t']);
    } catch {
      res.shouldKeepAlive = false;
      res.writeHead(502, 'Bad Gateway', ['content-length', '0']);
      res.end();
      return;
    }
    res.addTrailers({ 'x-t': 'v' });
    res.write('a');
    res.end();
  },
  '/big': (res) => {
    res.writeHead(200, ['content-length', String(big.length)]);
    res.write(big);
    res.end();
  },
  '/big-chunked': (res) => {
    res.writeHead(200, ['x-c', 'big']);
    res.write(big.subarray(0, 30_000));
    setImmediate(() => {
      res.write(big.subarray(30_000, 70_000));
      setImmediate(() => res.end(big.subarray(70_000)));
    });
  },
  '/date': (res) => {
    res.writeHead(200, ['date', 'Mon, 01 Jan 2024 00:00:00 GMT', 'content-length', '0']);
    res.end();
  },
  '/object': (res) => {
    res.writeHead(502, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength('Bad Gateway\n') });
    res.end('Bad Gateway\n');
  },
  '/cookies': (res) => {
    res.writeHead(200, ['set-cookie', 'a=1', 'set-cookie', 'b=2', 'content-length', '0']);
    res.end();
  },
  '/close': (res) => {
    res.shouldKeepAlive = false;
    res.writeHead(200, ['content-length', '2']);
    res.end('ok');
  },
  '/refused-name': (res) => refused(res, ['bad name', 'x']),
  '/refused-value': (res) => refused(res, ['x-v', 'a\r\nb']),
  '/refused-status': (res) => refused(res, [], 1000),
  '/refused-trailer': (res) => refused(res, ['trailer', 'x-t', 'content-length', '1']),
  '/hints': (res) => {
    res.writeEarlyHints({ link: ['</a.css>; rel=preload; as=style', '</b.js>; rel=preload'] });
    res.writeHead(200, ['content-length', '1']);
    res.end('h');
  },
};

/** Node refuses the head: the handler answers 502 instead, as the relay does. */
function refused(res: Res, fields: string[], status = 200): void {
  assert.throws(() => res.writeHead(status, fields));
  // node:http keeps state of the refused head (its reason phrase, "502 OK", and sometimes that the
  // connection closes); the fast path keeps none. Name both, so the paths can be compared.
  res.shouldKeepAlive = false;
  res.writeHead(502, 'Bad Gateway', ['content-length', '0']);
  res.end();
}

function handler(req: http.IncomingMessage, res: http.ServerResponse): void {
  const serve = handlers[req.url ?? ''];
  if (serve !== undefined) serve(res, req);
  else {
    res.writeHead(404, ['content-length', '0']);
    res.end();
  }
}

async function serverPair(cleanup: (fn: () => unknown) => void): Promise<{ plain: number; fast: number }> {
  const options = { keepAliveTimeout: 5000, noDelay: true };
  const plain = http.createServer(options, handler);
  const fast = http.createServer(options, handler);
  assert.notEqual(installFastPath(fast, handler as never, { maxHeaderBytes: 16384, headersTimeoutMs: 10_000, keepAliveTimeoutMs: 5000, requestTimeoutMs: 0 }), null);
  const ports: number[] = [];
  for (const server of [plain, fast]) {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanup(() => {
      server.closeAllConnections();
      server.close();
    });
    ports.push((server.address() as net.AddressInfo).port);
  }
  return { plain: ports[0] as number, fast: ports[1] as number };
}

/** Sends `bytes`, reads until the server closes (bounded), masks Date values. */
function exchange(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(bytes));
    const chunks: Buffer[] = [];
    socket.setTimeout(5000, () => socket.destroy(new Error(`no close within 5 s for ${JSON.stringify(bytes)}`)));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1').replace(/^Date: .*$/gim, 'Date: <masked>')));
  });
}

const shapes: Record<string, (path: string) => string> = {
  'HTTP/1.1 keep-alive, then a closing request': (path) => `GET ${path} HTTP/1.1\r\nHost: a\r\n\r\nGET /cl HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`,
  'HEAD over HTTP/1.1': (path) => `HEAD ${path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`,
  'HTTP/1.0': (path) => `GET ${path} HTTP/1.0\r\n\r\n`,
  'HTTP/1.0 keep-alive, then a closing request': (path) => `GET ${path} HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /cl HTTP/1.0\r\n\r\n`,
};

test('the fast path writes the same bytes as node:http for every response shape the proxy makes', async (t) => {
  const cleanup = cleanupFor(t);
  const { plain, fast } = await serverPair(cleanup);
  for (const [shape, request] of Object.entries(shapes)) {
    for (const path of Object.keys(handlers)) {
      const bytes = request(path);
      const [expected, actual] = await Promise.all([exchange(plain, bytes), exchange(fast, bytes)]);
      assert.equal(actual, expected, `${shape}: ${path}`);
    }
  }
});

test('requests the fast path does not serve reach node:http with every byte, pipelined or split', async (t) => {
  const cleanup = cleanupFor(t);
  const { plain, fast } = await serverPair(cleanup);
  const cases = [
    // A body after two plain requests: the connection moves to node:http mid-way.
    'GET /cl HTTP/1.1\r\nHost: a\r\n\r\nGET /chunked HTTP/1.1\r\nHost: a\r\n\r\nPOST /cl HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET /cl HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
    // Bodies: read whole, pipelined after each other, and one left unread before the next request.
    'POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloPUT /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\nPOST /cl HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nskipPOST /echo HTTP/1.0\r\nContent-Length: 2\r\n\r\nok',
    `POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: ${big.length}\r\nConnection: close\r\n\r\n${big.toString('latin1')}`,
    'GET /cl HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n',
    'GET /cl HTTP/1.1\r\nConnection: close\r\n\r\n',
    'GET /cl HTTP/1.1\r\nHost: a\r\nBad Name: x\r\nConnection: close\r\n\r\n',
    'GET /cl HTTP/1.1\nHost: a\r\nConnection: close\r\n\r\n',
    'GET /cl HTTP/1.1\r\nHost: a\r\n folded\r\nConnection: close\r\n\r\n',
    'GET /c l HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
    'BREW /cl HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
    'GET /cl HTTP/1.2\r\nHost: a\r\nConnection: close\r\n\r\n',
    'GET /cl HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\nConnection: close\r\n\r\n',
    'GET /cl HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nab',
    `GET /cl HTTP/1.1\r\nHost: a\r\nX-Big: ${'x'.repeat(20_000)}\r\nConnection: close\r\n\r\n`,
  ];
  for (const bytes of cases) {
    const [expected, actual] = await Promise.all([exchange(plain, bytes), exchange(fast, bytes)]);
    assert.equal(actual, expected, JSON.stringify(bytes.slice(0, 120)));
  }
});

test('a head split over several reads is answered once it is whole', async (t) => {
  const cleanup = cleanupFor(t);
  const { fast } = await serverPair(cleanup);
  const socket = net.connect(fast, '127.0.0.1');
  cleanup(() => socket.destroy());
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  socket.write('GET /cl HTTP/1.1\r\nHo');
  // The first piece is read on its own before the rest is sent.
  await new Promise<void>((resolve) => setImmediate(resolve));
  socket.write('st: a\r\nConnection: close\r\n\r\n');
  await closed;
  const text = Buffer.concat(chunks).toString('latin1');
  assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
  assert.ok(text.endsWith('\r\n\r\nhello'), text);
});
