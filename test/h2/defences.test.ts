import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import type http2 from 'node:http2';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { headersFrame, NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_NO_ERROR, RawH2, rstStreamFrame } from '../helpers/h2-frames.js';
import { deadPort, until } from '../helpers/servers.js';
import { makeCa, type IssuedCert, type TestCa } from '../helpers/tls.js';
import { connectH2, h2Request, startH2 } from './support.js';
import { rapidResetLimit } from '../../src/server/h2-sessions.js';

const run = promisify(execFile);

let ca: TestCa;
let cert: IssuedCert;

before(async () => {
  ca = await makeCa();
  cert = await ca.issue('localhost', ['DNS:localhost', 'IP:127.0.0.1']);
});

after(() => ca.remove());

/** The code of the session's first GOAWAY, within `timeoutMs`. */
function goawayOf(session: http2.ClientHttp2Session, timeoutMs = 10_000): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no GOAWAY')), timeoutMs);
    session.once('goaway', (code: number) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

function heapUsed(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().heapUsed;
}

describe('HTTP/2 defences', () => {
  test('rapid reset: a client opening and cancelling streams in a loop gets GOAWAY ENHANCE_YOUR_CALM; other clients go on', async (t) => {
    // No access log: the test keeps log lines in memory, which would be what grows.
    const { port, backend, lb } = await startH2(t, { listener: { h2c: true }, extra: { log: { access: false } } });
    const other = await connectH2(t, port);
    assert.equal((await h2Request(other, { ':path': '/warm' })).status, 200);
    const heapBefore = heapUsed();
    let otherAnswers = 0;
    let attackOver = false;
    // The other client keeps asking, one request at a time, all through the attack.
    const steady = (async () => {
      while (!attackOver) {
        const answer = await h2Request(other, { ':path': '/steady' });
        assert.equal(answer.status, 200);
        otherAnswers++;
      }
    })();
    let opened = 0;
    const rounds = 20;
    const goaways: (number | undefined)[] = [];
    for (let round = 0; round < rounds; round++) {
      const attacker = await RawH2.connect(port);
      const fields: [string, string][] = [[':method', 'GET'], [':scheme', 'http'], [':path', '/attack'], [':authority', 'a.test']];
      let id = 1;
      // Batches of 100 streams until the server hangs up (or 5000 streams): even rounds reset
      // each stream in the same write as its HEADERS, odd rounds a turn later, once it is served.
      while (!attacker.closed && id < 10_000) {
        const batch: Buffer[] = [];
        const resets: Buffer[] = [];
        for (let i = 0; i < 100; i++, id += 2) {
          batch.push(headersFrame(id, fields));
          (round % 2 === 0 ? batch : resets).push(rstStreamFrame(id));
        }
        attacker.write(Buffer.concat(batch));
        opened += 100;
        await new Promise((resolve) => setImmediate(resolve));
        if (resets.length > 0) {
          await new Promise((resolve) => setTimeout(resolve, 5));
          attacker.write(Buffer.concat(resets));
        }
      }
      // The server hung up long before 5000 streams. Its GOAWAY may be lost: the attacker writes
      // on into the closed connection, and the TCP reset that earns drops what it had not read.
      await attacker.until(() => attacker.goawayCode() !== undefined).catch(() => undefined);
      assert.ok(attacker.closed || attacker.goawayCode() !== undefined, `round ${round}: still open after ${opened} streams`);
      assert.ok(id < 10_000, `round ${round}: never closed`);
      goaways.push(attacker.goawayCode());
      attacker.close();
    }
    attackOver = true;
    await steady;
    assert.ok(otherAnswers > 0);
    const attacks = backend.seen.filter((r) => r.url === '/attack').length;
    // Streams reset before they were served never reach a backend; those served are bounded by
    // the streams a connection may have open (100) and the cancels it may make (rapidResetLimit).
    assert.ok(attacks <= (rounds / 2) * (100 + rapidResetLimit), `${attacks} of ${opened} cancelled streams reached the backend`);
    assert.ok(goaways.includes(NGHTTP2_ENHANCE_YOUR_CALM), JSON.stringify(goaways));
    assert.ok(goaways.every((code) => code === undefined || code === NGHTTP2_ENHANCE_YOUR_CALM), JSON.stringify(goaways));
    assert.equal(lb.logs.filter((l) => String(l['msg']).includes('rapid reset')).length, rounds);
    const grownMiB = (heapUsed() - heapBefore) / 1024 / 1024;
    t.diagnostic(`${opened} streams opened and reset over ${rounds} connections, ${attacks} reached the backend, ${otherAnswers} answers to the other client, heap ${grownMiB.toFixed(1)} MiB`);
    assert.ok(grownMiB < 16, `heap grew ${grownMiB.toFixed(1)} MiB`);
  });

  test('an idle connection is closed with GOAWAY after clientKeepAlive', async (t) => {
    const { port } = await startH2(t, { listener: { h2c: true, clientKeepAlive: '300ms' } });
    const session = await connectH2(t, port);
    const goaway = goawayOf(session);
    assert.equal((await h2Request(session, { ':path': '/' })).status, 200);
    assert.equal(await goaway, NGHTTP2_NO_ERROR);
  });

  test('a connection with a stream open is not idle, however long the stream takes', async (t) => {
    let release: () => void = () => {};
    const { port } = await startH2(t, {
      listener: { h2c: true, clientKeepAlive: '200ms' },
      handler: (req, res) => {
        release = () => res.end('late');
        req.resume();
      },
    });
    const session = await connectH2(t, port);
    let goaway = false;
    session.on('goaway', () => (goaway = true));
    const answer = h2Request(session, { ':path': '/slow' });
    // Well past the idle timeout, while the stream waits for the backend.
    await new Promise((resolve) => setTimeout(resolve, 600));
    assert.equal(goaway, false);
    release();
    assert.equal((await answer).body, 'late');
  });

  test('shutdown sends GOAWAY and lets an open stream finish', async (t) => {
    let release: () => void = () => {};
    let arrived = false;
    const { port, lb } = await startH2(t, {
      cert,
      handler: (req, res) => {
        arrived = true;
        res.writeHead(200);
        res.write('first ');
        release = () => res.end('last');
        req.resume();
      },
    });
    const session = await connectH2(t, port, ca);
    const goaway = goawayOf(session);
    const answer = h2Request(session, { ':path': '/slow' });
    await until(() => arrived, 5000, 'the request at the backend');
    const closed = lb.close();
    assert.equal(await goaway, NGHTTP2_NO_ERROR);
    release();
    const { status, body } = await answer;
    assert.equal(status, 200);
    assert.equal(body, 'first last');
    await closed;
  });

  test('close() does not hang on an HTTP/2 stream that outlives the grace period', async (t) => {
    const { port, lb } = await startH2(t, {
      listener: { h2c: true },
      extra: { gracePeriod: '300ms' },
      handler: (req) => req.resume(),
    });
    const session = await connectH2(t, port);
    const answer = h2Request(session, { ':path': '/never' });
    const startedMs = performance.now();
    await lb.close();
    assert.ok(performance.now() - startedMs < 5000);
    const { status } = await answer;
    assert.equal(status, 0);
  });

  test('a reload that removes the listener sends GOAWAY on its connections', async (t) => {
    const { port, lb, backend } = await startH2(t, { listener: { h2c: true } });
    const session = await connectH2(t, port);
    assert.equal((await h2Request(session, { ':path': '/' })).status, 200);
    const goaway = goawayOf(session);
    // Port-0 listeners are known by position: another port is another listener.
    const result = await lb.reload({ listeners: [{ host: '127.0.0.1', port: await deadPort() }], admin: false, upstreams: { web: { backends: [backend.url] } } });
    assert.equal(result.ok, true, result.error);
    assert.equal(await goaway, NGHTTP2_NO_ERROR);
  });

  test('h2load: 2000 requests over 4 TLS connections, 20 streams each, all answered', async (t) => {
    const { port } = await startH2(t, { cert });
    const { stdout } = await run('h2load', ['-n', '2000', '-c', '4', '-m', '20', `https://127.0.0.1:${port}/`], { timeout: 60_000 });
    assert.match(stdout, /requests: 2000 total, 2000 started, 2000 done, 2000 succeeded/);
    assert.match(stdout, /status codes: 2000 2xx/);
  });
});
