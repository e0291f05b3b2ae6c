import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cleanupFor } from '../helpers/cleanup.js';
import { describeLoad, runLoad } from '../helpers/load.js';
import { startBackend, startLb, type TestBackend } from '../helpers/servers.js';

/**
 * Fault scenario from issue 5: every backend dies under a running load balancer. Once retries
 * have marked them down, requests get 503 `Service not available` at once, with no attempt and
 * so no retry delay; when one backend comes back, a health check round brings it into service.
 */
const concurrency = 16;
const retry = { retriesPerBackend: 3, retryDelayMs: 10, maxBackends: 3 };

test('all backends down: fast 503s with no attempts, then recovery after a health check', { timeout: 30_000 }, async (t) => {
  const cleanup = cleanupFor(t);
  const backends: TestBackend[] = await Promise.all(['a', 'b', 'c'].map((name) => startBackend(name)));
  cleanup(() => Promise.all(backends.map((b) => b.close())));
  // The active check stays out of the way (60 s): only failed requests mark the backends down.
  const lb = await startLb({ backends: backends.map((b) => b.url), log: { level: 'silent' }, healthIntervalMs: 60_000, retry });
  cleanup(() => lb.close());
  const warm = await runLoad({ url: `${lb.url}/`, concurrency, count: 300 });
  assert.equal(warm.statuses[200], 300, describeLoad(warm));

  await Promise.all(backends.map((b) => b.close()));
  const attemptsBefore = lb.upstream.backends.reduce((sum, b) => sum + b.requestsTotal, 0);
  const down = await runLoad({
    url: `${lb.url}/`,
    concurrency,
    durationMs: 1500,
    check: (status, body) => (status === 503 && body === 'Service not available\n' ? null : `${status} ${JSON.stringify(body)}`),
  });
  const attempts = lb.upstream.backends.reduce((sum, b) => sum + b.requestsTotal, 0) - attemptsBefore;
  t.diagnostic(`all down: ${describeLoad(down)}; upstream attempts ${attempts}`);
  assert.equal(down.problems, 0, describeLoad(down));
  assert.deepEqual(down.errors, {});
  assert.ok(lb.upstream.backends.every((b) => !b.available), 'every backend is out of rotation');
  // Only the first wave of requests (one per client) tried the backends, each at most every
  // attempt its retry policy allows; every later request was answered without an attempt.
  const firstWaveBound = concurrency * retry.maxBackends * (retry.retriesPerBackend + 1);
  assert.ok(attempts <= firstWaveBound, `attempts (${attempts}) within the first wave's ${firstWaveBound}`);
  assert.ok(down.requests > 10 * concurrency, `many more requests (${down.requests}) than the first wave`);

  // One backend comes back on its port; the next health check round brings it into service.
  const revived = await startBackend('b', undefined, backends[1]?.port);
  backends[1] = revived;
  await lb.checkHealth();
  const recovered = await runLoad({
    url: `${lb.url}/`,
    concurrency,
    count: 500,
    check: (status, body) => (status === 200 && body === 'b' ? null : `${status} ${JSON.stringify(body)}`),
  });
  t.diagnostic(`after recovery: ${describeLoad(recovered)}`);
  assert.equal(recovered.failures, 0, describeLoad(recovered));
  assert.equal(revived.seen.length, 500);
});
