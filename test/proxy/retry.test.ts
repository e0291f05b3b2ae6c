import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { Readable } from 'node:stream';
import { describe, test, type TestContext } from 'node:test';
import { request } from 'undici';
import type { BackendStateEvent } from '../../src/events.js';
import type { StartOptions } from '../../src/index.js';
import { isIdempotent, isRetryable } from '../../src/proxy/retry.js';
import { downReasonNames, type Backend } from '../../src/upstream/backend.js';
import { cleanupFor } from '../helpers/cleanup.js';
import { startBlackhole, startDyingPort, startEchoBackend, startResetAfterReadBackend, startResetServer, startHoldingBackend } from '../helpers/faults.js';
import { deadPort, startBackend, startLb } from '../helpers/servers.js';

type Lb = Awaited<ReturnType<typeof startLb>>;

function backendAt(lb: Lb, index: number): Backend {
  const backend = lb.upstream.backends[index];
  assert.ok(backend !== undefined, `backend ${index} exists`);
  return backend;
}

function messages(lb: Lb): string[] {
  return lb.logs.map((entry) => String(entry['msg']));
}

async function get(url: string): Promise<{ status: number; text: string; backend: string | undefined }> {
  const res = await request(url);
  const text = await res.body.text();
  const backend = res.headers['x-backend'];
  return { status: res.statusCode, text, backend: typeof backend === 'string' ? backend : undefined };
}

async function send(url: string, method: string, body: Buffer): Promise<{ status: number; body: Buffer; backend: string | undefined }> {
  const res = await request(url, { method: method as 'POST', body });
  const bytes = Buffer.from(await res.body.arrayBuffer());
  const backend = res.headers['x-backend'];
  return { status: res.statusCode, body: bytes, backend: typeof backend === 'string' ? backend : undefined };
}

/** Records every backend state change published while the test runs. */
/**
 * A backend that reads each request and then resets, followed by a live echo backend, behind a
 * Switchyard; everything is closed when the test ends.
 */
async function flakyThenLive(t: TestContext, options: Partial<StartOptions> = {}) {
  const cleanup = cleanupFor(t);
  const flaky = await startResetAfterReadBackend('flaky');
  cleanup(() => flaky.close());
  const live = await startEchoBackend('live');
  cleanup(() => live.close());
  const lb = await startLb({ backends: [flaky.url, live.url], ...options });
  cleanup(() => lb.close());
  return { flaky, live, lb };
}

function recordStateChanges(cleanup: (fn: () => unknown) => void): BackendStateEvent[] {
  const events: BackendStateEvent[] = [];
  const onMessage = (message: unknown): void => {
    events.push(message as BackendStateEvent);
  };
  diagnosticsChannel.subscribe('switchyard:backend:state', onMessage);
  cleanup(() => diagnosticsChannel.unsubscribe('switchyard:backend:state', onMessage));
  return events;
}

describe('rotation around backends that are down', () => {
  test('a backend found dead by the start-up health check is skipped and never tried', async (t) => {
    const cleanup = cleanupFor(t);
    const a = await startBackend('a');
    cleanup(() => a.close());
    const c = await startBackend('c');
    cleanup(() => c.close());
    const dead = `http://127.0.0.1:${await deadPort()}`;
    const lb = await startLb({ backends: [a.url, dead, c.url] });
    cleanup(() => lb.close());

    assert.equal(backendAt(lb, 1).available, false);
    assert.deepEqual(downReasonNames(backendAt(lb, 1).downReasons), ['health-check']);
    const names: (string | undefined)[] = [];
    for (let i = 0; i < 6; i++) names.push((await get(`${lb.url}/`)).backend);
    assert.deepEqual(names, ['a', 'c', 'a', 'c', 'a', 'c']);
    assert.equal(backendAt(lb, 1).requestsTotal, 0, 'no attempt went to the dead backend');
  });

  test('a backend that dies mid-run is marked down by failed attempts and then skipped', async (t) => {
    const cleanup = cleanupFor(t);
    const a = await startBackend('a');
    cleanup(() => a.close());
    const b = await startDyingPort();
    cleanup(() => b.kill());
    const c = await startBackend('c');
    cleanup(() => c.close());
    const lb = await startLb({ backends: [a.url, b.url, c.url] });
    cleanup(() => lb.close());
    assert.equal(backendAt(lb, 1).available, true);
    await b.kill();

    const names: (string | undefined)[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await get(`${lb.url}/`);
      assert.equal(res.status, 200);
      names.push(res.backend);
    }
    // Request 2 was b's turn: it failed over to c, and the rotation continues after c.
    assert.deepEqual(names, ['a', 'c', 'a', 'c', 'a', 'c']);
    assert.equal(backendAt(lb, 1).available, false);
    assert.deepEqual(downReasonNames(backendAt(lb, 1).downReasons), ['failed-attempts']);
    assert.equal(backendAt(lb, 1).requestsTotal, 4, 'b was tried by one request only: 1 attempt + 3 retries');
  });
});

