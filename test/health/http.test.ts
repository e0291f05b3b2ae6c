import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { describe, test } from 'node:test';
import { downReasonNames, type Backend } from '../../src/upstream/backend.js';
import { cleanupFor } from '../helpers/cleanup.js';
import { startBlackhole, startHoldingBackend } from '../helpers/faults.js';
import { makeBackend, makeChecker, messages } from '../helpers/health.js';
import { startBackend, until, type Handler, type TestBackend } from '../helpers/servers.js';

/** A backend answering `state.status` with `state.body`; the test changes them between rounds. */
async function startSwitchable(t: Parameters<typeof cleanupFor>[0], state: { status: number; body: string }): Promise<TestBackend> {
  const backend = await startBackend('switchable', (req, res) => {
    req.resume();
    res.writeHead(state.status, { 'content-type': 'text/plain' });
    res.end(state.body);
  });
  cleanupFor(t)(() => backend.close());
  return backend;
}

/** Tracks a server's open sockets. */
function openSockets(backend: TestBackend): Set<Socket> {
  const open = new Set<Socket>();
  backend.server.on('connection', (socket: Socket) => {
    open.add(socket);
    socket.on('close', () => open.delete(socket));
  });
  return open;
}

function closeAfter(t: Parameters<typeof cleanupFor>[0], created: Backend[]): void {
  cleanupFor(t)(() => Promise.all(created.map((b) => b.close())));
}

