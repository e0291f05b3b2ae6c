import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, test } from 'node:test';
import { request } from 'undici';
import { cleanupFor } from '../helpers/cleanup.js';
import { readBody } from '../helpers/faults.js';
import { startBackend, startLb, type TestBackend } from '../helpers/servers.js';

/**
 * Issue 9, section 5: interim (1xx) responses from a backend, and errors of Switchyard's own
 * code, which are never a backend's fault.
 */

/** Sends `head` (then `body` once `waitFor` shows up, if given) and reads everything until the server closes. */
function rawAll(port: number, head: string, options: { waitFor?: string; body?: string } = {}, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    let bodySent = false;
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no close within ${timeoutMs} ms; got ${JSON.stringify(text)}`)));
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (!bodySent && options.waitFor !== undefined && text.includes(options.waitFor)) {
        bodySent = true;
        socket.write(options.body ?? '');
      }
    });
    socket.on('error', reject);
    socket.on('end', () => {
      resolve(text);
      socket.destroy();
    });
    socket.write(head);
  });
}

const links = ['</style.css>; rel=preload; as=style', '</app.js>; rel=preload; as=script'];

/** Sends 103 Early Hints with `links`, then 200 `final`. */
function startHintsBackend(): Promise<TestBackend> {
  return startBackend('hints', (req, res) => {
    req.resume();
    res.writeEarlyHints({ link: links }, () => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('final');
    });
  });
}

async function behind(t: Parameters<typeof cleanupFor>[0], backend: TestBackend) {
  const cleanup = cleanupFor(t);
  cleanup(() => backend.close());
  const lb = await startLb({ backends: [backend.url] });
  cleanup(() => lb.close());
  return lb;
}

function assertUntouched(lb: Awaited<ReturnType<typeof startLb>>): void {
  const backend = lb.upstream.backends[0];
  assert.equal(backend?.available, true, 'the backend stays in rotation');
  assert.equal(backend?.requestsTotal, 1, 'one attempt, no retry');
  assert.equal(backend?.failuresTotal, 0, 'not a failure');
}

describe('interim responses', () => {
  test('103 Early Hints reach an HTTP/1.1 client with their Link fields, then the final response', async (t) => {
    const backend = await startHintsBackend();
    const lb = await behind(t, backend);

    const text = await rawAll(lb.address.port, 'GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
    assert.match(text, /^HTTP\/1\.1 103 Early Hints\r\n/);
    const hints = text.slice(0, text.indexOf('\r\n\r\n'));
    for (const link of links) assert.ok(hints.includes(link), `${link} in ${JSON.stringify(hints)}`);
    const final = text.slice(text.indexOf('\r\n\r\n') + 4);
    assert.match(final, /^HTTP\/1\.1 200 OK\r\n/);
    assert.ok(final.includes('\r\n\r\n5\r\nfinal\r\n'), JSON.stringify(final));
    assertUntouched(lb);
  });

  test('an HTTP/1.0 client gets no 1xx (RFC 9110 section 15.2), only the final response', async (t) => {
    const backend = await startHintsBackend();
    const lb = await behind(t, backend);

    const text = await rawAll(lb.address.port, 'GET / HTTP/1.0\r\nHost: t\r\n\r\n');
    assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
    assert.ok(!text.includes('103'), JSON.stringify(text));
    assert.ok(text.endsWith('\r\n\r\nfinal'), JSON.stringify(text));
    assertUntouched(lb);
  });

  test('102 Processing is dropped and the final response relayed', async (t) => {
    const backend = await startBackend('slow', (req, res) => {
      req.resume();
      res.writeProcessing();
      setImmediate(() => {
        res.writeHead(201, { 'content-type': 'text/plain' });
        res.end('made');
      });
    });
    const lb = await behind(t, backend);

    const text = await rawAll(lb.address.port, 'GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
    assert.match(text, /^HTTP\/1\.1 201 Created\r\n/);
    assert.ok(!text.includes('102 Processing'), JSON.stringify(text));
    assert.ok(text.includes('\r\n\r\n4\r\nmade\r\n0\r\n\r\n'), JSON.stringify(text));
    assertUntouched(lb);
  });

  test('Expect: 100-continue: the client gets 100 Continue, sends its body, and the backend gets it whole', async (t) => {
    const backend = await startBackend('echo', (req, res) => {
      void readBody(req).then((body) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`got ${body.toString()}`);
      });
    });
    const lb = await behind(t, backend);

    const text = await rawAll(
      lb.address.port,
      'POST /upload HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n',
      { waitFor: '100 Continue\r\n\r\n', body: 'hello' },
    );
    assert.match(text, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n/);
    assert.ok(text.includes('\r\n9\r\ngot hello\r\n'), JSON.stringify(text));
    assert.equal(backend.seen[0]?.headers['expect'], undefined, 'Expect is handled here, not forwarded');
    assertUntouched(lb);
  });

  test('a 100 Continue the backend was not asked for is dropped and its final response relayed (RFC 9110 §15.2)', async (t) => {
    // Switchyard answers Expect itself and never forwards it: any 100 from a backend is unexpected.
    const backend = await startBackend('eager', (req, res) => {
      req.resume();
      res.writeContinue();
      setImmediate(() => res.end('late'));
    });
    const lb = await behind(t, backend);

    const res = await request(`${lb.url}/`);
    assert.equal(res.statusCode, 200);
    assert.equal(await res.body.text(), 'late');
    const b = lb.upstream.backends[0];
    assert.equal(b?.requestsTotal, 1, 'sent once');
    assert.equal(b?.failuresTotal, 0);
    assert.equal(b?.available, true);
  });
});

describe("errors of Switchyard's own code", () => {
  test('a throw while relaying the response head: 500, logged once with its stack, not retried, not counted against the backend', async (t) => {
    const a = await startBackend('a');
    const lb = await behind(t, a);
    const backend = lb.upstream.backends[0];
    assert.ok(backend !== undefined);
    // Fault injection into our own code: there is no real way to make it throw.
    const record = backend.latency.record;
    backend.latency.record = () => {
      throw new Error('injected fault');
    };

    const res = await request(`${lb.url}/x`);
    assert.equal(res.statusCode, 500);
    assert.equal(await res.body.text(), 'Internal Server Error\n');
    assertUntouched(lb);
    const errors = lb.logs.filter((e) => e['level'] === 50);
    assert.equal(errors.length, 1, JSON.stringify(lb.logs));
    assert.equal(errors[0]?.['msg'], 'internal error while proxying GET /x: injected fault');
    assert.match(String((errors[0]?.['err'] as { stack?: string } | undefined)?.stack), /injected fault\n\s+at /);
    assert.ok(!lb.logs.some((e) => String(e['msg']).startsWith('attempt to')), 'no attempt failure is logged');

    backend.latency.record = record;
    const next = await request(`${lb.url}/`);
    assert.equal(next.statusCode, 200);
    assert.equal(await next.body.text(), 'a');
  });

  test('a throw before any attempt (in the balancer): 500, and the process keeps serving', async (t) => {
    const a = await startBackend('a');
    const lb = await behind(t, a);
    const balancer = lb.upstream.balancer;
    const pick = balancer.pick;
    balancer.pick = () => {
      throw new Error('injected balancer fault');
    };

    const res = await request(`${lb.url}/`);
    assert.equal(res.statusCode, 500);
    await res.body.dump();
    assert.equal(lb.logs.filter((e) => e['level'] === 50).length, 1);

    balancer.pick = pick;
    const next = await request(`${lb.url}/`);
    assert.equal(next.statusCode, 200);
    assert.equal(await next.body.text(), 'a');
    assert.equal(lb.upstream.backends[0]?.failuresTotal, 0);
  });
});
