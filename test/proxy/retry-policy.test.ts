import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test, type TestContext } from 'node:test';
import { request } from 'undici';
import { optionsFromFlags, parseArgs } from '../../src/args.js';
import type { Random } from '../../src/clock.js';
import { parseConfigInput } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { configFromStartOptions } from '../../src/options.js';
import type { StartOptions } from '../../src/index.js';
import { backoffDelayMs, hasIdempotencyKey, isRetryable } from '../../src/proxy/retry.js';
import { seededRandom } from '../helpers/balancing.js';
import { cleanupFor } from '../helpers/cleanup.js';
import { startEchoBackend, startHoldingBackend, startResetAfterReadBackend, startDyingPort } from '../helpers/faults.js';
import { startBackend, startLb, until, type TestBackend } from '../helpers/servers.js';

interface Reply {
  status: number;
  text: string;
  backend: string | undefined;
}

async function send(url: string, method: string, headers: Record<string, string> = {}, body: Buffer | null = null): Promise<Reply> {
  const res = await request(url, { method: method as 'GET', headers, body });
  const text = await res.body.text();
  const backend = res.headers['x-backend'];
  return { status: res.statusCode, text, backend: typeof backend === 'string' ? backend : undefined };
}

/** Answers every request with `status`, `x-backend: name` and a body naming both. */
function startStatusBackend(name: string, status: number): Promise<TestBackend> {
  return startBackend(name, (req, res) => {
    req.resume();
    res.writeHead(status, { 'x-backend': name, 'content-type': 'text/plain', 'retry-after': '1' });
    res.end(`${name} says ${status}`);
  });
}

/** Backends and a Switchyard in front of them, all closed when the test ends. */
async function behind(t: TestContext, backends: readonly { url: string; close(): Promise<void> }[], options: Partial<StartOptions>) {
  const cleanup = cleanupFor(t);
  for (const backend of backends) cleanup(() => backend.close());
  const lb = await startLb({ backends: backends.map((b) => b.url), ...options });
  cleanup(() => lb.close());
  return lb;
}

function messages(lb: { logs: Record<string, unknown>[] }): string[] {
  return lb.logs.map((entry) => String(entry['msg']));
}

describe('Idempotency-Key', () => {
  test('a POST carrying an Idempotency-Key is replayed after a reset; without one it is not', async (t) => {
    const flaky = await startResetAfterReadBackend('flaky');
    const live = await startEchoBackend('live');
    const lb = await behind(t, [flaky, live], {});

    const body = randomBytes(2000);
    const keyed = await send(`${lb.url}/orders`, 'POST', { 'idempotency-key': '"8e03978e-40d5-43e8-bc93-6894a57f9324"' }, body);
    assert.equal(keyed.status, 200);
    assert.equal(keyed.backend, 'live');
    assert.equal(flaky.bodies.length, 1, 'one attempt on the resetting backend, then the next one');
    for (const seen of flaky.bodies) assert.ok(seen.equals(body), 'each replay carries the exact body');
    assert.ok(live.bodies[0]?.equals(body));
    assert.equal(live.seen[0]?.headers['idempotency-key'], '"8e03978e-40d5-43e8-bc93-6894a57f9324"', 'the key is forwarded');
  });

  test('without the key the same POST gets 502 after one attempt', async (t) => {
    const flaky = await startResetAfterReadBackend('flaky');
    const live = await startEchoBackend('live');
    const lb = await behind(t, [flaky, live], {});

    const res = await send(`${lb.url}/orders`, 'POST', {}, Buffer.from('order'));
    assert.equal(res.status, 502);
    assert.equal(flaky.seen.length, 1);
    assert.equal(live.seen.length, 0);
  });

  test('hasIdempotencyKey and isRetryable', () => {
    assert.equal(hasIdempotencyKey(['Host', 'x', 'Idempotency-Key', 'k']), true);
    assert.equal(hasIdempotencyKey(['Host', 'x', 'Idempotency-Keys', 'k']), false);
    assert.equal(isRetryable('reset', 'POST', true, true, ['connect', 'reset'], true), true);
    assert.equal(isRetryable('reset', 'POST', true, false, ['connect', 'reset'], true), false, 'a body no longer kept');
    assert.equal(isRetryable('timeout', 'GET', false, true, ['connect', 'reset'], false), false, 'timeouts are not listed by default');
    assert.equal(isRetryable('timeout', 'GET', false, true, ['timeout'], false), true);
    assert.equal(isRetryable('timeout', 'PATCH', false, true, ['timeout'], false), false);
    assert.equal(isRetryable('connect', 'POST', false, true, ['reset'], false), false, 'connect not listed');
    assert.equal(isRetryable('status', 'GET', false, true, [], false), true, 'statuses are listed apart');
    assert.equal(isRetryable('protocol', 'GET', false, true, ['connect', 'reset', 'timeout'], true), false);
  });
});

