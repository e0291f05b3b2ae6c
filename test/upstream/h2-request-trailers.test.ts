import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { describe, test } from 'node:test';
import { cleanupFor } from '../helpers/cleanup.js';
import { localConfig, startConfigured } from '../helpers/config.js';
import { startH2Backend } from '../helpers/h2.js';
import { rawExchange } from '../helpers/raw.js';

interface Seen {
  readonly body: string;
  readonly trailers: Record<string, string | string[] | undefined>;
}

/** An h2c backend (node:http2) recording each request's body and the trailers its stream carried. */
async function trailerBackend(t: Parameters<typeof cleanupFor>[0]) {
  const seen: Seen[] = [];
  const backend = await startH2Backend('h2', {
    handler: (req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      req.on('end', () => {
        seen.push({ body, trailers: Object.fromEntries(Object.entries(req.trailers)) });
        res.end('ok');
      });
    },
  });
  cleanupFor(t)(() => backend.close());
  return { backend, seen };
}

/** Switchyard with a cleartext listener taking HTTP/1.1 and HTTP/2 (h2c), in front of one h2c backend. */
async function proxyTo(t: Parameters<typeof cleanupFor>[0], url: string) {
  const lb = await startConfigured({
    config: localConfig({ web: { backends: [url], protocol: 'h2c', retry: { retriesPerBackend: 0, maxBackends: 1 } } }, { listeners: [{ host: '127.0.0.1', port: 0, h2c: true }] }),
  });
  cleanupFor(t)(() => lb.close());
  return lb;
}

/** A POST from an HTTP/2 client whose body is followed by `trailers`; resolves with the status. */
async function postWithTrailers(port: number, body: string, trailers: http2.OutgoingHttpHeaders, contentLength: boolean): Promise<number> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on('error', () => {});
  try {
    return await new Promise<number>((resolve, reject) => {
      const head: http2.OutgoingHttpHeaders = { ':method': 'POST', ':path': '/up', ...(contentLength ? { 'content-length': String(body.length) } : {}) };
      const stream = session.request(head, { waitForTrailers: true });
      const timer = setTimeout(() => reject(new Error('no answer within 10 s')), 10_000);
      stream.on('wantTrailers', () => stream.sendTrailers(trailers));
      stream.on('response', (headers) => {
        clearTimeout(timer);
        stream.resume();
        resolve(Number(headers[':status']));
      });
      stream.on('error', reject);
      if (contentLength) stream.end(body);
      else {
        // The first chunk goes alone, so the attempt starts while the body still streams.
        stream.write(body.slice(0, 2));
        setImmediate(() => stream.end(body.slice(2)));
      }
    });
  } finally {
    session.destroy();
  }
}

describe('request trailers to an HTTP/2 backend', () => {
  test('from an HTTP/1.1 chunked request: relayed as trailing HEADERS, forbidden fields dropped', async (t) => {
    const { backend, seen } = await trailerBackend(t);
    const lb = await proxyTo(t, backend.url);
    const raw = await rawExchange(lb.address.port, [
      'POST /up HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\nTrailer: X-Digest\r\nConnection: close\r\n\r\n',
      '5\r\nhello\r\n0\r\nX-Digest: d1\r\nAuthorization: Basic eDp5\r\nContent-Type: text/plain\r\nX-Count: 2\r\n\r\n',
    ]);
    assert.equal(raw.status, 200);
    assert.deepEqual(seen, [{ body: 'hello', trailers: { 'x-digest': 'd1', 'x-count': '2' } }]);
  });

  test('from an HTTP/2 client, with a streamed body and with a body read whole', async (t) => {
    const { backend, seen } = await trailerBackend(t);
    const lb = await proxyTo(t, backend.url);
    const trailers = { 'x-digest': 'd2', cookie: 'a=b', 'max-forwards': '3', 'grpc-status': '0' };
    assert.equal(await postWithTrailers(lb.address.port, 'stream', trailers, false), 200);
    assert.equal(await postWithTrailers(lb.address.port, 'whole', trailers, true), 200);
    const relayed = { 'x-digest': 'd2', 'grpc-status': '0' };
    assert.deepEqual(seen, [
      { body: 'stream', trailers: relayed },
      { body: 'whole', trailers: relayed },
    ]);
  });

  test('a request without trailers reaches the backend without any', async (t) => {
    const { backend, seen } = await trailerBackend(t);
    const lb = await proxyTo(t, backend.url);
    const raw = await rawExchange(lb.address.port, ['POST /up HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n', '3\r\nabc\r\n0\r\n\r\n']);
    assert.equal(raw.status, 200);
    assert.deepEqual(seen, [{ body: 'abc', trailers: {} }]);
  });
});