describe('HTTP health checks', () => {
  test('a status passes only when it is in expectStatus (codes and ranges)', async (t) => {
    const state = { status: 204, body: '' };
    const server = await startSwitchable(t, state);
    const created: Backend[] = [];
    closeAfter(t, created);
    const backend = makeBackend(server.url, created);
    const { checker } = makeChecker([backend], { type: 'http', rise: 1, fall: 1, expectStatus: [[204, 204], [300, 302]] });
    t.after(() => checker.stop());

    const results: [number, boolean, string][] = [];
    for (const status of [204, 300, 302, 200, 303, 503]) {
      state.status = status;
      await checker.round();
      results.push([status, backend.lastHealthCheck?.ok ?? false, backend.lastHealthCheck?.error ?? '?']);
    }
    assert.deepEqual(results, [
      [204, true, ''],
      [300, true, ''],
      [302, true, ''],
      [200, false, 'status 200 is not one of 204, 300-302'],
      [303, false, 'status 303 is not one of 204, 300-302'],
      [503, false, 'status 503 is not one of 204, 300-302'],
    ]);
    assert.equal(server.seen.length, 6);
  });

  test('the default expectStatus is 200-399', async (t) => {
    const state = { status: 399, body: '' };
    const server = await startSwitchable(t, state);
    const created: Backend[] = [];
    closeAfter(t, created);
    const backend = makeBackend(server.url, created);
    const { checker } = makeChecker([backend], { type: 'http' });
    t.after(() => checker.stop());
    const passed: boolean[] = [];
    for (const status of [200, 399, 199, 400]) {
      state.status = status;
      await checker.round();
      passed.push(backend.lastHealthCheck?.ok ?? false);
    }
    assert.deepEqual(passed, [true, true, false, false]);
  });

  test('bodyContains: found in the first 64 KiB passes, past it or absent fails, across chunk boundaries too', async (t) => {
    const cleanup = cleanupFor(t);
    let chunks: string[] = [];
    const server = await startBackend('body', (req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/plain' });
      // Each chunk is its own write with a pause, so the probe sees them as separate reads.
      const next = (): void => {
        const chunk = chunks.shift();
        if (chunk === undefined) res.end();
        else res.write(chunk, () => setImmediate(next));
      };
      next();
    });
    cleanup(() => server.close());
    const created: Backend[] = [];
    closeAfter(t, created);
    const backend = makeBackend(server.url, created);
    const { checker } = makeChecker([backend], { type: 'http', bodyContains: 'status: ready' });
    t.after(() => checker.stop());

    const cases: [string, string[]][] = [
      ['at the start', ['status: ready\n']],
      ['split over two chunks', ['x'.repeat(1000) + 'status: re', 'ady\n']],
      ['ending exactly at 64 KiB', ['x'.repeat(65_536 - 13), 'status: ready']],
      ['starting 1 byte too late', ['x'.repeat(65_536 - 12), 'status: ready']],
      ['absent', ['status: starting\n']],
    ];
    const outcomes: string[] = [];
    for (const [what, body] of cases) {
      chunks = body.slice();
      await checker.round();
      outcomes.push(`${what}: ${backend.lastHealthCheck?.ok === true ? 'pass' : backend.lastHealthCheck?.error ?? '?'}`);
    }
    const miss = 'body has no "status: ready" in its first 65536 bytes';
    assert.deepEqual(outcomes, ['at the start: pass', 'split over two chunks: pass', 'ending exactly at 64 KiB: pass', `starting 1 byte too late: ${miss}`, `absent: ${miss}`]);
  });

  test('an endless body is read no further than 64 KiB: the check fails at once, not at the timeout', async (t) => {
    const cleanup = cleanupFor(t);
    let written = 0;
    const server = await startBackend('endless', (req, res) => {
      req.resume();
      res.writeHead(200);
      const pump = (): void => {
        let more = true;
        while (!res.destroyed && more) {
          more = res.write('y'.repeat(16_384));
          written += 16_384;
        }
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
    });
    cleanup(() => server.close());
    const created: Backend[] = [];
    closeAfter(t, created);
    const backend = makeBackend(server.url, created);
    const { checker } = makeChecker([backend], { type: 'http', bodyContains: 'never', timeoutMs: 10_000 });
    t.after(() => checker.stop());
    await checker.round();
    assert.equal(backend.lastHealthCheck?.error, 'body has no "never" in its first 65536 bytes');
    assert.ok((backend.lastHealthCheck?.durationMs ?? Infinity) < 5000, `took ${backend.lastHealthCheck?.durationMs} ms`);
    assert.ok(written >= 65_536, 'the backend wrote at least 64 KiB');
  });

  test('a backend that accepts and never answers fails at the timeout, and the probe connection is closed', async (t) => {
    const cleanup = cleanupFor(t);
    const holding = await startHoldingBackend('holding');
    cleanup(() => holding.close());
    const open = openSockets(holding);
    const created: Backend[] = [];
    closeAfter(t, created);
    const backend = makeBackend(holding.url, created);
    const { checker } = makeChecker([backend], { type: 'http', timeoutMs: 300 });
    t.after(() => checker.stop());

    const started = performance.now();
    await checker.round();
    const elapsed = performance.now() - started;
    assert.equal(backend.lastHealthCheck?.error, 'no answer within 300 ms');
    assert.ok(elapsed >= 290 && elapsed < 1500, `the round took ${elapsed.toFixed(0)} ms`);
    assert.equal(holding.held.length, 1, 'the request reached the backend');
    await until(() => open.size === 0, 2000, 'the probe connection to close');
    assert.deepEqual(downReasonNames(backend.downReasons), ['health-check']);
  });

  test('a connect that never completes fails at the timeout', async (t) => {
    const cleanup = cleanupFor(t);
    const blackhole = await startBlackhole();
    cleanup(() => blackhole.close());
    const created: Backend[] = [];
    closeAfter(t, created);
    const backend = makeBackend(blackhole.url, created);
    const { checker } = makeChecker([backend], { type: 'http', timeoutMs: 300 });
    t.after(() => checker.stop());
    await checker.round();
    assert.equal(backend.lastHealthCheck?.error, 'no answer within 300 ms');
    assert.equal(backend.available, false);
  });

  test('a 500-answering backend goes down after `fall` failures and comes back after `rise` passes', async (t) => {
    const state = { status: 200, body: 'ok' };
    const server = await startSwitchable(t, state);
    const created: Backend[] = [];
    closeAfter(t, created);
    const backend = makeBackend(server.url, created);
    const { checker, logs } = makeChecker([backend], { type: 'http', rise: 2, fall: 3 });
    t.after(() => checker.stop());

    const availability: boolean[] = [];
    await checker.round();
    state.status = 500;
    for (let i = 0; i < 4; i++) {
      await checker.round();
      availability.push(backend.available);
    }
    state.status = 200;
    for (let i = 0; i < 3; i++) {
      await checker.round();
      availability.push(backend.available);
    }
    // fall 3: down on the third failure; rise 2: up on the second pass.
    assert.deepEqual(availability, [true, true, false, false, false, true, true]);
    const warnings = logs.filter((e) => e['level'] === 40).map((e) => e['msg']);
    assert.deepEqual(warnings, [`${server.url} is down: 3 failed health check(s)`, `${server.url} is up: 2 passing health check(s)`]);
    // Every result is logged as "URL [up]" / "URL [down]", with the consecutive count.
    const results = logs.filter((e) => e['up'] !== undefined).map((e) => `${String(e['msg'])} ${String(e['passes'] ?? e['fails'])}`);
    const [up, down] = [`${server.url} [up]`, `${server.url} [down]`];
    assert.deepEqual(results, [`${up} 1`, `${down} 1`, `${down} 2`, `${down} 3`, `${down} 4`, `${up} 1`, `${up} 2`, `${up} 3`]);
  });

  test('the first round applies at once: a backend failing at start is down after it, whatever `fall` says', async (t) => {
    const server = await startSwitchable(t, { status: 500, body: '' });
    const created: Backend[] = [];
    closeAfter(t, created);
    const backend = makeBackend(server.url, created);
    const { checker, logs } = makeChecker([backend], { type: 'http', fall: 3 });
    t.after(() => checker.stop());
    assert.equal(backend.available, true, 'every backend counts as up before the first check');
    await checker.start();
    assert.equal(backend.available, false);
    assert.deepEqual(messages(logs), ['Starting health check...', `${server.url} [down]`, `${server.url} is down: 1 failed health check(s)`, 'Health check completed']);
  });

  test('the backend sees the configured method, absolute path, Host, User-Agent and Connection: close', async (t) => {
    const server = await startSwitchable(t, { status: 200, body: '' });
    const created: Backend[] = [];
    closeAfter(t, created);
    // The backend URL's base path is not prefixed: the health path is absolute on the origin.
    const defaults = makeBackend(`${server.url}/base`, created);
    const custom = makeBackend(`${server.url}/base`, created);
    const first = makeChecker([defaults], { type: 'http' });
    t.after(() => first.checker.stop());
    await first.checker.round();
    const second = makeChecker([custom], { type: 'http', method: 'HEAD', path: '/healthz?full=1', host: 'health.example' });
    t.after(() => second.checker.stop());
    await second.checker.round();

    const seen = server.seen.map((r) => [r.method, r.url, r.headers.host, r.headers['user-agent'], r.headers.connection]);
    assert.deepEqual(seen, [
      ['GET', '/', `127.0.0.1:${server.port}`, 'switchyard-health-check', 'close'],
      ['HEAD', '/healthz?full=1', 'health.example', 'switchyard-health-check', 'close'],
    ]);
    assert.equal(custom.lastHealthCheck?.ok, true);
  });

  test("the probe never uses the backend's proxy pool", async (t) => {
    const server = await startSwitchable(t, { status: 200, body: '' });
    const open = openSockets(server);
    // Not closed after: the test destroys its pool itself.
    const backend = makeBackend(server.url, []);
    const { checker } = makeChecker([backend], { type: 'http' });
    t.after(() => checker.stop());
    await checker.round();
    assert.equal(backend.pool.stats.connected, 0);
    // With the pool destroyed, a probe through it would fail with ClientDestroyedError.
    await backend.pool.destroy();
    await checker.round();
    assert.equal(backend.lastHealthCheck?.ok, true, backend.lastHealthCheck?.error);
    assert.equal(server.seen.length, 2);
    await until(() => open.size === 0, 2000, 'probe connections to close');
  });

  test('stop() aborts a check in flight and leaves no socket open', async (t) => {
    const cleanup = cleanupFor(t);
    const holding = await startHoldingBackend('holding');
    cleanup(() => holding.close());
    const open = openSockets(holding);
    const created: Backend[] = [];
    closeAfter(t, created);
    const backend = makeBackend(holding.url, created);
    const { checker, logs } = makeChecker([backend], { type: 'http', timeoutMs: 30_000 });
    const round = checker.round();
    await until(() => holding.held.length === 1, 2000, 'the probe request');
    assert.equal(open.size, 1);
    await checker.stop();
    await round;
    await until(() => open.size === 0, 2000, 'the probe connection to close');
    assert.equal(backend.lastHealthCheck, null, 'an aborted check records no result');
    assert.equal(backend.available, true);
    assert.deepEqual(messages(logs), ['Starting health check...']);
  });
});