describe('retryOn', () => {
  test('a timeout is answered 504 when timeout is not listed, and retried on the next backend when it is', async (t) => {
    const slow = await startHoldingBackend('slow');
    const live = await startBackend('live');
    const options: Partial<StartOptions> = { upstreamTimeoutMs: 300 };
    const lb = await behind(t, [slow, live], options);

    const first = await send(`${lb.url}/`, 'GET');
    assert.equal(first.status, 504);
    assert.equal(slow.held.length, 1);
    assert.equal(live.seen.length, 0, 'a timeout is not retried by default');

    const listed = await behind(t, [], { backends: [slow.url, live.url], upstreamTimeoutMs: 300, retry: { retryOn: ['connect', 'reset', 'timeout'], retriesPerBackend: 0 } });
    const second = await send(`${listed.url}/`, 'GET');
    assert.equal(second.status, 200);
    assert.equal(second.backend, 'live');
    assert.equal(slow.held.length, 2);
  });

  test('a listed timeout is still not retried for a POST without an Idempotency-Key', async (t) => {
    const slow = await startHoldingBackend('slow');
    const live = await startBackend('live');
    const lb = await behind(t, [slow, live], { upstreamTimeoutMs: 300, retry: { retryOn: ['timeout'], retriesPerBackend: 0 } });

    const res = await send(`${lb.url}/`, 'POST', {}, Buffer.from('x'));
    assert.equal(res.status, 504);
    assert.equal(live.seen.length, 0);
  });

  test('connect failures are not retried when connect is not listed', async (t) => {
    const dying = await startDyingPort();
    const live = await startBackend('live');
    const lb = await behind(t, [live], { backends: [dying.url, live.url], retry: { retryOn: ['reset'] } });
    t.after(() => dying.kill());
    await dying.kill();

    const res = await send(`${lb.url}/`, 'GET');
    assert.equal(res.status, 502);
    assert.equal(live.seen.length, 0);
  });
});

