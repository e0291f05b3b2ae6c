import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import { describe, test } from 'node:test';
import type { HealthCheckEvent } from '../../src/events.js';
import { healthHistorySize, type Backend } from '../../src/upstream/backend.js';
import { seededRandom } from '../helpers/balancing.js';
import { cleanupFor } from '../helpers/cleanup.js';
import { startCountingServer } from '../helpers/faults.js';
import { makeBackend, makeChecker, ManualClock, messages } from '../helpers/health.js';
import { deadPort, until } from '../helpers/servers.js';

/** Read through a call so a check for null above does not narrow it for the rest of the test. */
const lastOf = (backend: Backend): Backend['lastHealthCheck'] => backend.lastHealthCheck;

describe('health check schedule', () => {
  test('after the first round each backend waits interval ± jitter, drawn from the injected Random', async (t) => {
    const cleanup = cleanupFor(t);
    const counting = await startCountingServer();
    cleanup(() => counting.close());
    const created: Backend[] = [];
    cleanup(() => Promise.all(created.map((b) => b.close())));
    const backends = Array.from({ length: 40 }, () => makeBackend(counting.url, created));
    const clock = new ManualClock();
    const { checker } = makeChecker(backends, { intervalMs: 1000, jitter: 0.2 }, { clock, random: seededRandom(5) });
    t.after(() => checker.stop());
    await checker.start();

    const delays = clock.pending().map((timer) => timer.ms);
    assert.equal(delays.length, 40, 'one timer per backend');
    for (const ms of delays) assert.ok(ms >= 800 && ms <= 1200, `delay ${ms} within 1000 ± 20%`);
    // Spread: the draws cover most of the 400 ms window rather than bunching.
    assert.ok(Math.max(...delays) - Math.min(...delays) > 300, `delays span ${Math.min(...delays)}..${Math.max(...delays)}`);
    assert.ok(new Set(delays).size > 30, 'delays differ from backend to backend');
  });

  test('the jitter bounds are reached by the extreme draws, and jitter 0 means exactly the interval', async (t) => {
    const cleanup = cleanupFor(t);
    const counting = await startCountingServer();
    cleanup(() => counting.close());
    const created: Backend[] = [];
    cleanup(() => Promise.all(created.map((b) => b.close())));
    const backend = makeBackend(counting.url, created);
    const delays: number[] = [];
    for (const [jitter, draw] of [[0.5, 0], [0.5, 0.999_999], [0, 0.3]] as const) {
      const clock = new ManualClock();
      const { checker } = makeChecker([backend], { intervalMs: 2000, jitter }, { clock, random: { next: () => draw } });
      await checker.round();
      delays.push(clock.pending()[0]?.ms ?? -1);
      await checker.stop();
    }
    assert.deepEqual(delays, [1000, 3000, 2000]);
  });

  test('a scheduled check runs only its own backend, framed like a round, and re-arms only its own timer', async (t) => {
    const cleanup = cleanupFor(t);
    const counting = await startCountingServer();
    cleanup(() => counting.close());
    const created: Backend[] = [];
    cleanup(() => Promise.all(created.map((b) => b.close())));
    const dead = `http://127.0.0.1:${await deadPort()}`;
    const live = makeBackend(counting.url, created);
    const gone = makeBackend(dead, created);
    const clock = new ManualClock();
    const { checker, logs } = makeChecker([live, gone], {}, { clock, random: seededRandom(9) });
    t.after(() => checker.stop());
    await checker.start();
    assert.equal(counting.acceptedAt.length, 1);
    const [liveTimer, goneTimer] = clock.pending();
    assert.ok(liveTimer !== undefined && goneTimer !== undefined);
    assert.ok(liveTimer.ms >= 18_000 && liveTimer.ms <= 22_000, 'default 20 s ± 10%');

    const mark = logs.length;
    clock.fire(liveTimer);
    await until(() => clock.pending().length === 2, 2000, 'the live backend to be re-armed');
    assert.equal(counting.acceptedAt.length, 2);
    assert.equal(goneTimer.cleared, false, "the other backend's timer is untouched");
    assert.deepEqual(messages(logs.slice(mark)), ['Starting health check...', `${counting.url} [up]`, 'Health check completed']);

    // round() replaces both schedules rather than adding to them.
    await checker.round();
    assert.equal(clock.pending().length, 2);
    await checker.stop();
    assert.equal(clock.pending().length, 0, 'stop() clears every timer');
  });

  test('each result is recorded on the backend (last check and a 60-entry history, oldest first) and published', async (t) => {
    const cleanup = cleanupFor(t);
    let counting = await startCountingServer();
    cleanup(() => counting.close());
    const created: Backend[] = [];
    cleanup(() => Promise.all(created.map((b) => b.close())));
    const backend = makeBackend(counting.url, created);
    const clock = new ManualClock();
    const { checker } = makeChecker([backend], {}, { clock });
    t.after(() => checker.stop());
    const events: HealthCheckEvent[] = [];
    const onEvent = (message: unknown): void => {
      events.push(message as HealthCheckEvent);
    };
    diagnosticsChannel.subscribe('switchyard:health-check', onEvent);
    cleanup(() => diagnosticsChannel.unsubscribe('switchyard:health-check', onEvent));

    assert.equal(lastOf(backend), null);
    assert.deepEqual(backend.healthChecks(), []);
    // 65 checks at clock times 1..65 s: passes while the port listens, failures after it closes.
    const port = counting.port;
    for (let i = 1; i <= 65; i++) {
      clock.nowMs = i * 1000;
      if (i === 61) await counting.close();
      await checker.round();
    }
    const history = backend.healthChecks();
    assert.equal(history.length, healthHistorySize);
    assert.deepEqual(history.map((h) => h.atMs), Array.from({ length: 60 }, (_, i) => (i + 6) * 1000));
    assert.deepEqual(history.map((h) => h.ok), [...Array<boolean>(55).fill(true), ...Array<boolean>(5).fill(false)]);
    assert.equal(lastOf(backend)?.atMs, 65_000);
    assert.equal(lastOf(backend)?.ok, false);
    assert.match(lastOf(backend)?.error ?? '', /ECONNREFUSED/);
    assert.equal(lastOf(backend)?.durationMs, 0, 'duration on the injected clock');

    assert.equal(events.length, 65);
    assert.deepEqual(events.map((e) => e.ok).slice(58), [true, true, false, false, false, false, false]);
    assert.ok(events.every((e) => e.backend === backend));
    assert.match(events[64]?.error ?? '', /ECONNREFUSED/);
    assert.equal(events[0]?.error, '');

    counting = await startCountingServer(port);
    await checker.round();
    assert.equal(backend.healthChecks().at(-1)?.ok, true);
    assert.equal(backend.available, true, 'tcp defaults: rise 1');
  });
});
