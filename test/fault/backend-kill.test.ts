import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import { test } from 'node:test';
import type { BackendStateEvent } from '../../src/events.js';
import { cleanupFor } from '../helpers/cleanup.js';
import { describeLoad, startLoad } from '../helpers/load.js';
import { startBackend, startLb, until, type TestBackend } from '../helpers/servers.js';

/**
 * Fault scenario from issue 5: one of three backends is killed under load (listener and
 * keep-alive sockets closed) and later restarted on the same port. Retries move its requests,
 * so no GET fails; it leaves rotation at once and rejoins after a health check passes.
 */
const healthIntervalMs = 200;
const healthTimeoutMs = 500;

test('a backend killed under load leaves rotation with no failed GET, and rejoins when restarted', { timeout: 30_000 }, async (t) => {
  const cleanup = cleanupFor(t);
  const backends: TestBackend[] = await Promise.all(['a', 'b', 'c'].map((name) => startBackend(name)));
  // Closing twice is harmless, so the clean-up closes whatever runs at the end.
  cleanup(() => Promise.all(backends.map((b) => b.close())));
  const lb = await startLb({ backends: backends.map((b) => b.url), log: { level: 'error' }, healthIntervalMs, healthTimeoutMs });
  cleanup(() => lb.close());
  const victim = lb.upstream.backends[1];
  assert.ok(victim !== undefined && victim.port === backends[1]?.port);

  // Every down/up transition of the victim, with its time.
  const transitions: { atMs: number; available: boolean; reason: string }[] = [];
  const onState = (message: unknown): void => {
    const event = message as BackendStateEvent;
    if (event.backend === victim) transitions.push({ atMs: performance.now(), available: event.available, reason: event.reason });
  };
  diagnosticsChannel.subscribe('switchyard:backend:state', onState);
  cleanup(() => diagnosticsChannel.unsubscribe('switchyard:backend:state', onState));

  const load = startLoad({
    url: `${lb.url}/`,
    concurrency: 16,
    check: (status, body, headers) => (status === 200 && body === headers['x-backend'] ? null : `${status} ${JSON.stringify(body)}`),
  });
  cleanup(() => load.stop());
  await until(() => load.requests >= 500 && (backends[1]?.seen.length ?? 0) > 50, 5000, 'load to reach every backend');

  // Kill: the listener and its keep-alive sockets go at once, like a crashed process.
  const killedAt = performance.now();
  await (backends[1] as TestBackend).close();
  await until(() => transitions.some((e) => !e.available), healthIntervalMs + healthTimeoutMs + 2000, 'the killed backend to leave rotation');
  const down = transitions.find((e) => !e.available) as (typeof transitions)[number];
  const leaveMs = down.atMs - killedAt;

  // While it is dead, traffic goes on to the others.
  const requestsWhileDown = load.requests;
  await until(() => load.requests >= requestsWhileDown + 500, 5000, 'load to go on while the backend is dead');

  // Restart on the same port; a health check pass brings it back and it gets requests again.
  const restarted = await startBackend('b', undefined, victim.port);
  backends[1] = restarted;
  const restartedAt = performance.now();
  await until(() => victim.available, healthIntervalMs + healthTimeoutMs + 2000, 'the restarted backend to rejoin');
  const rejoinMs = performance.now() - restartedAt;
  await until(() => restarted.seen.length >= 20, 5000, 'the restarted backend to get requests again');
  const servedAgainMs = performance.now() - restartedAt;

  const report = await load.stop();
  t.diagnostic(describeLoad(report));
  t.diagnostic(
    `time to leave rotation ${leaveMs.toFixed(0)} ms (reason ${down.reason}); time to rejoin ${rejoinMs.toFixed(0)} ms, ` +
      `to be served again ${servedAgainMs.toFixed(0)} ms (health interval ${healthIntervalMs} ms); transitions ${transitions.map((e) => `${e.available ? 'up' : 'down'}:${e.reason}`).join(' ')}`,
  );
  assert.equal(report.failures, 0, `no GET failed: ${describeLoad(report)}`);
  assert.ok(report.requests > 1000, 'the load ran through the whole scenario');
  // How fast it left and rejoined is in the figures above (a busy machine stretches them); the
  // bounded waits above fail the test if either did not happen at all.
  assert.deepEqual(
    transitions.map((e) => e.available),
    [false, true],
    'one down and one up transition',
  );
});
