import assert from 'node:assert/strict';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import { request } from 'undici';
import { downReasonNames } from '../../src/upstream/backend.js';
import { cleanupFor } from '../helpers/cleanup.js';
import { localConfig, startConfigured } from '../helpers/config.js';
import { runLoad } from '../helpers/load.js';
import { rawExchange } from '../helpers/raw.js';
import { closeServer, startBackend, startLb, type TestBackend } from '../helpers/servers.js';

/**
 * Issue 9, section 1: one request that a backend cannot survive (it closes the connection, or
 * answers a head we cannot accept) must not take backends out of rotation.
 */

/** Answers its name, except `/poison`, where it closes the connection without answering. */
function startPoisonable(name: string): Promise<TestBackend> {
  return startBackend(name, (req, res) => {
    req.resume();
    if (req.url === '/poison') {
      req.socket.destroy();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain', 'x-backend': name });
    res.end(name);
  });
}

/** Two poisonable backends, a and b, behind Switchyard; all closed when `t` ends. */
async function twoPoisonable(t: TestContext) {
  const cleanup = cleanupFor(t);
  const a = await startPoisonable('a');
  cleanup(() => a.close());
  const b = await startPoisonable('b');
  cleanup(() => b.close());
  const lb = await startLb({ backends: [a.url, b.url] });
  cleanup(() => lb.close());
  return { a, b, lb };
}

function poisonSeen(backend: TestBackend): number {
  return backend.seen.filter((s) => s.url === '/poison').length;
}

function messages(lb: { logs: Record<string, unknown>[] }): string[] {
  return lb.logs.map((e) => String(e['msg']));
}

describe('a query of death', () => {
  test('among a steady stream of clients: one clear 502, zero failures for the others, no backend leaves rotation', async (t) => {
    const { a, b, lb } = await twoPoisonable(t);

    const load = runLoad({ url: `${lb.url}/`, concurrency: 6, count: 600 });
    const poison = await request(`${lb.url}/poison`);
    const poisonBody = await poison.body.text();
    const report = await load;

    assert.equal(poison.statusCode, 502);
    assert.equal(poisonBody, 'Bad Gateway\n');
    assert.equal(report.failures, 0, JSON.stringify(report.errors));
    assert.equal(report.statuses[200], 600);
    // Sent once to each backend, never retried on the one that just failed it.
    assert.equal(poisonSeen(a), 1);
    assert.equal(poisonSeen(b), 1);
    for (const backend of lb.upstream.backends) {
      assert.equal(backend.available, true, `${backend.url} is in rotation`);
      assert.deepEqual(downReasonNames(backend.downReasons), []);
    }
    assert.ok(!messages(lb).some((m) => m.includes('[down]')), messages(lb).join('\n'));
  });

  test('sent again and again, with no other traffic in between: answered 502 each time, both backends stay in rotation', async (t) => {
    const { a, b, lb } = await twoPoisonable(t);

    for (let i = 0; i < 3; i++) {
      const res = await request(`${lb.url}/poison`);
      await res.body.dump();
      assert.equal(res.statusCode, 502, `poison ${i}`);
    }
    // Outlier detection counts failures across requests (5 by default); 3 do not eject.
    for (const backend of lb.upstream.backends) assert.equal(backend.available, true, `${backend.url} is in rotation`);
    const names = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const res = await request(`${lb.url}/`);
      names.add(await res.body.text());
    }
    assert.deepEqual([...names].sort(), ['a', 'b']);
  });
});

/** A raw backend whose response head carries one field of `bytes` bytes on `/big`. */
async function startBigHeadBackend(bytes: number): Promise<{ url: string; requests: string[]; close(): Promise<void> }> {
  const requests: string[] = [];
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    let buffered = '';
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      let end: number;
      while ((end = buffered.indexOf('\r\n\r\n')) !== -1) {
        const head = buffered.slice(0, end);
        buffered = buffered.slice(end + 4);
        const path = head.split(' ')[1] ?? '';
        requests.push(path);
        const extra = path === '/big' ? `x-big: ${'a'.repeat(bytes)}\r\n` : '';
        socket.write(`HTTP/1.1 200 OK\r\ncontent-length: 2\r\n${extra}\r\nok`);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, requests, close: () => closeServer(server) };
}

describe('a response head over the limit', () => {
  test('is a protocol error: 502, not retried, the backend stays in rotation and serves the next request', async (t) => {
    const cleanup = cleanupFor(t);
    const big = await startBigHeadBackend(20 * 1024);
    cleanup(() => big.close());
    const other = await startBigHeadBackend(20 * 1024);
    cleanup(() => other.close());
    const lb = await startLb({ backends: [big.url, other.url] });
    cleanup(() => lb.close());

    const res = await request(`${lb.url}/big`);
    await res.body.dump();
    assert.equal(res.statusCode, 502);
    const tried = big.requests.filter((p) => p === '/big').length + other.requests.filter((p) => p === '/big').length;
    assert.equal(tried, 1, 'a protocol error is never retried');
    const entry = lb.logs.find((e) => String(e['msg']).startsWith('attempt to '));
    assert.equal(entry?.['kind'], 'protocol');
    assert.equal(entry?.['error'], 'UND_ERR_HEADERS_OVERFLOW');
    for (const backend of lb.upstream.backends) assert.equal(backend.available, true);
    for (let i = 0; i < 2; i++) {
      const ok = await request(`${lb.url}/small`);
      assert.equal(ok.statusCode, 200);
      assert.equal(await ok.body.text(), 'ok');
    }
  });

  test('maxResponseHeaderSize raises the limit', async (t) => {
    const cleanup = cleanupFor(t);
    const big = await startBigHeadBackend(20 * 1024);
    cleanup(() => big.close());
    const lb = await startConfigured({ config: localConfig({ web: { backends: [big.url], maxResponseHeaderSize: '32KiB' } }) });
    cleanup(() => lb.close());

    // A raw client: undici's own 16 KiB limit would refuse the relayed head.
    const res = await rawExchange(lb.address.port, 'GET /big HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-big')?.[0]?.length, 20 * 1024);
    assert.equal(res.body.toString(), 'ok');
  });
});
