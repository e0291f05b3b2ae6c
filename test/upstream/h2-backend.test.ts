import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { parseConfig } from '../../src/config/load.js';
import { ConfigError, type ConfigInput } from '../../src/index.js';
import { cleanupFor } from '../helpers/cleanup.js';
import { spawnCli } from '../helpers/cli.js';
import { localConfig, startConfigured } from '../helpers/config.js';
import { startH2Backend } from '../helpers/h2.js';
import { rawExchange } from '../helpers/raw.js';
import { makeTestPki, startTlsBackend, type TestPki } from '../helpers/tls.js';

let pki: TestPki;
before(async () => {
  pki = await makeTestPki();
});
after(() => pki.remove());

type UpstreamInput = ConfigInput['upstreams'][string];

function proxyTo(upstream: UpstreamInput) {
  return startConfigured({ config: localConfig({ web: upstream }) });
}

describe('upstream protocol h2c: HTTP/2 over cleartext with prior knowledge', () => {
  test('GET and POST arrive over HTTP/2 and the answer reaches an HTTP/1.1 client with its fields', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await startH2Backend('b', {
      handler: (req, res) => {
        const hash = createHash('sha256');
        req.on('data', (chunk: Buffer) => hash.update(chunk));
        req.on('end', () => {
          res.setHeader('x-method', req.method);
          res.setHeader('set-cookie', ['a=1', 'b=2']);
          res.writeHead(201);
          res.end(hash.digest('hex'));
        });
      },
    });
    cleanup(() => backend.close());
    const lb = await proxyTo({ backends: [backend.url], protocol: 'h2c' });
    cleanup(() => lb.close());
    const body = Buffer.alloc(3 * 1024 * 1024, 7);
    const post = await request(`${lb.url}/up`, { method: 'POST', body });
    assert.equal(post.statusCode, 201);
    assert.equal(post.headers['x-method'], 'POST');
    assert.deepEqual(post.headers['set-cookie'], ['a=1', 'b=2']);
    assert.equal(await post.body.text(), createHash('sha256').update(body).digest('hex'));
    // 64 KiB with its head spans two reads: a body read whole in chunks goes as one.
    const small = Buffer.from(Array.from({ length: 64 * 1024 }, (_, i) => i % 251));
    const smallPost = await request(`${lb.url}/up`, { method: 'POST', body: small });
    assert.equal(await smallPost.body.text(), createHash('sha256').update(small).digest('hex'));
    // Raw bytes: a status line with the standard reason (HTTP/2 has none), no pseudo-header as a field.
    const raw = await rawExchange(lb.address.port, 'GET /x HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n');
    assert.match(raw.head, /^HTTP\/1\.1 201 Created\r\n/);
    assert.equal(raw.head.includes(':status'), false);
    assert.deepEqual(backend.versions, ['2.0', '2.0', '2.0']);
  });

  test('connection-specific fields a client sends never reach an HTTP/2 backend (RFC 9113 §8.2.2)', async (t) => {
    const cleanup = cleanupFor(t);
    const seen: Record<string, unknown>[] = [];
    const backend = await startH2Backend('b', {
      handler: (req, res) => {
        seen.push({ ...req.headers });
        res.end('ok');
      },
    });
    cleanup(() => backend.close());
    const lb = await proxyTo({ backends: [backend.url], protocol: 'h2c' });
    cleanup(() => lb.close());
    // node:http2 throws on HTTP2-Settings (a leftover of an h2c upgrade): it must be dropped, not crash the proxy.
    const raw = await rawExchange(
      lb.address.port,
      'GET /s HTTP/1.1\r\nHost: a.test\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\nKeep-Alive: timeout=5\r\nTE: gzip, trailers\r\nX-Mixed-Case: 1\r\nX-Mixed-Case: 2\r\nConnection: close\r\n\r\n',
    );
    assert.equal(raw.status, 200);
    assert.equal(seen[0]?.['http2-settings'], undefined);
    assert.equal(seen[0]?.['keep-alive'], undefined);
    assert.equal(seen[0]?.['te'], 'trailers');
    assert.equal(seen[0]?.['x-mixed-case'], '1, 2');
  });

  test('concurrent requests share HTTP/2 connections, and a long upload in flight holds nothing back', async (t) => {
    const cleanup = cleanupFor(t);
    let releaseUpload: () => void = () => {};
    const uploadSeen = new Promise<void>((resolve) => {
      releaseUpload = resolve;
    });
    const backend = await startH2Backend('b', {
      handler: (req, res) => {
        if (req.url === '/upload') {
          releaseUpload();
          req.resume();
          req.on('end', () => res.end('uploaded'));
          return;
        }
        res.end(`got ${req.url}`);
      },
    });
    cleanup(() => backend.close());
    const lb = await proxyTo({ backends: [backend.url], protocol: 'h2c' });
    cleanup(() => lb.close());
    await request(`${lb.url}/warm`).then((res) => res.body.text());
    // A chunked upload that stays open until the other requests have their answers.
    let finishUpload: () => void = () => {};
    const uploadBody = Readable.from((async function* () {
      yield Buffer.from('first part');
      await new Promise<void>((resolve) => {
        finishUpload = resolve;
      });
      yield Buffer.from('last part');
    })());
    const upload = request(`${lb.url}/upload`, { method: 'POST', body: uploadBody });
    await uploadSeen;
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => request(`${lb.url}/r${i}`, { method: i % 2 === 0 ? 'GET' : 'POST', body: i % 2 === 0 ? null : 'small' }).then((res) => res.body.text())));
    assert.deepEqual(answers, Array.from({ length: 10 }, (_, i) => `got /r${i}`));
    finishUpload();
    assert.equal(await (await upload).body.text(), 'uploaded');
    assert.ok(backend.sessionsOpened() <= 3, `${backend.sessionsOpened()} connections for 12 requests`);
    assert.ok(backend.versions.every((v) => v === '2.0'));
  });

  test('a large response streams through with backpressure: a slow client holds the backend back', async (t) => {
    const cleanup = cleanupFor(t);
    const chunk = Buffer.alloc(64 * 1024, 'x');
    const chunks = 1024; // 64 MiB
    let written = 0;
    const backend = await startH2Backend('b', {
      handler: (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        let sent = 0;
        const pump = (): void => {
          while (sent < chunks) {
            sent++;
            written += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          res.end();
        };
        pump();
      },
    });
    cleanup(() => backend.close());
    const lb = await proxyTo({ backends: [backend.url], protocol: 'h2c' });
    cleanup(() => lb.close());
    const res = await request(`${lb.url}/big`);
    let received = 0;
    let maxAhead = 0;
    for await (const part of res.body) {
      received += (part as Buffer).length;
      maxAhead = Math.max(maxAhead, written - received);
      // A slow reader: a few event-loop turns per chunk, time enough for an unchecked backend to run ahead.
      for (let i = 0; i < 4; i++) await new Promise((resolve) => setImmediate(resolve));
    }
    assert.equal(received, chunk.length * chunks);
    // Flow-control windows and socket buffers along the way, not the whole response.
    assert.ok(maxAhead < 16 * 1024 * 1024, `the backend ran ${(maxAhead / 1048576).toFixed(1)} MiB ahead of the client`);
  });

  test('HTTP health checks speak h2c too: an HTTP/1.1-only backend fails them', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await startH2Backend('h2');
    cleanup(() => backend.close());
    const h1 = await startTlsBackend('h1', pki.local);
    cleanup(() => h1.close());
    const h1Plain = `http://127.0.0.1:${h1.port}`; // TLS server: an h2c preface gets no HTTP/2 answer
    const lb = await proxyTo({ backends: [backend.url, h1Plain], protocol: 'h2c', healthCheck: { type: 'http', path: '/healthz', interval: '1h', rise: 1, fall: 1, timeout: 2000 } });
    cleanup(() => lb.close());
    await lb.checkHealth();
    const [good, bad] = lb.upstream.backends;
    assert.equal(good?.up, true);
    assert.equal(bad?.up, false);
    assert.deepEqual(backend.paths.filter((p) => p === '/healthz').length >= 1, true);
    assert.ok(backend.versions.every((v) => v === '2.0'));
  });
});