describe('retryStatuses', () => {
  test('a listed 503 is discarded and the request retried on another backend', async (t) => {
    const sick = await startStatusBackend('sick', 503);
    const live = await startBackend('live');
    const lb = await behind(t, [sick, live], { retry: { retryStatuses: [502, 503, 504], retriesPerBackend: 0 } });

    const res = await send(`${lb.url}/`, 'GET');
    assert.deepEqual(res, { status: 200, text: 'live', backend: 'live' });
    assert.equal(sick.seen.length, 1);
    assert.equal(lb.upstream.backends[0]?.available, true, 'a backend that answers is not marked down');
  });

  test('an unlisted 503 is relayed as it is', async (t) => {
    const sick = await startStatusBackend('sick', 503);
    const live = await startBackend('live');
    const lb = await behind(t, [sick, live], { retry: { retryStatuses: [502], retriesPerBackend: 0 } });

    const res = await send(`${lb.url}/`, 'GET');
    assert.deepEqual(res, { status: 503, text: 'sick says 503', backend: 'sick' });
    assert.equal(live.seen.length, 0);
  });

  test('with retries spent the last listed response reaches the client as it was', async (t) => {
    const sick = await startStatusBackend('sick', 503);
    const lb = await behind(t, [sick], { retry: { retryStatuses: [503], retriesPerBackend: 2 } });

    const res = await request(`${lb.url}/`);
    const text = await res.body.text();
    assert.equal(res.statusCode, 503);
    assert.equal(text, 'sick says 503');
    assert.equal(res.headers['retry-after'], '1');
    assert.equal(sick.seen.length, 3, '1 attempt + 2 retries, the last one relayed');
    assert.equal(lb.upstream.backends[0]?.available, true);
  });

  test('a listed status is relayed at once for a POST without an Idempotency-Key', async (t) => {
    const sick = await startStatusBackend('sick', 503);
    const live = await startBackend('live');
    const lb = await behind(t, [sick, live], { retry: { retryStatuses: [503] } });

    const res = await send(`${lb.url}/`, 'POST', {}, Buffer.from('x'));
    assert.deepEqual(res, { status: 503, text: 'sick says 503', backend: 'sick' });
    assert.equal(sick.seen.length, 1);
    assert.equal(live.seen.length, 0);
  });
});

describe('perTryTimeout and tryDuration', () => {
  test('a per-try timeout moves the request to a healthy backend long before the upstream timeout', async (t) => {
    const slow = await startHoldingBackend('slow');
    const live = await startBackend('live');
    const lb = await behind(t, [slow, live], { upstreamTimeoutMs: 60_000, retry: { perTryTimeoutMs: 200, retryOn: ['connect', 'reset', 'timeout'], retriesPerBackend: 0 } });

    const startedMs = performance.now();
    const res = await send(`${lb.url}/`, 'GET');
    const elapsedMs = performance.now() - startedMs;
    assert.deepEqual(res, { status: 200, text: 'live', backend: 'live' });
    assert.equal(slow.held.length, 1);
    assert.ok(elapsedMs >= 190, `waited for the per-try timeout (${elapsedMs.toFixed(0)} ms)`);
    assert.ok(elapsedMs < 30_000, `well before the upstream timeout (${elapsedMs.toFixed(0)} ms)`);
  });

  test('tryDuration: no attempt starts once it is spent, and the last error is the answer', async (t) => {
    // Deterministic timing, from the backend's own timers: the first attempt is reset at once,
    // long before tryDuration (600 ms) is spent, so it is retried; every later one is reset
    // after 700 ms, when tryDuration is spent whatever the machine's speed: exactly two attempts.
    // (Not the per-try timeout: undici runs it on timers that can fire up to ~0.5 s early.)
    const attempts: number[] = [];
    const backend = await startBackend('flaky-then-slow', (req) => {
      attempts.push(performance.now());
      req.resume();
      if (attempts.length === 1) req.socket.resetAndDestroy();
      else {
        const timer = setTimeout(() => req.socket.resetAndDestroy(), 700);
        req.socket.on('close', () => clearTimeout(timer));
      }
    });
    const lb = await behind(t, [backend], { retry: { tryDurationMs: 600, retryOn: ['reset'], retriesPerBackend: 10 } });

    const startedMs = performance.now();
    const res = await send(`${lb.url}/`, 'GET');
    t.diagnostic(`answered after ${(performance.now() - startedMs).toFixed(0)} ms; attempts at ${attempts.map((at) => (at - startedMs).toFixed(0)).join(', ')} ms`);
    assert.equal(res.status, 502, 'the last error, a reset, is the answer');
    assert.equal(attempts.length, 2, `${attempts.length} attempts`);
    assert.ok(messages(lb).some((m) => m.endsWith('not retried: tryDuration 600 ms spent')), messages(lb).join('\n'));
  });
});

