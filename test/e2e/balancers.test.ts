import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { describe, test } from 'node:test';
import { request } from 'undici';
import { DownReason, type BalancerName, type Switchyard } from '../../src/index.js';
import { cleanupFor } from '../helpers/cleanup.js';
import { startBackend, startLb, type TestBackend } from '../helpers/servers.js';

type Cleanup = ReturnType<typeof cleanupFor>;

async function backendsNamed(cleanup: Cleanup, names: readonly string[], delayMs: Record<string, number> = {}): Promise<TestBackend[]> {
  const started: TestBackend[] = [];
  for (const n of names) {
    const delay = delayMs[n] ?? 0;
    const backend = await startBackend(
      n,
      delay === 0
        ? undefined
        : (req, res) => {
            req.resume();
            const timer = setTimeout(() => res.writeHead(200, { 'x-backend': n }).end(n), delay);
            res.on('close', () => clearTimeout(timer));
          },
    );
    cleanup(() => backend.close());
    started.push(backend);
  }
  return started;
}

/** GET / and return the answering backend's name plus any Set-Cookie. */
async function get(lb: Switchyard, headers: Record<string, string> = {}): Promise<{ backend: string; setCookie: string | undefined }> {
  const res = await request(`${lb.url}/`, { headers });
  const backend = await res.body.text();
  assert.equal(res.statusCode, 200);
  const setCookie = res.headers['set-cookie'];
  return { backend, setCookie: Array.isArray(setCookie) ? setCookie[0] : setCookie };
}