describe('upstream protocol h2: HTTP/2 over TLS by ALPN', () => {
  test('requests and health checks arrive over HTTP/2; a backend without h2 gets HTTP/1.1', async (t) => {
    const cleanup = cleanupFor(t);
    const h2 = await startH2Backend('h2', { cert: pki.local, allowHTTP1: true });
    cleanup(() => h2.close());
    const h1 = await startTlsBackend('h1', pki.local);
    cleanup(() => h1.close());
    const lb = await proxyTo({
      backends: [h2.url, h1.url],
      protocol: 'h2',
      tls: { ca: pki.ca.caFile },
      healthCheck: { type: 'http', path: '/healthz', interval: '1h', rise: 1, fall: 1 },
    });
    cleanup(() => lb.close());
    await lb.checkHealth();
    assert.deepEqual(lb.upstream.backends.map((b) => b.up), [true, true]);
    const bodies = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const res = await request(`${lb.url}/p${i}`, { method: 'POST', body: `n${i}` });
      assert.equal(res.statusCode, 200);
      bodies.add(await res.body.text());
    }
    assert.deepEqual([...bodies].sort(), ['h1', 'h2']);
    assert.ok(h2.versions.length >= 4 && h2.versions.every((v) => v === '2.0'), h2.versions.join());
    assert.ok(h2.paths.includes('/healthz'));
  });

  test('the default TCP check of an h2-only backend offers h2 by ALPN, so the backend stays up', async (t) => {
    const cleanup = cleanupFor(t);
    const h2only = await startH2Backend('h2only', { cert: pki.local, allowHTTP1: false });
    cleanup(() => h2only.close());
    let alpnOffered: string[] = [];
    (h2only.server as import('node:tls').Server).prependListener('secureConnection', (socket: import('node:tls').TLSSocket) => {
      alpnOffered = [String(socket.alpnProtocol)];
    });
    const lb = await proxyTo({ backends: [h2only.url], protocol: 'h2', tls: { ca: pki.ca.caFile } });
    cleanup(() => lb.close());
    await lb.checkHealth();
    assert.deepEqual(alpnOffered, ['h2'], 'the check negotiated h2');
    assert.equal(lb.upstream.backends[0]?.up, true);
    assert.equal(await (await request(`${lb.url}/x`)).body.text(), 'h2only');
  });
});