describe('retries on a backend that refuses or resets connections', () => {
  test('GET against [dead, live]: 4 refused attempts, dead marked down, request moved to live', async (t) => {
    const cleanup = cleanupFor(t);
    const dying = await startDyingPort();
    cleanup(() => dying.kill());
    const live = await startBackend('live');
    cleanup(() => live.close());
    const lb = await startLb({ backends: [dying.url, live.url] });
    cleanup(() => lb.close());
    await dying.kill();

    const res = await get(`${lb.url}/path?q=1`);
    assert.equal(res.status, 200);
    assert.equal(res.text, 'live');
    assert.equal(live.seen.length, 1);
    assert.equal(live.seen[0]?.url, '/path?q=1');

    const dead = backendAt(lb, 0);
    assert.equal(dead.available, false);
    assert.ok(downReasonNames(dead.downReasons).includes('failed-attempts'), downReasonNames(dead.downReasons).join());
    assert.equal(dead.requestsTotal, 4);
    assert.equal(dead.failuresTotal, 4);

    const log = messages(lb);
    const attempts = log.filter((m) => m.startsWith(`attempt to ${dying.url} failed (connect`));
    assert.equal(attempts.length, 4, log.join('\n'));
    for (let i = 1; i <= 3; i++) assert.ok(attempts.some((m) => m.endsWith(`retry ${i} of 3 in 10 ms`)), `retry ${i} logged`);
    assert.ok(attempts.some((m) => m.endsWith('giving up on this backend')));
    assert.ok(log.includes(`${dying.url} [down] after 4 failed attempts`), log.join('\n'));
    assert.ok(log.includes(`moving request GET /path?q=1 from ${dying.url} to ${live.url}`), log.join('\n'));
    // The 4 failures are logged as warnings with the backend and kind as fields.
    const entry = lb.logs.find((e) => String(e['msg']).startsWith(`attempt to ${dying.url}`));
    assert.equal(entry?.['level'], 40);
    assert.equal(entry?.['backend'], dying.url);
    assert.equal(entry?.['kind'], 'connect');
  });

  test('GET against a backend that resets every connection: one attempt, then live answers; outlier detection ejects it', async (t) => {
    const cleanup = cleanupFor(t);
    const reset = await startResetServer();
    cleanup(() => reset.close());
    const live = await startBackend('live');
    cleanup(() => live.close());
    const lb = await startLb({ backends: [reset.url, live.url] });
    cleanup(() => lb.close());

    const res = await get(`${lb.url}/`);
    assert.equal(res.status, 200);
    assert.equal(res.text, 'live');
    assert.equal(reset.attempts, 1, 'a reset after the request was sent moves it on at once');
    // A reset may be the request's own doing: it never marks the backend down by itself.
    assert.equal(backendAt(lb, 0).available, true);
    assert.ok(messages(lb).includes(`moving request GET / from ${reset.url} to ${live.url}`));
    const kinds = lb.logs.filter((e) => String(e['msg']).startsWith(`attempt to ${reset.url}`)).map((e) => e['kind']);
    assert.deepEqual(kinds, ['reset'], 'the request reached the backend: a reset, not a connect failure');
    assert.ok(!messages(lb).some((m) => m.includes('[down]')), messages(lb).join('\n'));

    // Failures across different requests are outlier detection's business: 5 in a row eject it.
    for (let i = 0; i < 20 && reset.attempts < 5; i++) assert.equal((await get(`${lb.url}/`)).text, 'live');
    assert.equal(reset.attempts, 5);
    assert.deepEqual(downReasonNames(backendAt(lb, 0).downReasons), ['outlier-ejected']);
    for (let i = 0; i < 3; i++) assert.equal((await get(`${lb.url}/`)).text, 'live');
    assert.equal(reset.attempts, 5, 'ejected: the next requests go straight to live');
  });

  test('retry count and delay follow retry.retriesPerBackend and retry.retryDelayMs', async (t) => {
    const cleanup = cleanupFor(t);
    const dying = await startDyingPort();
    cleanup(() => dying.kill());
    const live = await startBackend('live');
    cleanup(() => live.close());
    const lb = await startLb({ backends: [dying.url, live.url], retry: { retriesPerBackend: 1, retryDelayMs: 60 } });
    cleanup(() => lb.close());
    await dying.kill();

    const started = performance.now();
    const res = await get(`${lb.url}/`);
    const elapsed = performance.now() - started;
    assert.equal(res.text, 'live');
    assert.equal(backendAt(lb, 0).failuresTotal, 2, '1 attempt + 1 retry');
    assert.ok(elapsed >= 55, `the retry waited for the delay (${elapsed.toFixed(1)} ms)`);
    assert.ok(messages(lb).includes(`${dying.url} [down] after 2 failed attempts`));
  });

  test('the only backend resetting: retried on it per retriesPerBackend with the delay, then 502, still in rotation', async (t) => {
    const cleanup = cleanupFor(t);
    const reset = await startResetServer();
    cleanup(() => reset.close());
    const lb = await startLb({ backends: [reset.url], retry: { retriesPerBackend: 2, retryDelayMs: 40 } });
    cleanup(() => lb.close());

    const started = performance.now();
    const res = await get(`${lb.url}/`);
    const elapsed = performance.now() - started;
    assert.equal(res.status, 502);
    assert.equal(reset.attempts, 3, 'no other backend to move to: 1 attempt + 2 retries on the same one');
    assert.ok(elapsed >= 75, `each retry waited for the delay (${elapsed.toFixed(1)} ms)`);
    assert.equal(backendAt(lb, 0).available, true);
  });

  test('POST without a body that reached a backend which then reset is not retried', async (t) => {
    const cleanup = cleanupFor(t);
    const reset = await startResetServer();
    cleanup(() => reset.close());
    const live = await startBackend('live');
    cleanup(() => live.close());
    const lb = await startLb({ backends: [reset.url, live.url] });
    cleanup(() => lb.close());

    const res = await request(`${lb.url}/`, { method: 'POST' });
    await res.body.dump();
    assert.equal(res.statusCode, 502);
    assert.equal(reset.attempts, 1);
    assert.equal(live.seen.length, 0);
    assert.equal(backendAt(lb, 0).available, true);
  });

  test('with retriesPerBackend 0 a backend that refuses is marked down after its one attempt', async (t) => {
    const cleanup = cleanupFor(t);
    const dying = await startDyingPort();
    cleanup(() => dying.kill());
    const live = await startBackend('live');
    cleanup(() => live.close());
    const lb = await startLb({ backends: [dying.url, live.url], retry: { retriesPerBackend: 0 } });
    cleanup(() => lb.close());
    await dying.kill();

    assert.equal((await get(`${lb.url}/`)).text, 'live');
    assert.equal(backendAt(lb, 0).failuresTotal, 1);
    assert.equal(backendAt(lb, 0).available, false);
  });
});