describe('backoff', () => {
  test('the pause is retryDelay exactly unless maxRetryDelay is above it', () => {
    const random = seededRandom(7);
    for (let retry = 1; retry <= 5; retry++) assert.equal(backoffDelayMs(retry, 10, 0, random), 10);
    assert.equal(backoffDelayMs(3, 10, 10, random), 10);
  });

  test('the ceiling doubles up to maxRetryDelay and each pause is jittered below it', () => {
    const random = seededRandom(42);
    const seen = new Set<number>();
    for (let round = 0; round < 200; round++) {
      for (let retry = 1; retry <= 8; retry++) {
        const delay = backoffDelayMs(retry, 10, 250, random);
        const ceiling = Math.min(250, 10 * 2 ** (retry - 1));
        assert.ok(delay >= 0 && delay <= ceiling, `retry ${retry}: ${delay} within [0, ${ceiling}]`);
        if (retry === 8) seen.add(delay);
      }
    }
    assert.ok(seen.size > 50, 'pauses at the cap are spread, not all equal');
    const top: Random = { next: () => 0.999 };
    assert.deepEqual([1, 2, 3, 4, 5, 6].map((r) => backoffDelayMs(r, 10, 250, top)), [10, 20, 40, 80, 160, 250]);
  });

  test('the exchange uses the injected Random, and attempts are at least the pauses apart', async (t) => {
    const startedAt: number[] = [];
    const flaky = await startBackend('flaky', (req) => {
      startedAt.push(performance.now());
      req.resume();
      req.socket.resetAndDestroy();
    });
    const retry = { retryDelayMs: 20, maxRetryDelayMs: 500, retriesPerBackend: 4 };
    const lb = await behind(t, [flaky], { random: seededRandom(3), retry });

    const res = await send(`${lb.url}/`, 'GET');
    assert.equal(res.status, 502, 'the only backend took the request and failed it each time');
    assert.equal(lb.upstream.backends[0]?.available, true, 'resets after sending do not mark it down');
    assert.equal(startedAt.length, 5);
    const expected = seededRandom(3);
    const pauses = [1, 2, 3, 4].map((n) => backoffDelayMs(n, retry.retryDelayMs, retry.maxRetryDelayMs, expected));
    const logged = messages(lb)
      .map((m) => /retry (\d) of 4 in (\d+) ms$/.exec(m))
      .filter((m) => m !== null)
      .map((m) => Number(m[2]));
    assert.deepEqual(logged, pauses, 'the logged pauses are those of the seeded Random');
    for (let i = 1; i < startedAt.length; i++) {
      const gap = (startedAt[i] as number) - (startedAt[i - 1] as number);
      assert.ok(gap >= (pauses[i - 1] as number) - 2, `attempt ${i + 1} came ${gap.toFixed(1)} ms after the previous, pause ${pauses[i - 1]}`);
    }
  });
});

describe('retry budget', () => {
  /** Sends `count` GETs at once to a backend that never answers and counts the attempts it saw. */
  async function outage(t: TestContext, count: number, budget: { budgetMinRetries: number; budgetPercent: number }) {
    const slow = await startHoldingBackend('slow');
    const lb = await behind(t, [slow], { retry: { perTryTimeoutMs: 400, retryOn: ['timeout'], retriesPerBackend: 1, ...budget } });
    const replies = await Promise.all(Array.from({ length: count }, () => send(`${lb.url}/`, 'GET')));
    for (const reply of replies) assert.ok(reply.status === 504 || reply.status === 503, String(reply.status));
    const retryBudget = lb.upstream.retryBudget;
    await until(() => retryBudget.activeRequests === 0 && retryBudget.activeRetries === 0, 5000, 'the budget counters to return to 0');
    return slow.held.length;
  }

  test('N concurrent requests to an upstream that never answers cause at most N + minRetries retries', async (t) => {
    const attempts = await outage(t, 10, { budgetMinRetries: 2, budgetPercent: 0 });
    assert.ok(attempts >= 11 && attempts <= 12, `${attempts} attempts for 10 requests`);
  });

  test('the percentage of active requests sets the budget when above minRetries', async (t) => {
    const attempts = await outage(t, 10, { budgetMinRetries: 0, budgetPercent: 20 });
    assert.ok(attempts >= 11 && attempts <= 12, `${attempts} attempts for 10 requests`);
  });

  test('without a tight budget every request retries (the control)', async (t) => {
    const attempts = await outage(t, 10, { budgetMinRetries: 100, budgetPercent: 0 });
    assert.equal(attempts, 20);
  });
});