/** Counts answers per backend over `total` requests, `concurrency` at a time. */
async function tally(lb: Switchyard, total: number, concurrency = 1, headersFor: (i: number) => Record<string, string> = () => ({})): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < total) {
      const i = next++;
      const { backend } = await get(lb, headersFor(i));
      counts[backend] = (counts[backend] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return counts;
}

const quiet = { format: 'json', level: 'warn' } as const;

describe('balancers end to end: real backends receive the expected share', () => {
  const cases: { balancer: BalancerName; weights: number[]; total: number; check: (counts: Record<string, number>) => void; ewmaDecayMs?: number }[] = [
    { balancer: 'round-robin', weights: [1, 1, 1], total: 30, check: (c) => assert.deepEqual(c, { a: 10, b: 10, c: 10 }) },
    { balancer: 'round-robin', weights: [3, 1, 1], total: 50, check: (c) => assert.deepEqual(c, { a: 30, b: 10, c: 10 }) },
    { balancer: 'weighted-round-robin', weights: [5, 1, 1], total: 70, check: (c) => assert.deepEqual(c, { a: 50, b: 10, c: 10 }) },
    { balancer: 'least-conn', weights: [1, 1, 1], total: 30, check: (c) => assert.deepEqual(c, { a: 10, b: 10, c: 10 }) },
    {
      balancer: 'ewma',
      weights: [1, 1, 1],
      total: 300,
      // Latency-driven: a backend whose answer was slower once (a new connection, a busy test
      // machine) is avoided until that peak decays; a short decay keeps every backend in play.
      ewmaDecayMs: 20,
      check: (c) => {
        for (const n of ['a', 'b', 'c']) assert.ok((c[n] ?? 0) >= 10, `ewma: ${JSON.stringify(c)}`);
      },
    },
    ...(['p2c', 'random'] as const).map((balancer) => ({
      balancer,
      weights: [1, 1, 1],
      total: 300,
      // Sequential requests: each gets a third, within 4 standard deviations (about 8 requests each).
      check: (c: Record<string, number>) => {
        for (const n of ['a', 'b', 'c']) assert.ok(Math.abs((c[n] ?? 0) - 100) <= 35, `${balancer}: ${JSON.stringify(c)}`);
      },
    })),
    { balancer: 'ip-hash', weights: [1, 1, 1], total: 20, check: (c) => assert.deepEqual(Object.values(c), [20]) },
  ];
  for (const { balancer, weights, total, check, ewmaDecayMs } of cases) {
    test(`${balancer} with weights ${weights.join(',')}`, async (t) => {
      const cleanup = cleanupFor(t);
      const backends = await backendsNamed(cleanup, ['a', 'b', 'c']);
      const lb = await startLb({ backends: backends.map((b, i) => ({ url: b.url, weight: weights[i] ?? 1 })), balancer, ...(ewmaDecayMs === undefined ? {} : { ewmaDecayMs }), log: quiet });
      cleanup(() => lb.close());
      check(await tally(lb, total));
    });
  }

  for (const balancer of ['ring-hash', 'maglev'] as const) {
    test(`${balancer} on a header key: one user, one backend; many users spread over all`, async (t) => {
      const cleanup = cleanupFor(t);
      const backends = await backendsNamed(cleanup, ['a', 'b', 'c']);
      const lb = await startLb({ backends: backends.map((b) => b.url), balancer, hashKey: { source: 'header', name: 'X-User' }, log: quiet });
      cleanup(() => lb.close());
      const alice = await tally(lb, 20, 4, () => ({ 'x-user': 'alice' }));
      assert.equal(Object.keys(alice).length, 1);
      const many = await tally(lb, 300, 4, (i) => ({ 'x-user': `user-${i}` }));
      for (const n of ['a', 'b', 'c']) assert.ok((many[n] ?? 0) > 50, JSON.stringify(many));
    });
  }

  for (const balancer of ['least-conn', 'ewma'] as const) {
    test(`${balancer} routes away from a slow backend`, async (t) => {
      const cleanup = cleanupFor(t);
      const backends = await backendsNamed(cleanup, ['a', 'b', 'slow'], { slow: 150 });
      const lb = await startLb({ backends: backends.map((b) => b.url), balancer, log: quiet });
      cleanup(() => lb.close());
      const counts = await tally(lb, 240, 6);
      // Round-robin would give it 80.
      assert.ok((counts['slow'] ?? 0) < 30, JSON.stringify(counts));
    });
  }

  test('max in-flight: a backend at its limit is skipped', async (t) => {
    const cleanup = cleanupFor(t);
    const backends = await backendsNamed(cleanup, ['a', 'slow'], { slow: 300 });
    const slowBackend = backends[1] as TestBackend;
    // The slow backend's own count of requests it holds at once.
    let holding = 0;
    let mostHeld = 0;
    slowBackend.server.prependListener('request', (_req, res: ServerResponse) => {
      mostHeld = Math.max(mostHeld, ++holding);
      res.on('close', () => holding--);
    });
    const lb = await startLb({ backends: backends.map((b) => b.url), maxInFlight: 1, log: quiet });
    cleanup(() => lb.close());
    // Two at a time: while the slow backend holds one request, round-robin's turns for it go to a.
    const counts = await tally(lb, 40, 2);
    const slow = counts['slow'] ?? 0;
    assert.equal(slow + (counts['a'] ?? 0), 40, JSON.stringify(counts));
    // It takes requests when free (the first one at least), never two at once, and only a few
    // in all: each holds it for 300 ms while the other client goes on with a.
    assert.ok(slow >= 1 && slow <= 2, JSON.stringify(counts));
    assert.equal(mostHeld, 1, 'the slow backend never held two requests at once');
  });
});

describe('sticky sessions end to end', () => {
  const secret = 'sticky secret for tests';

  test('a client keeps its backend for 100 requests and across a restart with the same secret', async (t) => {
    const cleanup = cleanupFor(t);
    const backends = await backendsNamed(cleanup, ['a', 'b', 'c']);
    const options = { backends: backends.map((b) => b.url), sticky: { secret }, log: quiet };
    const first = await startLb(options);
    cleanup(() => first.close());
    await get(first); // moves the round-robin counter so the pin is not simply the first backend
    const { backend: pinned, setCookie } = await get(first);
    assert.match(setCookie ?? '', /^swy=[A-Za-z0-9_-]+; Path=\/; HttpOnly; SameSite=Lax$/);
    const cookie = (setCookie ?? '').split(';')[0] as string;
    for (let i = 0; i < 100; i++) {
      const answer = await get(first, { cookie });
      assert.equal(answer.backend, pinned);
      assert.equal(answer.setCookie, undefined, 'no re-issue while pinned');
    }
    await first.close();
    const second = await startLb(options);
    cleanup(() => second.close());
    for (let i = 0; i < 10; i++) assert.equal((await get(second, { cookie: `other=1; ${cookie}` })).backend, pinned);
  });

  test('re-pinned with a new cookie when its backend is drained', async (t) => {
    const cleanup = cleanupFor(t);
    const backends = await backendsNamed(cleanup, ['a', 'b', 'c']);
    const lb = await startLb({ backends: backends.map((b) => b.url), sticky: { secret, cookie: 'pin', ttlMs: 60_000 }, log: quiet });
    cleanup(() => lb.close());
    const { backend: pinned, setCookie } = await get(lb);
    assert.match(setCookie ?? '', /^pin=.*; Max-Age=60$/);
    const drained = lb.upstream.backends.find((b) => b.port === backends.find((tb) => tb.seen.length > 0)?.port);
    assert.ok(drained !== undefined);
    drained.markDown(DownReason.draining);
    const moved = await get(lb, { cookie: (setCookie ?? '').split(';')[0] as string });
    assert.notEqual(moved.backend, pinned);
    assert.ok(moved.setCookie !== undefined && moved.setCookie !== setCookie, 'a new cookie');
    const newCookie = moved.setCookie.split(';')[0] as string;
    for (let i = 0; i < 10; i++) assert.equal((await get(lb, { cookie: newCookie })).backend, moved.backend);
  });
});