describe('timeouts', () => {
  test('a connect timeout counts as never reached: a POST is retried, then moves to a live backend', async (t) => {
    const cleanup = cleanupFor(t);
    const blackhole = await startBlackhole({ fill: false });
    cleanup(() => blackhole.close());
    const live = await startEchoBackend('live');
    cleanup(() => live.close());
    const lb = await startLb({ backends: [blackhole.url, live.url], connectTimeoutMs: 150 });
    cleanup(() => lb.close());
    assert.equal(backendAt(lb, 0).available, true, 'the start-up probe got through before the queue filled');
    await blackhole.fill();

    const body = Buffer.from('created once');
    const res = await send(`${lb.url}/`, 'POST', body);
    assert.equal(res.status, 200);
    assert.ok(res.body.equals(body));
    assert.equal(backendAt(lb, 0).requestsTotal, 4);
    assert.equal(backendAt(lb, 0).available, false);
    const kinds = lb.logs.filter((e) => String(e['msg']).startsWith(`attempt to ${blackhole.url}`)).map((e) => `${String(e['kind'])} ${String(e['error'])}`);
    assert.deepEqual(kinds, Array(4).fill('connect UND_ERR_CONNECT_TIMEOUT'));
  });

  test('a backend that does not answer within upstreamTimeoutMs: 504, not retried, not marked down', async (t) => {
    const cleanup = cleanupFor(t);
    const silent = await startHoldingBackend('silent');
    const held = silent.held;
    cleanup(() => silent.close());
    const live = await startBackend('live');
    cleanup(() => live.close());
    const lb = await startLb({ backends: [silent.url, live.url], upstreamTimeoutMs: 200 });
    cleanup(() => lb.close());

    const res = await get(`${lb.url}/`);
    assert.equal(res.status, 504);
    assert.equal(res.text.trimEnd(), 'Gateway Timeout');
    assert.equal(silent.seen.length, 1, 'a timeout is never retried');
    assert.equal(live.seen.length, 0, 'nor moved to another backend');
    assert.equal(backendAt(lb, 0).available, true);
  });
});

