import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { request } from 'undici';
import { cleanupFor } from '../helpers/cleanup.js';
import { localConfig, startConfigured } from '../helpers/config.js';

interface Arrival {
  readonly path: string;
  readonly method: string;
  readonly body: string;
  readonly session: number;
}

/**
 * An h2c backend (node:http2, stream API) whose `decide` sees each stream with its body read and
 * answers it or not; sessions are numbered from 1 in the order their first stream arrives.
 */
async function h2cBackend(decide: (stream: http2.ServerHttp2Stream, arrival: Arrival, all: Arrival[]) => void) {
  const server = http2.createServer();
  const arrivals: Arrival[] = [];
  const sessions = new Map<http2.ServerHttp2Session, number>();
  const open = new Set<http2.ServerHttp2Session>();
  server.on('session', (session) => {
    open.add(session);
    session.on('error', () => {});
  });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    // Numbered by their first stream: a TCP health check's connection carries none.
    const session = stream.session as http2.ServerHttp2Session;
    if (!sessions.has(session)) sessions.set(session, sessions.size + 1);
    let body = '';
    stream.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
    stream.on('end', () => {
      const arrival = { path: String(headers[':path']), method: String(headers[':method']), body, session: sessions.get(stream.session as http2.ServerHttp2Session) ?? 0 };
      arrivals.push(arrival);
      decide(stream, arrival, arrivals);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    arrivals,
    close: () =>
      new Promise<void>((resolve) => {
        for (const session of open) session.destroy();
        server.close(() => resolve());
      }),
  };
}

const answer = (stream: http2.ServerHttp2Stream, text: string): void => {
  if (stream.destroyed || stream.closed) return;
  stream.respond({ ':status': 200 });
  stream.end(text);
};

/** One h2c backend, outlier detection that ejects at the first counted failure, and the request log. */
async function proxy(url: string) {
  return startConfigured({
    config: localConfig({
      web: { backends: [url], protocol: 'h2c', outlierDetection: { consecutiveFailures: 1 }, retry: { retriesPerBackend: 2, retryDelay: 1 } },
    }),
  });
}

describe('an HTTP/2 backend refusing a stream (RST_STREAM REFUSED_STREAM) is not a failure', () => {
  test('a refused POST is sent again, whatever its method, and the backend stays in', async (t) => {
    const cleanup = cleanupFor(t);
    let refused = 0;
    const backend = await h2cBackend((stream, arrival) => {
      if (refused === 0) {
        refused++;
        stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
        return;
      }
      answer(stream, `took ${arrival.body}`);
    });
    cleanup(() => backend.close());
    const lb = await proxy(backend.url);
    cleanup(() => lb.close());
    const res = await request(`${lb.url}/orders`, { method: 'POST', body: 'order-1' });
    assert.equal(res.statusCode, 200);
    assert.equal(await res.body.text(), 'took order-1');
    assert.deepEqual(backend.arrivals.map((a) => `${a.method} ${a.body}`), ['POST order-1', 'POST order-1']);
    const [b] = lb.upstream.backends;
    assert.equal(b?.downReasons, 0);
    assert.equal(b?.failuresTotal, 0);
  });

  test('a backend that refuses every stream is answered 503 and is neither ejected nor marked down', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await h2cBackend((stream) => stream.close(http2.constants.NGHTTP2_REFUSED_STREAM));
    cleanup(() => backend.close());
    const lb = await proxy(backend.url);
    cleanup(() => lb.close());
    const res = await request(`${lb.url}/busy`, { method: 'POST', body: 'x' });
    await res.body.dump();
    assert.equal(res.statusCode, 503);
    assert.equal(backend.arrivals.length, 3);
    assert.equal(lb.upstream.backends[0]?.downReasons, 0);
  });
});

