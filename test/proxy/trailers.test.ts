import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { request } from 'undici';
import { cleanupFor } from '../helpers/cleanup.js';
import { localConfig, startConfigured } from '../helpers/config.js';
import { startH2Backend } from '../helpers/h2.js';
import { rawExchange } from '../helpers/raw.js';
import { startBackend } from '../helpers/servers.js';

/** Switchyard in front of one backend, one try per request. */
function proxyTo(url: string, protocol: 'http1' | 'h2c' = 'http1') {
  return startConfigured({ config: localConfig({ web: { backends: [url], protocol, retry: { retriesPerBackend: 0, maxBackends: 1 } } }) });
}

const getClose = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: app.test\r\n${extra}Connection: close\r\n\r\n`;

/** An HTTP/1.1 backend answering one chunk of `body` then `trailers`, recording the TE it was sent. */
async function trailingH1Backend(body: string, trailers: Record<string, string>, seenTe: (string | undefined)[]) {
  return startBackend('t', (req, res) => {
    seenTe.push(req.headers.te as string | undefined);
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain', trailer: Object.keys(trailers).join(', ') });
      res.write(body);
      res.addTrailers(trailers);
      res.end();
    });
  });
}

describe('response trailers from an HTTP/1.1 backend', () => {
  test('reach an HTTP/1.1 client in the chunked trailer section, forbidden fields dropped, byte for byte', async (t) => {
    const cleanup = cleanupFor(t);
    const seenTe: (string | undefined)[] = [];
    const backend = await trailingH1Backend('hello world', { 'X-Checksum': 'abc123', 'Content-Type': 'text/evil', 'Set-Cookie': 'late=1', 'Grpc-Status': '0' }, seenTe);
    cleanup(() => backend.close());
    const lb = await proxyTo(backend.url);
    cleanup(() => lb.close());
    const raw = await rawExchange(lb.address.port, getClose('/t', 'TE: trailers\r\n'));
    assert.equal(raw.status, 200);
    assert.deepEqual(raw.headers.get('transfer-encoding'), ['chunked']);
    assert.deepEqual(raw.headers.get('content-type'), ['text/plain']);
    assert.equal(raw.body.toString('latin1'), 'b\r\nhello world\r\n0\r\nx-checksum: abc123\r\ngrpc-status: 0\r\n\r\n');
    assert.deepEqual(seenTe, ['trailers']);
  });

  test('an undici client reads them; without TE from the client they are still sent', async (t) => {
    const cleanup = cleanupFor(t);
    const seenTe: (string | undefined)[] = [];
    const backend = await trailingH1Backend('data', { 'x-sum': '42' }, seenTe);
    cleanup(() => backend.close());
    const lb = await proxyTo(backend.url);
    cleanup(() => lb.close());
    const res = await request(`${lb.url}/t`);
    assert.equal(await res.body.text(), 'data');
    assert.deepEqual(res.trailers, { 'x-sum': '42' });
    assert.deepEqual(seenTe, [undefined]);
  });

  test('an HTTP/1.0 client gets the body without chunking and without trailers', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await trailingH1Backend('old client', { 'x-sum': '1' }, []);
    cleanup(() => backend.close());
    const lb = await proxyTo(backend.url);
    cleanup(() => lb.close());
    const raw = await rawExchange(lb.address.port, 'GET /t HTTP/1.0\r\nHost: app.test\r\n\r\n');
    assert.equal(raw.status, 200);
    assert.equal(raw.body.toString('latin1'), 'old client');
  });
});

describe('request trailers and TE', () => {
  test('a chunked request with trailers: the body arrives whole, its trailers reach an HTTP/1.1 backend but those RFC 9110 §6.5.1 forbids', async (t) => {
    const cleanup = cleanupFor(t);
    const seen: { body: string; trailers: Record<string, string> }[] = [];
    const backend = await startBackend('r', (req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      req.on('end', () => {
        seen.push({ body, trailers: { ...req.trailers } as Record<string, string> });
        res.end('ok');
      });
    });
    cleanup(() => backend.close());
    const lb = await proxyTo(backend.url);
    cleanup(() => lb.close());
    const raw = await rawExchange(lb.address.port, [
      'POST /up HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\nTrailer: X-Digest\r\nConnection: close\r\n\r\n',
      '5\r\nhello\r\n0\r\nX-Digest: d1\r\nHost: evil.test\r\nContent-Type: text/evil\r\nX-Second: 2\r\n\r\n',
    ]);
    assert.equal(raw.status, 200);
    assert.deepEqual(seen, [{ body: 'hello', trailers: { 'x-digest': 'd1', 'x-second': '2' } }]);
  });
});

describe('response trailers from an HTTP/2 backend', () => {
  test('trailing HEADERS reach an HTTP/1.1 client as chunked trailers; TE: trailers reached the backend', async (t) => {
    const cleanup = cleanupFor(t);
    const seenTe: (string | undefined)[] = [];
    const backend = await startH2Backend('h2', {
      handler: (req, res) => {
        seenTe.push(req.headers.te as string | undefined);
        res.writeHead(200, { 'content-type': 'application/grpc' });
        res.write(Buffer.from([0, 0, 0, 0, 1, 0x2a]));
        res.addTrailers({ 'grpc-status': '0', 'grpc-message': 'fine', 'content-length': '6' });
        res.end();
      },
    });
    cleanup(() => backend.close());
    const lb = await proxyTo(backend.url, 'h2c');
    cleanup(() => lb.close());
    const raw = await rawExchange(lb.address.port, getClose('/svc/Method', 'TE: trailers\r\n'));
    assert.equal(raw.status, 200);
    assert.deepEqual(raw.headers.get('transfer-encoding'), ['chunked']);
    assert.deepEqual(raw.body, Buffer.concat([Buffer.from('6\r\n'), Buffer.from([0, 0, 0, 0, 1, 0x2a]), Buffer.from('\r\n0\r\ngrpc-status: 0\r\ngrpc-message: fine\r\n\r\n')]));
    assert.deepEqual(seenTe, ['trailers']);
    // An undici client over HTTP/1.1 sees the same.
    const res = await request(`${lb.url}/svc/Method`, { headers: { te: 'trailers' } });
    await res.body.arrayBuffer();
    assert.deepEqual(res.trailers, { 'grpc-status': '0', 'grpc-message': 'fine' });
  });

  test('a trailers-only response (HEADERS with END_STREAM) is a head without a body on HTTP/1.1', async (t) => {
    const cleanup = cleanupFor(t);
    const server = http2.createServer();
    server.on('stream', (stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '5', 'grpc-message': 'not found' }, { endStream: true });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanup(() => new Promise((resolve) => server.close(resolve)));
    const lb = await proxyTo(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, 'h2c');
    cleanup(() => lb.close());
    const raw = await rawExchange(lb.address.port, getClose('/svc/Missing', 'TE: trailers\r\n'));
    assert.equal(raw.status, 200);
    assert.deepEqual(raw.headers.get('grpc-status'), ['5']);
    assert.deepEqual(raw.headers.get('grpc-message'), ['not found']);
    const rest = raw.body.toString('latin1');
    assert.ok(rest === '0\r\n\r\n' || rest === '', JSON.stringify(rest));
  });

  test('a response with Content-Length ends without its trailers, the body intact', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await startH2Backend('h2', {
      handler: (_req, res) => {
        res.writeHead(200, { 'content-length': '5' });
        res.write('exact');
        res.addTrailers({ 'x-late': '1' });
        res.end();
      },
    });
    cleanup(() => backend.close());
    const lb = await proxyTo(backend.url, 'h2c');
    cleanup(() => lb.close());
    const raw = await rawExchange(lb.address.port, getClose('/cl'));
    assert.deepEqual(raw.headers.get('content-length'), ['5']);
    assert.equal(raw.body.toString('latin1'), 'exact');
  });
});