describe('requests with a body are retried only when that is safe', () => {
  test('POST whose body reached a backend that then resets: 502, not retried, backend not marked down', async (t) => {
    const { flaky, live, lb } = await flakyThenLive(t);

    const body = Buffer.from('{"order":42}');
    const res = await send(`${lb.url}/orders`, 'POST', body);
    assert.equal(res.status, 502);
    assert.equal(flaky.seen.length, 1, 'the backend saw exactly one request');
    assert.deepEqual(flaky.bodies, [body]);
    assert.equal(live.seen.length, 0, 'the POST was not moved to another backend either');
    assert.equal(backendAt(lb, 0).available, true, 'one failed POST does not mark a backend down');
    assert.ok(messages(lb).some((m) => m.startsWith(`attempt to ${flaky.url} failed (reset`) && m.endsWith('not retried')), messages(lb).join('\n'));
  });

  test('POST to a dead port (the body never left) is retried and lands on a live backend with the exact body', async (t) => {
    const cleanup = cleanupFor(t);
    const dying = await startDyingPort();
    cleanup(() => dying.kill());
    const live = await startEchoBackend('live');
    cleanup(() => live.close());
    const lb = await startLb({ backends: [dying.url, live.url] });
    cleanup(() => lb.close());
    await dying.kill();

    const body = randomBytes(32 * 1024);
    const res = await send(`${lb.url}/upload`, 'POST', body);
    assert.equal(res.status, 200);
    assert.equal(res.backend, 'live');
    assert.ok(res.body.equals(body), 'echoed body matches');
    assert.equal(live.bodies.length, 1);
    assert.ok(live.bodies[0]?.equals(body), 'the live backend got the exact body');
    assert.equal(backendAt(lb, 0).requestsTotal, 4);
    assert.equal(backendAt(lb, 0).available, false);
  });

  test('POST with a body larger than the replay buffer still moves on when the body never left', async (t) => {
    const cleanup = cleanupFor(t);
    const dying = await startDyingPort();
    cleanup(() => dying.kill());
    const live = await startEchoBackend('live');
    cleanup(() => live.close());
    const lb = await startLb({ backends: [dying.url, live.url], retry: { replayBufferBytes: 1024 } });
    cleanup(() => lb.close());
    await dying.kill();

    const body = randomBytes(256 * 1024);
    const res = await send(`${lb.url}/`, 'POST', body);
    assert.equal(res.status, 200);
    assert.ok(live.bodies[0]?.equals(body));
  });

  test('a streamed (chunked) POST body to a dead port is retried and arrives whole', async (t) => {
    const cleanup = cleanupFor(t);
    const dying = await startDyingPort();
    cleanup(() => dying.kill());
    const live = await startEchoBackend('live');
    cleanup(() => live.close());
    const lb = await startLb({ backends: [dying.url, live.url] });
    cleanup(() => lb.close());
    await dying.kill();

    const chunks = [randomBytes(1000), randomBytes(20_000), randomBytes(7)];
    const res = await request(`${lb.url}/`, { method: 'POST', body: Readable.from(chunks) });
    const echoed = Buffer.from(await res.body.arrayBuffer());
    assert.equal(res.statusCode, 200);
    assert.ok(echoed.equals(Buffer.concat(chunks)));
    assert.equal(live.seen[0]?.headers['transfer-encoding'], 'chunked');
  });

  test('a streamed (chunked) PUT body is replayed exactly after a reset', async (t) => {
    const { flaky, live, lb } = await flakyThenLive(t);

    const chunks = [randomBytes(3000), randomBytes(3000), randomBytes(3000)];
    const whole = Buffer.concat(chunks);
    const res = await request(`${lb.url}/`, { method: 'PUT', body: Readable.from(chunks) });
    const echoed = Buffer.from(await res.body.arrayBuffer());
    assert.equal(res.statusCode, 200);
    assert.ok(echoed.equals(whole));
    assert.equal(flaky.bodies.length, 1, 'the reset moved the request on to live');
    for (const body of flaky.bodies) assert.ok(body.equals(whole));
    assert.ok(live.bodies[0]?.equals(whole), 'live got the exact body');
  });

  test('PUT with a small body to a backend that resets after reading it is replayed exactly', async (t) => {
    const { flaky, live, lb } = await flakyThenLive(t);

    const body = randomBytes(4000);
    const res = await send(`${lb.url}/doc/1`, 'PUT', body);
    assert.equal(res.status, 200);
    assert.equal(res.backend, 'live');
    assert.ok(res.body.equals(body));
    assert.equal(flaky.seen.length, 1, 'PUT is idempotent: replayed on the next backend');
    for (const seen of flaky.bodies) assert.ok(seen.equals(body), 'each replay carries the exact body');
    assert.equal(live.bodies.length, 1);
    assert.ok(live.bodies[0]?.equals(body));
    assert.equal(backendAt(lb, 0).available, true, 'a reset after the body was read does not mark it down');
  });

  test('PUT with a 64 KiB body, which arrives in more than one read, is replayed exactly', async (t) => {
    const { flaky, live, lb } = await flakyThenLive(t);

    // Head and body exceed one 64 KiB read: the body is kept in its chunks, and sent twice.
    const body = randomBytes(64 * 1024);
    const res = await send(`${lb.url}/doc/2`, 'PUT', body);
    assert.equal(res.status, 200);
    assert.ok(res.body.equals(body));
    assert.equal(flaky.seen.length, 1);
    assert.ok(flaky.bodies[0]?.equals(body), 'the first attempt carried the exact body');
    assert.ok(live.bodies[0]?.equals(body), 'the replay carried the exact body');
  });

  test('PUT with a body exactly at the replay cap is still replayed', async (t) => {
    const { flaky, live, lb } = await flakyThenLive(t, { retry: { replayBufferBytes: 1024 } });

    const body = randomBytes(1024);
    const res = await send(`${lb.url}/`, 'PUT', body);
    assert.equal(res.status, 200);
    assert.ok(res.body.equals(body));
    assert.equal(flaky.seen.length, 1);
    assert.ok(live.bodies[0]?.equals(body));
  });

  test('PUT with a body larger than the replay cap is not retried once it left', async (t) => {
    const { flaky, live, lb } = await flakyThenLive(t, { retry: { replayBufferBytes: 1024 } });

    const body = randomBytes(4096);
    const res = await send(`${lb.url}/`, 'PUT', body);
    assert.equal(res.status, 502);
    assert.equal(flaky.seen.length, 1, 'not retried on the same backend');
    assert.ok(flaky.bodies[0]?.equals(body));
    assert.equal(live.seen.length, 0, 'not moved to another backend');
    assert.equal(backendAt(lb, 0).available, true, 'not marked down');
  });

  test('POST during an outage: 20 concurrent POSTs all succeed and no healthy backend is ever marked down', async (t) => {
    const cleanup = cleanupFor(t);
    const events = recordStateChanges(cleanup);
    const dying = await startDyingPort();
    cleanup(() => dying.kill());
    const h1 = await startEchoBackend('h1');
    cleanup(() => h1.close());
    const h2 = await startEchoBackend('h2');
    cleanup(() => h2.close());
    const lb = await startLb({ backends: [dying.url, h1.url, h2.url] });
    cleanup(() => lb.close());
    await dying.kill();

    const bodies = Array.from({ length: 20 }, (_, i) => Buffer.from(`payload ${i} ${randomBytes(8).toString('hex')}`));
    const results = await Promise.all(bodies.map((body) => send(`${lb.url}/submit`, 'POST', body)));
    for (let i = 0; i < results.length; i++) {
      const res = results[i];
      assert.equal(res?.status, 200, `POST ${i}`);
      assert.ok(res.body.equals(bodies[i] as Buffer), `POST ${i} echoed its own body`);
    }
    // Each body arrived exactly once, across the two healthy backends.
    const delivered = [...h1.bodies, ...h2.bodies].map((b) => b.toString()).sort();
    assert.deepEqual(delivered, bodies.map((b) => b.toString()).sort());

    const h1Backend = backendAt(lb, 1);
    const h2Backend = backendAt(lb, 2);
    assert.equal(h1Backend.available, true);
    assert.equal(h2Backend.available, true);
    assert.deepEqual(
      events.filter((e) => (e.backend === h1Backend || e.backend === h2Backend) && !e.available),
      [],
      'a healthy backend was marked down at some point',
    );
    assert.equal(backendAt(lb, 0).available, false);
  });

  test('POSTs cut by a backend that resets after reading: those get 502, and nothing is marked down', async (t) => {
    const cleanup = cleanupFor(t);
    const events = recordStateChanges(cleanup);
    const flaky = await startResetAfterReadBackend('flaky');
    cleanup(() => flaky.close());
    const h1 = await startEchoBackend('h1');
    cleanup(() => h1.close());
    const h2 = await startEchoBackend('h2');
    cleanup(() => h2.close());
    const lb = await startLb({ backends: [flaky.url, h1.url, h2.url] });
    cleanup(() => lb.close());

    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => send(`${lb.url}/`, 'POST', Buffer.from(`p${i}`))));
    const statuses = results.map((r) => r.status);
    assert.equal(statuses.filter((s) => s === 502).length, flaky.seen.length, statuses.join());
    assert.equal(statuses.filter((s) => s === 200).length, h1.seen.length + h2.seen.length);
    assert.ok(flaky.seen.length >= 1);
    assert.equal(flaky.seen.length + h1.seen.length + h2.seen.length, 12, 'no POST was sent twice');
    assert.deepEqual(events.filter((e) => !e.available && e.backend.url !== flaky.url), []);
    for (const backend of lb.upstream.backends) assert.equal(backend.available, true, backend.url);
  });
});

