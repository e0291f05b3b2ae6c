import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { request } from 'undici';
import { cleanupFor } from '../helpers/cleanup.js';
import { startBlackhole } from '../helpers/faults.js';
import { localConfig, startConfigured } from '../helpers/config.js';
import { startH2Backend } from '../helpers/h2.js';
import { rawExchange } from '../helpers/raw.js';

/** An h2c backend whose responses carry an `x-big` field of `bytes` bytes on /big. */
async function bigHeadBackend(t: Parameters<typeof cleanupFor>[0], bytes: number) {
  const backend = await startH2Backend('big', {
    handler: (req, res) => {
      req.resume();
      res.writeHead(200, req.url === '/big' ? { 'x-big': 'b'.repeat(bytes) } : {});
      res.end('ok');
    },
  });
  cleanupFor(t)(() => backend.close());
  return backend;
}

const get = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`;

describe('maxResponseHeaderSize applies to HTTP/2 backends', () => {
  test('a response head over the limit (16 KiB by default) is a protocol error: 502, not retried, the backend stays in', async (t) => {
    const backend = await bigHeadBackend(t, 20 * 1024);
    const lb = await startConfigured({ config: localConfig({ web: { backends: [backend.url], protocol: 'h2c' } }) });
    cleanupFor(t)(() => lb.close());
    const res = await rawExchange(lb.address.port, get('/big'));
    assert.equal(res.status, 502);
    assert.equal(backend.paths.filter((p) => p === '/big').length, 1, 'a protocol error is never retried');
    const entry = lb.logs.find((e) => String(e['msg']).startsWith('attempt to '));
    assert.equal(entry?.['kind'], 'protocol');
    assert.equal(entry?.['error'], 'UND_ERR_HEADERS_OVERFLOW');
    assert.equal((await rawExchange(lb.address.port, get('/small'))).status, 200);
  });

  test('a head of many small fields within the limit gets through, as over HTTP/1.1; too many is a protocol error', async (t) => {
    const backend = await startH2Backend('many', {
      handler: (req, res) => {
        req.resume();
        const count = req.url === '/many' ? 300 : 3000;
        for (let i = 0; i < count; i++) res.setHeader(`x-${i}`, 'v');
        res.end('ok');
      },
    });
    cleanupFor(t)(() => backend.close());
    const lb = await startConfigured({ config: localConfig({ web: { backends: [backend.url], protocol: 'h2c' } }) });
    cleanupFor(t)(() => lb.close());
    // Node's HTTP/2 client takes 128 fields by default: more were a stream reset, retried, then 502.
    const many = await rawExchange(lb.address.port, get('/many'));
    assert.equal(many.status, 200);
    assert.equal(many.headers.get('x-299')?.[0], 'v');
    const tooMany = await rawExchange(lb.address.port, get('/too-many'));
    assert.equal(tooMany.status, 502);
    const entry = lb.logs.find((e) => String(e['msg']).startsWith('attempt to '));
    assert.equal(entry?.['error'], 'UND_ERR_HEADERS_OVERFLOW');
  });

  test('a larger maxResponseHeaderSize lets it through', async (t) => {
    const backend = await bigHeadBackend(t, 20 * 1024);
    const lb = await startConfigured({ config: localConfig({ web: { backends: [backend.url], protocol: 'h2c', maxResponseHeaderSize: '32KiB' } }) });
    cleanupFor(t)(() => lb.close());
    const res = await rawExchange(lb.address.port, get('/big'));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-big')?.[0]?.length, 20 * 1024);
  });
});

test('a flood of interim responses from an HTTP/2 backend is a protocol error; a few are relayed', async (t) => {
  const backend = await startH2Backend('hints', {
    handler: (req, res) => {
      req.resume();
      const count = req.url === '/flood' ? 5000 : 3;
      for (let i = 0; i < count; i++) res.stream.additionalHeaders({ ':status': 103, link: '</a.css>; rel=preload' });
      res.end('ok');
    },
  });
  cleanupFor(t)(() => backend.close());
  const lb = await startConfigured({ config: localConfig({ web: { backends: [backend.url], protocol: 'h2c' } }) });
  cleanupFor(t)(() => lb.close());
  let hints = 0;
  const few = await request(`${lb.url}/few`, { onInfo: () => hints++ } as Parameters<typeof request>[1]);
  assert.equal(few.statusCode, 200);
  assert.equal(await few.body.text(), 'ok');
  assert.equal(hints, 3);
  const flood = await request(`${lb.url}/flood`);
  await flood.body.dump();
  assert.equal(flood.statusCode, 502);
  const entry = lb.logs.find((e) => String(e['msg']).startsWith('attempt to '));
  assert.equal(entry?.['kind'], 'protocol');
  assert.equal(lb.upstream.backends[0]?.up, true);
});

test('a stream an HTTP/2 backend resets with NO_ERROR mid-body is a cut response, never a complete one', async (t) => {
  const backend = await startH2Backend('short', {
    handler: (req, res) => {
      req.resume();
      res.writeHead(200, { 'content-length': '100' });
      // RST_STREAM NO_ERROR without END_STREAM: Node ends the client's readable side as for a whole body.
      res.write('partial', () => res.stream.close(0));
    },
  });
  cleanupFor(t)(() => backend.close());
  const lb = await startConfigured({ config: localConfig({ web: { backends: [backend.url], protocol: 'h2c' } }) });
  cleanupFor(t)(() => lb.close());
  // Before, the proxy ended the response after 7 of 100 bytes: the client waited for the rest.
  const res = await request(`${lb.url}/short`, { bodyTimeout: 5000 });
  assert.equal(res.statusCode, 200);
  await assert.rejects(res.body.text(), (err: Error & { code?: string }) => err.code !== 'UND_ERR_BODY_TIMEOUT');
  const entry = lb.logs.find((e) => String(e['msg']).startsWith('attempt to '));
  assert.equal(entry?.['error'], 'SWY_ERR_UPSTREAM_STREAM_RESET');
});

describe('HTTP/2 backend timeouts', () => {
  test('a connect timeout is a connect failure: a POST is retried, then moves to a live backend', async (t) => {
    const cleanup = cleanupFor(t);
    const blackhole = await startBlackhole({ fill: false });
    cleanup(() => blackhole.close());
    const live = await startH2Backend('live');
    cleanup(() => live.close());
    const lb = await startConfigured({
      config: localConfig({ web: { backends: [blackhole.url, live.url], protocol: 'h2c', timeouts: { connect: 150 }, retry: { retriesPerBackend: 1, retryDelay: 1 } } }),
    });
    cleanup(() => lb.close());
    await blackhole.fill();
    const res = await rawExchange(lb.address.port, 'POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbody');
    assert.equal(res.status, 200);
    assert.match(res.body.toString(), /live/);
    const kinds = lb.logs.filter((e) => String(e['msg']).startsWith(`attempt to ${blackhole.url}`)).map((e) => `${String(e['kind'])} ${String(e['error'])}`);
    assert.ok(kinds.length >= 1 && kinds.every((k) => k === 'connect UND_ERR_CONNECT_TIMEOUT'), kinds.join());
  });

  test('a backend that never answers is a timeout once responseHeaders has passed: 504', async (t) => {
    const cleanup = cleanupFor(t);
    const silent = await startH2Backend('silent', { handler: (req) => req.resume() });
    cleanup(() => silent.close());
    const lb = await startConfigured({
      config: localConfig({ web: { backends: [silent.url], protocol: 'h2c', timeouts: { responseHeaders: 150 }, retry: { retriesPerBackend: 0, maxBackends: 1 } } }),
    });
    cleanup(() => lb.close());
    const res = await rawExchange(lb.address.port, get('/slow'));
    assert.equal(res.status, 504);
    const entry = lb.logs.find((e) => String(e['msg']).startsWith('attempt to '));
    assert.equal(`${String(entry?.['kind'])} ${String(entry?.['error'])}`, 'timeout UND_ERR_HEADERS_TIMEOUT');
  });
});
