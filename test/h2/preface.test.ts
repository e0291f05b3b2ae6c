import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, test } from 'node:test';
import { frameType, headersFrame, RawH2 } from '../helpers/h2-frames.js';
import { startH2 } from './support.js';

/** An h2c listener tells HTTP/2 from HTTP/1.1 by the first bytes, however they are cut up. */

/** Writes `parts` one TCP segment at a time (a pause after each lets the server read it alone); resolves with all that came back until close. */
function dribble(port: number, parts: readonly (string | Buffer)[], timeoutMs = 5000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.setNoDelay(true);
    const chunks: Buffer[] = [];
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no close within ${timeoutMs} ms`)));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks)));
    socket.once('connect', async () => {
      for (const part of parts) {
        socket.write(part);
        await new Promise((r) => setTimeout(r, 20));
      }
    });
  });
}

describe('h2c: the connection preface', () => {
  test('an HTTP/1.1 request arriving a byte at a time is HTTP/1.1', async (t) => {
    const { port } = await startH2(t, { listener: { h2c: true } });
    const request = 'POST /x HTTP/1.1\r\nHost: a.test\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi';
    const answer = await dribble(port, ['P', 'O', 'S', request.slice(3)]);
    assert.match(answer.toString('latin1'), /^HTTP\/1\.1 200 OK\r\n/);
  });

  test('a preface cut in pieces is HTTP/2', async (t) => {
    const { port, backend } = await startH2(t, { listener: { h2c: true } });
    const raw = await RawH2.connect(port, ['PRI * HT', 'TP/2.0\r\n\r', '\nSM\r\n\r\n']);
    t.after(() => raw.close());
    raw.write(headersFrame(1, [[':method', 'GET'], [':scheme', 'http'], [':path', '/split'], [':authority', 'a.test']]));
    await raw.until((frames) => frames.some((f) => f.stream === 1 && f.type === frameType.headers));
    assert.deepEqual(backend.seen.map((r) => r.url), ['/split']);
  });

  test('a connection that sends nothing is closed after clientHeadersTimeout', async (t) => {
    const { port } = await startH2(t, { listener: { h2c: true, clientHeadersTimeout: '300ms' } });
    const answer = await dribble(port, []);
    assert.equal(answer.length, 0);
  });

  test('close() closes a connection that has not said its protocol yet', async (t) => {
    const { port, lb } = await startH2(t, { listener: { h2c: true } });
    const silent = dribble(port, [], 60_000);
    // The listener has the connection once a request on another one is answered.
    const res = await dribble(port, ['GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n']);
    assert.match(res.toString('latin1'), /^HTTP\/1\.1 200 /);
    const startedMs = performance.now();
    await lb.close();
    assert.equal((await silent).length, 0);
    // Closed by close(), well before clientHeadersTimeout (30 s) would have closed it.
    assert.ok(performance.now() - startedMs < 10_000);
  });

  test('"PRI * HTTP/2.0" without the rest of the preface is HTTP/1.1, and refused', async (t) => {
    const { port, backend } = await startH2(t, { listener: { h2c: true } });
    const answer = await dribble(port, ['PRI * HTTP/2.0\r\nHost: a.test\r\n\r\n']);
    assert.match(answer.toString('latin1'), /^HTTP\/1\.1 (400|505) /);
    assert.equal(backend.seen.length, 0);
  });
});