describe('how many backends one request may try', () => {
  test('4 dead and 1 live: the first request gives up after 3 backends with 502, the next reaches live', async (t) => {
    const cleanup = cleanupFor(t);
    const dying = await Promise.all([1, 2, 3, 4].map(() => startDyingPort()));
    for (const d of dying) cleanup(() => d.kill());
    const live = await startBackend('live');
    cleanup(() => live.close());
    const lb = await startLb({ backends: [...dying.map((d) => d.url), live.url] });
    cleanup(() => lb.close());
    await Promise.all(dying.map((d) => d.kill()));

    const first = await get(`${lb.url}/`);
    assert.equal(first.status, 502, 'live backends are left, but this request has tried its 3');
    // A fresh retry count on each backend: 1 attempt + 3 retries on each of the 3.
    assert.deepEqual(
      lb.upstream.backends.map((b) => b.requestsTotal),
      [4, 4, 4, 0, 0],
    );
    assert.deepEqual(
      lb.upstream.backends.map((b) => b.available),
      [false, false, false, true, true],
    );
    const log = messages(lb);
    assert.equal(log.filter((m) => m.startsWith('moving request')).length, 2, log.join('\n'));

    const second = await get(`${lb.url}/`);
    assert.equal(second.status, 200);
    assert.equal(second.text, 'live');
    assert.deepEqual(
      lb.upstream.backends.map((b) => b.available),
      [false, false, false, false, true],
    );
    assert.equal(live.seen.length, 1);
  });

  test('retry.maxBackends 5 lets one request get past 4 dead backends', async (t) => {
    const cleanup = cleanupFor(t);
    const dying = await Promise.all([1, 2, 3, 4].map(() => startDyingPort()));
    for (const d of dying) cleanup(() => d.kill());
    const live = await startBackend('live');
    cleanup(() => live.close());
    const lb = await startLb({ backends: [...dying.map((d) => d.url), live.url], retry: { maxBackends: 5 } });
    cleanup(() => lb.close());
    await Promise.all(dying.map((d) => d.kill()));

    const res = await get(`${lb.url}/`);
    assert.equal(res.status, 200);
    assert.equal(res.text, 'live');
  });

  test('4 dead, none live: 502 while untried backends look alive, then 503 once nothing is left', async (t) => {
    const cleanup = cleanupFor(t);
    const dying = await Promise.all([1, 2, 3, 4].map(() => startDyingPort()));
    for (const d of dying) cleanup(() => d.kill());
    const lb = await startLb({ backends: dying.map((d) => d.url) });
    cleanup(() => lb.close());
    await Promise.all(dying.map((d) => d.kill()));

    const first = await get(`${lb.url}/`);
    assert.equal(first.status, 502);
    const second = await get(`${lb.url}/`);
    assert.equal(second.status, 503);
    assert.equal(second.text.trimEnd(), 'Service not available');
    assert.equal(lb.upstream.hasAvailable(), false);
  });

  test('3 dead: after the third fails nothing is alive, so the answer is 503', async (t) => {
    const cleanup = cleanupFor(t);
    const dying = await Promise.all([1, 2, 3].map(() => startDyingPort()));
    for (const d of dying) cleanup(() => d.kill());
    const lb = await startLb({ backends: dying.map((d) => d.url) });
    cleanup(() => lb.close());
    await Promise.all(dying.map((d) => d.kill()));

    const res = await get(`${lb.url}/`);
    assert.equal(res.status, 503);
    assert.equal(res.text.trimEnd(), 'Service not available');
  });

  test('2 dead: both tried, then no backend is left to pick: 503', async (t) => {
    const cleanup = cleanupFor(t);
    const dying = await Promise.all([1, 2].map(() => startDyingPort()));
    for (const d of dying) cleanup(() => d.kill());
    const lb = await startLb({ backends: dying.map((d) => d.url) });
    cleanup(() => lb.close());
    await Promise.all(dying.map((d) => d.kill()));

    const res = await get(`${lb.url}/`);
    assert.equal(res.status, 503);
    assert.equal(res.text.trimEnd(), 'Service not available');
    assert.equal(backendAt(lb, 0).requestsTotal + backendAt(lb, 1).requestsTotal, 8);
  });
});