describe('a backend GOAWAY while requests are in flight', () => {
  test('POSTs above the last-stream-id are sent again on a new connection, those at or below it finish, nothing counts against the backend', async (t) => {
    const cleanup = cleanupFor(t);
    const held: http2.ServerHttp2Stream[] = [];
    const backend = await h2cBackend((stream, arrival) => {
      if (arrival.session !== 1 || arrival.path === '/warm') return answer(stream, `s${arrival.session} ${arrival.body}`);
      held.push(stream);
      if (held.length < 3) return;
      // RFC 9113 §6.8: the backend took the first stream; the two after it it did not process.
      const lastStreamId = Math.min(...held.map((s) => s.id ?? 0));
      stream.session?.goaway(http2.constants.NGHTTP2_NO_ERROR, lastStreamId);
      for (const s of held) if ((s.id ?? 0) <= lastStreamId) answer(s, 's1 took');
    });
    cleanup(() => backend.close());
    const lb = await proxy(backend.url);
    cleanup(() => lb.close());
    assert.equal(await (await request(`${lb.url}/warm`)).body.text(), 's1 ');
    const bodies = ['pay-1', 'pay-2', 'pay-3'];
    const responses = await Promise.all(bodies.map((body) => request(`${lb.url}/pay`, { method: 'POST', body })));
    const texts = await Promise.all(responses.map((r) => r.body.text()));
    assert.deepEqual(responses.map((r) => r.statusCode), [200, 200, 200]);
    assert.equal(texts.filter((text) => text === 's1 took').length, 1, texts.join());
    const processed = bodies[texts.indexOf('s1 took')];
    const unprocessed = bodies.filter((b) => b !== processed);
    // Answered on a later connection than the one that went away.
    for (const body of unprocessed) assert.match(texts[bodies.indexOf(body)] ?? '', new RegExp(`^s[2-9] ${body}$`));
    assert.equal(backend.arrivals.filter((a) => a.session === 1 && a.method === 'POST').length, 3);
    // Each body the backend did not process arrives exactly once more, on a new connection; the processed one never.
    const later = backend.arrivals.filter((a) => a.session > 1 && a.method === 'POST').map((a) => a.body);
    assert.deepEqual(later.sort(), unprocessed.sort());
    const [b] = lb.upstream.backends;
    assert.equal(b?.downReasons, 0, 'not ejected, not marked down');
    assert.equal(b?.failuresTotal, 0);
  });

  test('after a GOAWAY with an error code, the stream above the last-stream-id is sent again; the one at it fails as a reset', async (t) => {
    const cleanup = cleanupFor(t);
    const held: http2.ServerHttp2Stream[] = [];
    const backend = await h2cBackend((stream, arrival) => {
      if (arrival.session !== 1 || arrival.path === '/warm') return answer(stream, `s${arrival.session} ${arrival.body}`);
      held.push(stream);
      if (held.length < 2) return;
      stream.session?.goaway(http2.constants.NGHTTP2_INTERNAL_ERROR, Math.min(...held.map((s) => s.id ?? 0)));
    });
    cleanup(() => backend.close());
    const lb = await startConfigured({
      config: localConfig({ web: { backends: [backend.url], protocol: 'h2c', retry: { retriesPerBackend: 2, retryDelay: 1 } } }),
    });
    cleanup(() => lb.close());
    assert.equal(await (await request(`${lb.url}/warm`)).body.text(), 's1 ');
    const bodies = ['pay-1', 'pay-2'];
    const responses = await Promise.all(bodies.map((body) => request(`${lb.url}/pay`, { method: 'POST', body })));
    const texts = await Promise.all(responses.map((r) => r.body.text()));
    const statuses = responses.map((r) => r.statusCode).sort();
    assert.deepEqual(statuses, [200, 502], texts.join());
    const retried = bodies[responses.findIndex((r) => r.statusCode === 200)];
    assert.match(texts.find((text) => text.startsWith('s')) ?? '', new RegExp(`^s[2-9] ${retried}$`));
    assert.equal(backend.arrivals.filter((a) => a.session > 1 && a.method === 'POST').length, 1);
    assert.equal(lb.upstream.backends[0]?.failuresTotal, 1, 'the stream it took and then dropped is a failure');
  });
});
