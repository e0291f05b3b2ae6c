import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { describe, test } from 'node:test';
import { headersFrame, NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_PROTOCOL_ERROR, frameType, RawH2 } from '../helpers/h2-frames.js';
import { connectH2, h2Request, startH2 } from './support.js';

/** Streams are requests: their host, their malformed fields, many at once on one connection. */

const get = (path: string, authority: string): (readonly [string, string])[] => [
  [':method', 'GET'],
  [':scheme', 'http'],
  [':path', path],
  [':authority', authority],
];

describe('HTTP/2 streams', () => {
  test(':authority is validated as Host is, and must agree with a Host field', async (t) => {
    const { port, backend } = await startH2(t, { listener: { h2c: true } });
    const session = await connectH2(t, port);
    assert.equal((await h2Request(session, { ':path': '/', ':authority': 'a.test:99999' })).status, 400);
    assert.equal((await h2Request(session, { ':path': '/', ':authority': 'a.test', host: 'b.test' })).status, 400);
    // The same host in another case, or with one trailing dot, is the same host.
    assert.equal((await h2Request(session, { ':path': '/', ':authority': 'a.test', host: 'A.TEST.' })).status, 200);
    assert.equal(backend.seen.length, 1);
    assert.equal(backend.seen[0]?.headers.host, 'a.test');
  });

  test('a stream with neither :authority nor Host is malformed (nghttp2 resets it) and reaches no backend', async (t) => {
    const { port, backend } = await startH2(t, { listener: { h2c: true } });
    const raw = await RawH2.connect(port);
    t.after(() => raw.close());
    raw.write(headersFrame(1, [[':method', 'GET'], [':scheme', 'http'], [':path', '/']]));
    await raw.until((frames) => frames.some((f) => f.stream === 1 && (f.type === frameType.headers || f.type === frameType.rstStream)));
    const rst = raw.frames.find((f) => f.stream === 1 && f.type === frameType.rstStream);
    assert.equal(rst?.payload.readUInt32BE(0), NGHTTP2_PROTOCOL_ERROR);
    assert.equal(backend.seen.length, 0);
  });

  test('cookie crumbs are joined into one Cookie field for the HTTP/1.1 backend', async (t) => {
    const { port, backend } = await startH2(t, { listener: { h2c: true } });
    const raw = await RawH2.connect(port);
    t.after(() => raw.close());
    raw.write(headersFrame(1, [...get('/', 'a.test'), ['cookie', 'a=1'], ['x-other', 'y'], ['cookie', 'b=2']]));
    await raw.until((frames) => frames.some((f) => f.stream === 1 && f.type === frameType.headers));
    assert.deepEqual(backend.seen[0]?.rawHeaders.filter((_, i, all) => all[i - 1] === 'cookie'), ['a=1; b=2']);
  });

  test('a connection-specific field resets its stream (PROTOCOL_ERROR); other streams on the connection are served', async (t) => {
    const { port, backend } = await startH2(t, { listener: { h2c: true } });
    const raw = await RawH2.connect(port);
    t.after(() => raw.close());
    const refused: [string, string][] = [['connection', 'keep-alive'], ['keep-alive', '5'], ['proxy-connection', 'x'], ['transfer-encoding', 'chunked'], ['upgrade', 'websocket'], ['te', 'gzip']];
    let id = 1;
    for (const field of refused) {
      raw.write(headersFrame(id, [...get('/', 'a.test'), field]));
      id += 2;
    }
    raw.write(headersFrame(id, [...get('/ok', 'a.test'), ['te', 'trailers']]));
    const last = id;
    await raw.until((frames) => frames.some((f) => f.stream === last && f.type === frameType.headers));
    for (let s = 1; s < last; s += 2) {
      const rst = raw.frames.find((f) => f.stream === s && f.type === frameType.rstStream);
      assert.equal(rst?.payload.readUInt32BE(0), NGHTTP2_PROTOCOL_ERROR, `stream ${s} (${refused[(s - 1) / 2]?.[0]})`);
    }
    assert.deepEqual(backend.seen.map((r) => r.url), ['/ok']);
    assert.equal(raw.goawayCode(), undefined);
  });

  test('CONNECT is refused with 405; extended CONNECT (:protocol) is not offered', async (t) => {
    const { port, backend } = await startH2(t, { listener: { h2c: true } });
    const session = await connectH2(t, port);
    assert.equal(session.remoteSettings.enableConnectProtocol, false);
    assert.equal((await h2Request(session, { ':method': 'CONNECT', ':authority': 'a.test:443' })).status, 405);
    assert.equal(backend.seen.length, 0);
  });

  test('many concurrent streams on one connection are all answered, beyond maxConcurrentStreams too', async (t) => {
    const { port, backend } = await startH2(t, { listener: { h2c: true, maxConcurrentStreams: 20 } });
    const session = await connectH2(t, port);
    assert.equal(session.remoteSettings.maxConcurrentStreams, 20);
    const answers = await Promise.all(Array.from({ length: 300 }, (_, i) => h2Request(session, { ':path': `/n/${i}` })));
    assert.deepEqual(new Set(answers.map((a) => a.status)), new Set([200]));
    assert.equal(backend.seen.length, 300);
  });

  test('a header list over maxHeaderSize is refused without reaching the backend', async (t) => {
    const { port, backend } = await startH2(t, { listener: { h2c: true, maxHeaderSize: '2KiB' } });
    const session = await connectH2(t, port);
    assert.equal(session.remoteSettings.maxHeaderListSize, 2048);
    // Node resets the stream (RFC 9113 section 10.5.1 allows that or 431); the connection stays.
    const big = await h2Request(session, { ':path': '/', 'x-big': 'x'.repeat(4096) });
    assert.equal(big.rstCode, NGHTTP2_ENHANCE_YOUR_CALM);
    assert.equal((await h2Request(session, { ':path': '/small' })).status, 200);
    assert.deepEqual(backend.seen.map((r) => r.url), ['/small']);
  });

  test('a response the backend cuts short is reset with INTERNAL_ERROR, not ended as if complete', async (t) => {
    const { port } = await startH2(t, {
      listener: { h2c: true },
      handler: (_req, res) => {
        res.writeHead(200, { 'content-length': '100' });
        // Part of the body, then the connection drops (flushed first, so the head reaches the client).
        res.write('partial', () => res.socket?.destroy());
      },
    });
    const session = await connectH2(t, port);
    const answer = await h2Request(session, { ':path': '/cut' });
    assert.equal(answer.status, 200);
    assert.equal(answer.rstCode, http2.constants.NGHTTP2_INTERNAL_ERROR);
  });
});