describe('answers when no backend is alive', () => {
  test('every backend dead from the start: 503 "Service not available" without any attempt', async (t) => {
    const cleanup = cleanupFor(t);
    const lb = await startLb({ backends: [`http://127.0.0.1:${await deadPort()}`, `http://127.0.0.1:${await deadPort()}`] });
    cleanup(() => lb.close());

    for (const method of ['GET', 'POST']) {
      const res = await request(`${lb.url}/x`, { method: method as 'GET', body: method === 'POST' ? 'data' : null });
      const text = await res.body.text();
      assert.equal(res.statusCode, 503, method);
      assert.equal(text.trimEnd(), 'Service not available');
      assert.match(String(res.headers['content-type']), /^text\/plain/);
    }
    for (const backend of lb.upstream.backends) assert.equal(backend.requestsTotal, 0);
  });

  test("a backend's own 5xx is relayed as is, not retried, and not a failure", async (t) => {
    const cleanup = cleanupFor(t);
    const sick = await startBackend('sick', (req, res) => {
      req.resume();
      res.writeHead(503, { 'content-type': 'text/plain', 'x-backend': 'sick' });
      res.end('backend says no');
    });
    cleanup(() => sick.close());
    const broken = await startBackend('broken', (req, res) => {
      req.resume();
      res.writeHead(500, { 'x-backend': 'broken' });
      res.end('boom');
    });
    cleanup(() => broken.close());
    const lb = await startLb({ backends: [sick.url, broken.url] });
    cleanup(() => lb.close());

    for (let i = 0; i < 8; i++) {
      const res = await get(`${lb.url}/`);
      if (i % 2 === 0) assert.deepEqual(res, { status: 503, text: 'backend says no', backend: 'sick' });
      else assert.deepEqual(res, { status: 500, text: 'boom', backend: 'broken' });
    }
    const post = await send(`${lb.url}/`, 'POST', Buffer.from('x'));
    assert.equal(post.status, 503);
    assert.equal(sick.seen.length, 5, 'one request each, no retries');
    assert.equal(broken.seen.length, 4);
    for (const backend of lb.upstream.backends) {
      assert.equal(backend.available, true);
      assert.equal(backend.failuresTotal, 0);
    }
  });
});