describe('upstream protocol: configuration', () => {
  test('h2 with an http:// backend and h2c with an https:// one are refused at the backend', () => {
    assert.throws(
      () => parseConfig(JSON.stringify(localConfig({ web: { backends: ['http://127.0.0.1:1'], protocol: 'h2' } })), 'c.json'),
      (err: unknown) => err instanceof ConfigError && /upstreams\.web\.backends\.0.*h2 is HTTP\/2 over TLS.*use protocol h2c/s.test(err.message),
    );
    assert.throws(
      () => parseConfig(JSON.stringify(localConfig({ web: { backends: [{ url: 'https://127.0.0.1:1' }], protocol: 'h2c' } })), 'c.json'),
      (err: unknown) => err instanceof ConfigError && /upstreams\.web\.backends\.0\.url.*h2c is HTTP\/2 over cleartext/s.test(err.message),
    );
  });

  test('a reload that changes the protocol builds a new pool; the same protocol keeps it', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await startH2Backend('b', { cert: pki.local, allowHTTP1: true });
    cleanup(() => backend.close());
    const upstream: UpstreamInput = { backends: [backend.url], tls: { ca: pki.ca.caFile } };
    const lb = await proxyTo(upstream);
    cleanup(() => lb.close());
    await (await request(`${lb.url}/one`)).body.text();
    const before = lb.upstream.backends[0];
    const result = await lb.reload(localConfig({ web: { ...upstream, protocol: 'h2' } }));
    assert.equal(result.ok, true, result.error);
    const after = lb.upstream.backends[0];
    assert.notEqual(after, before, 'new protocol, new pool');
    assert.equal(after?.protocol, 'h2');
    await (await request(`${lb.url}/two`)).body.text();
    assert.deepEqual(backend.versions, ['1.1', '2.0']);
    assert.equal((await lb.reload(localConfig({ web: { ...upstream, protocol: 'h2' } }))).ok, true);
    assert.equal(lb.upstream.backends[0], after, 'same protocol: the backend and its pool are kept');
  });

  test('--backend-protocol h2c proxies over HTTP/2; a bad value is one line and exit 2', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await startH2Backend('cli');
    cleanup(() => backend.close());
    const cli = spawnCli(['--backends', backend.url, '--backend-protocol', 'h2c', '--port', '0', '--host', '127.0.0.1'], cleanup);
    const port = await cli.started();
    const res = await request(`http://127.0.0.1:${port}/x`);
    assert.equal(await res.body.text(), 'cli');
    assert.deepEqual(backend.versions, ['2.0']);
    const bad = spawnCli(['--backends', backend.url, '--backend-protocol', 'h3', '--port', '0'], cleanup);
    const [code] = await bad.exited;
    assert.equal(code, 2);
    assert.equal(bad.stderr(), 'switchyard: --backend-protocol: "h3" is not one of http1, h2, h2c (did you mean "h2"?)\n');
  });
});
