import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { request } from 'undici';
import { cleanupFor } from '../helpers/cleanup.js';
import { localConfig, startConfigured } from '../helpers/config.js';
import { echo, openWs, startWsBackend, wsUrl } from '../helpers/ws.js';

/**
 * An h2c backend (stream API) allowing `maxStreams` streams per connection. `onStream` answers
 * or holds each stream once its body is read; sessions are numbered from 1 in order of arrival.
 */
async function h2cBackend(maxStreams: number, onStream: (stream: http2.ServerHttp2Stream, path: string, session: number) => void) {
  const server = http2.createServer({ settings: { maxConcurrentStreams: maxStreams } });
  const sessions = new Map<http2.ServerHttp2Session, number>();
  const closed: number[] = [];
  let onClosed: () => void = () => {};
  server.on('session', (session) => {
    session.on('error', () => {});
    session.on('close', () => {
      if (!sessions.has(session)) return;
      closed.push(sessions.get(session) ?? 0);
      onClosed();
    });
  });
  server.on('stream', (stream, headers) => {
    // Numbered by their first stream: a TCP health check's connection carries none.
    if (!sessions.has(stream.session as http2.ServerHttp2Session)) sessions.set(stream.session as http2.ServerHttp2Session, sessions.size + 1);
    stream.on('error', () => {});
    stream.resume();
    stream.on('end', () => onStream(stream, String(headers[':path']), sessions.get(stream.session as http2.ServerHttp2Session) ?? 0));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    sessionsOpened: () => sessions.size,
    closed,
    /** Resolves once `n` sessions have closed, or rejects after 5 s. */
    closedCount: (n: number) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${closed.length} of ${n} sessions closed within 5 s`)), 5000);
        onClosed = () => {
          if (closed.length < n) return;
          clearTimeout(timer);
          resolve();
        };
        onClosed();
      }),
    close: () =>
      new Promise<void>((resolve) => {
        for (const session of sessions.keys()) session.destroy();
        server.close(() => resolve());
      }),
  };
}

const answer = (stream: http2.ServerHttp2Stream, text: string): void => {
  if (stream.destroyed) return;
  stream.respond({ ':status': 200 });
  stream.end(text);
};

describe('HTTP/2 connections to a backend', () => {
  test("streams beyond the backend's SETTINGS_MAX_CONCURRENT_STREAMS go on new connections", async (t) => {
    const cleanup = cleanupFor(t);
    const held: [http2.ServerHttp2Stream, number][] = [];
    const backend = await h2cBackend(2, (stream, path, session) => {
      if (path === '/warm') return answer(stream, 'warm');
      held.push([stream, session]);
      // All five must be open at once: with two streams per connection that takes three.
      if (held.length === 5) for (const [s, n] of held) answer(s, `s${n}`);
    });
    cleanup(() => backend.close());
    const lb = await startConfigured({ config: localConfig({ web: { backends: [backend.url], protocol: 'h2c' } }) });
    cleanup(() => lb.close());
    // The first connection learns the backend's limit from its SETTINGS.
    assert.equal(await (await request(`${lb.url}/warm`)).body.text(), 'warm');
    const answers = await Promise.all(Array.from({ length: 5 }, (_, i) => request(`${lb.url}/r${i}`).then((res) => res.body.text())));
    assert.equal(backend.sessionsOpened(), 3);
    assert.deepEqual(answers.sort(), ['s1', 's1', 's2', 's2', 's3']);
  });

  test('an idle connection closes after timeouts.upstreamKeepAlive', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await h2cBackend(100, (stream) => answer(stream, 'ok'));
    cleanup(() => backend.close());
    const lb = await startConfigured({ config: localConfig({ web: { backends: [backend.url], protocol: 'h2c', timeouts: { upstreamKeepAlive: 100 } } }) });
    cleanup(() => lb.close());
    assert.equal(await (await request(`${lb.url}/`)).body.text(), 'ok');
    await backend.closedCount(1);
    assert.deepEqual(backend.closed, [1]);
    // The next request opens a new connection.
    assert.equal(await (await request(`${lb.url}/`)).body.text(), 'ok');
    assert.equal(backend.sessionsOpened(), 2);
  });

  test("a connection that fails fails only its own streams", async (t) => {
    const cleanup = cleanupFor(t);
    const held: [http2.ServerHttp2Stream, string, number][] = [];
    const backend = await h2cBackend(1, (stream, path, session) => {
      if (path === '/warm') return answer(stream, 'warm');
      held.push([stream, path, session]);
      if (held.length < 2) return;
      // Two POSTs, one per connection: the connection of /dies drops, the other answers.
      for (const [s, p] of held) {
        if (p === '/dies') s.session?.destroy();
        else answer(s, 'lives');
      }
    });
    cleanup(() => backend.close());
    const lb = await startConfigured({ config: localConfig({ web: { backends: [backend.url], protocol: 'h2c', retry: { retriesPerBackend: 0, maxBackends: 1 } } }) });
    cleanup(() => lb.close());
    assert.equal(await (await request(`${lb.url}/warm`)).body.text(), 'warm');
    const [dies, lives] = await Promise.all(['/dies', '/lives'].map((path) => request(`${lb.url}${path}`, { method: 'POST', body: 'x' })));
    assert.equal(dies?.statusCode, 502);
    await dies?.body.dump();
    assert.equal(lives?.statusCode, 200);
    assert.equal(await lives?.body.text(), 'lives');
  });

  test('a connection that drops mid-response cuts the client\'s response, never ends it as complete', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await h2cBackend(100, (stream) => {
      stream.respond({ ':status': 200 });
      // Part of a body, then the connection goes: Node ends the stream's readable side all the same.
      stream.write('part', () => stream.session?.destroy());
    });
    cleanup(() => backend.close());
    const lb = await startConfigured({ config: localConfig({ web: { backends: [backend.url], protocol: 'h2c' } }) });
    cleanup(() => lb.close());
    const res = await request(`${lb.url}/`);
    assert.equal(res.statusCode, 200);
    await assert.rejects(res.body.text());
  });
});

describe('WebSocket upgrades in an HTTP/2 upstream', () => {
  test('go to the backend over HTTP/1.1 (no extended CONNECT): the tunnel echoes', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await startWsBackend();
    cleanup(() => backend.close());
    const lb = await startConfigured({ config: localConfig({ web: { backends: [backend.url], protocol: 'h2c' } }) });
    cleanup(() => lb.close());
    const ws = await openWs(wsUrl(lb.url));
    cleanup(() => ws.terminate());
    assert.equal(await echo(ws, 'over http/1.1'), 'over http/1.1');
    assert.equal(backend.handshakes.length, 1);
  });
});

describe('request bodies to an HTTP/2 backend', () => {
  test('a large upload streams with backpressure: a slow backend holds the client back', async (t) => {
    const cleanup = cleanupFor(t);
    const chunk = Buffer.alloc(64 * 1024, 'u');
    const chunks = 1024; // 64 MiB
    let produced = 0;
    let consumed = 0;
    let maxAhead = 0;
    const server = http2.createServer();
    server.on('session', (session) => session.on('error', () => {}));
    server.on('stream', (stream) => {
      stream.on('error', () => {});
      void (async () => {
        for await (const part of stream) {
          consumed += (part as Buffer).length;
          maxAhead = Math.max(maxAhead, produced - consumed);
          // A slow reader: a few event-loop turns per chunk, time enough for an unchecked proxy to run ahead.
          for (let i = 0; i < 4; i++) await new Promise((resolve) => setImmediate(resolve));
        }
        stream.respond({ ':status': 200 });
        stream.end(String(consumed));
      })();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanup(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const lb = await startConfigured({ config: localConfig({ web: { backends: [`http://127.0.0.1:${(server.address() as AddressInfo).port}`], protocol: 'h2c' } }) });
    cleanup(() => lb.close());
    const body = Readable.from((async function* () {
      for (let i = 0; i < chunks; i++) {
        produced += chunk.length;
        yield chunk;
      }
    })());
    const res = await request(`${lb.url}/upload`, { method: 'POST', body });
    assert.equal(await res.body.text(), String(chunk.length * chunks));
    // Flow-control windows and socket buffers along the way, not the whole body.
    assert.ok(maxAhead < 16 * 1024 * 1024, `the client ran ${(maxAhead / 1048576).toFixed(1)} MiB ahead of the backend`);
  });
});