describe('isRetryable', () => {
  test('a connection that never opened may be retried for any method, body or not', () => {
    for (const method of ['GET', 'POST', 'PATCH', 'PUT']) {
      assert.equal(isRetryable('connect', method, false, false), true, method);
      assert.equal(isRetryable('connect', method, false, true), true, method);
    }
  });

  test('a reset may be retried only for idempotent methods whose body is still kept', () => {
    assert.equal(isRetryable('reset', 'GET', false, true), true);
    assert.equal(isRetryable('reset', 'PUT', true, true), true);
    assert.equal(isRetryable('reset', 'DELETE', true, true), true);
    assert.equal(isRetryable('reset', 'PUT', true, false), false);
    assert.equal(isRetryable('reset', 'POST', true, true), false);
    assert.equal(isRetryable('reset', 'POST', false, true), false);
    assert.equal(isRetryable('reset', 'PATCH', true, true), false);
  });

  test('once a body that is no longer kept has left, nothing is retried', () => {
    assert.equal(isRetryable('connect', 'GET', true, false), false);
    assert.equal(isRetryable('reset', 'GET', true, false), false);
  });

  test('timeouts and protocol errors are never retried', () => {
    for (const kind of ['timeout', 'protocol'] as const) {
      assert.equal(isRetryable(kind, 'GET', false, true), false);
      assert.equal(isRetryable(kind, 'PUT', false, true), false);
    }
  });

  test('idempotent methods are those of RFC 9110 section 9.2.2', () => {
    for (const method of ['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']) assert.equal(isIdempotent(method), true, method);
    for (const method of ['POST', 'PATCH', 'CONNECT']) assert.equal(isIdempotent(method), false, method);
  });
});