describe('retry flags and config', () => {
  const flagsOf = (argv: string[]) => optionsFromFlags(parseArgs(['--backends', 'http://127.0.0.1:1', ...argv]).flags);

  test('--retry-on, --retry-statuses and --per-try-timeout reach the upstream config', () => {
    const options = flagsOf(['--retry-on', 'connect,timeout', '--retry-statuses', '502, 503', '--per-try-timeout', '2s']);
    assert.deepEqual(options.retry, { retryOn: ['connect', 'timeout'], retryStatuses: [502, 503], perTryTimeoutMs: 2000 });
    const retry = configFromStartOptions(options).upstreams['default']?.retry;
    assert.deepEqual(retry?.retryOn, ['connect', 'timeout']);
    assert.deepEqual(retry?.retryStatuses, [502, 503]);
    assert.equal(retry?.perTryTimeout, 2000);
  });

  test('bad values are refused with the flag named', () => {
    assert.throws(() => flagsOf(['--retry-on', 'reset,sometimes']), (err: unknown) => err instanceof ConfigError && /--retry-on: "sometimes" is not one of connect, reset, timeout/.test(err.message));
    assert.throws(() => flagsOf(['--retry-statuses', '200']), /--retry-statuses: "200"/);
    assert.throws(() => flagsOf(['--per-try-timeout', 'soon']), /--per-try-timeout/);
  });

  test('the defaults keep the simple design: connect and reset, no statuses, no per-try limit', () => {
    const retry = configFromStartOptions({ backends: ['http://127.0.0.1:1'] }).upstreams['default']?.retry;
    assert.deepEqual(retry, {
      retriesPerBackend: 3,
      retryDelay: 10,
      maxRetryDelay: 0,
      maxBackends: 3,
      replayBuffer: 64 * 1024,
      retryOn: ['connect', 'reset'],
      retryStatuses: [],
      perTryTimeout: 0,
      tryDuration: 0,
      budget: { minRetries: 3, percent: 20 },
    });
  });

  test('a config file section is validated and reaches the upstream', () => {
    const config = parseConfigInput({
      upstreams: { api: { backends: ['http://127.0.0.1:1'], retry: { retryOn: ['timeout'], retryStatuses: [503], perTryTimeout: '2s', tryDuration: '5s', maxRetryDelay: '250ms', budget: { percent: 50 } } } },
    });
    const retry = config.upstreams['api']?.retry;
    assert.deepEqual(retry?.budget, { minRetries: 3, percent: 50 });
    assert.equal(retry?.perTryTimeout, 2000);
    assert.equal(retry?.tryDuration, 5000);
    assert.equal(retry?.maxRetryDelay, 250);
    assert.throws(() => parseConfigInput({ upstreams: { api: { backends: ['http://127.0.0.1:1'], retry: { retryOn: ['always'] } } } }), /upstreams\.api\.retry\.retryOn/);
    assert.throws(() => parseConfigInput({ upstreams: { api: { backends: ['http://127.0.0.1:1'], retry: { retryStatuses: [200] } } } }), /upstreams\.api\.retry\.retryStatuses/);
    assert.throws(() => parseConfigInput({ upstreams: { api: { backends: ['http://127.0.0.1:1'], retry: { budget: { percent: 150 } } } } }), /upstreams\.api\.retry\.budget\.percent/);
  });
});
