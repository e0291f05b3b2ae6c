import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cleanupFor } from '../helpers/cleanup.js';
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

  test('a larger maxResponseHeaderSize lets it through', async (t) => {
    const backend = await bigHeadBackend(t, 20 * 1024);
    const lb = await startConfigured({ config: localConfig({ web: { backends: [backend.url], protocol: 'h2c', maxResponseHeaderSize: '32KiB' } }) });
    cleanupFor(t)(() => lb.close());
    const res = await rawExchange(lb.address.port, get('/big'));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-big')?.[0]?.length, 20 * 1024);
  });
});
