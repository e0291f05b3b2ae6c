import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import { describe, test, type TestContext } from 'node:test';
import { request } from 'undici';
import { backendView } from '../../src/admin/api.js';
import type { ConfigInput } from '../../src/config/schema.js';
import type { EjectionEvent } from '../../src/events.js';
import { DownReason, downReasonNames, type Backend } from '../../src/upstream/backend.js';
import { EjectionState } from '../../src/upstream/ejection-state.js';
import { cleanupFor } from '../helpers/cleanup.js';
import { localConfig, startConfigured } from '../helpers/config.js';
import { startDyingPort, startHoldingBackend, type DyingPort } from '../helpers/faults.js';
import { makeBackend, makeChecker, ManualClock, messages, type ManualTimer } from '../helpers/health.js';
import { startBackend, until, type TestBackend } from '../helpers/servers.js';

type Upstream = ConfigInput['upstreams'][string];
type Lb = Awaited<ReturnType<typeof startConfigured>>;

function recordEjections(cleanup: (fn: () => unknown) => void): EjectionEvent[] {
  const events: EjectionEvent[] = [];
  const onMessage = (message: unknown): void => {
    events.push(message as EjectionEvent);
  };
  diagnosticsChannel.subscribe('switchyard:ejection', onMessage);
  cleanup(() => diagnosticsChannel.unsubscribe('switchyard:ejection', onMessage));
  return events;
}

async function get(url: string): Promise<{ status: number; text: string }> {
  const res = await request(url);
  return { status: res.statusCode, text: await res.body.text() };
}

function backendAt(lb: Lb, index: number): Backend {
  const backend = lb.upstream.backends[index];
  assert.ok(backend !== undefined, `backend ${index} exists`);
  return backend;
}

const ejected = (b: Backend): boolean => (b.downReasons & DownReason.ejected) !== 0;

/** Sends requests until `backend` is ejected (at most `max`); every one of them must succeed. */
async function requestUntilEjected(lb: Lb, backend: Backend, max = 12): Promise<void> {
  for (let i = 0; i < max && !ejected(backend); i++) assert.equal((await get(`${lb.url}/`)).status, 200);
  assert.ok(ejected(backend), `${backend.url} ejected within ${max} requests`);
}

/** The pending ejection timers (each lasts `ms`). */
function ejectionTimers(clock: ManualClock): ManualTimer[] {
  return clock.pending().filter((timer) => timer.ms >= 1000);
}

/** Live a and c around b, which passes the start-up health check and then refuses connections. */
async function liveDeadLive(t: TestContext, upstream: Partial<Upstream>) {
  const cleanup = cleanupFor(t);
  const a = await startBackend('a');
  cleanup(() => a.close());
  const c = await startBackend('c');
  cleanup(() => c.close());
  const dying: DyingPort = await startDyingPort();
  cleanup(() => dying.kill());
  const clock = new ManualClock();
  const config = localConfig({ web: { backends: [a.url, dying.url, c.url], ...upstream } });
  const lb = await startConfigured({ config }, { clock });
  cleanup(() => lb.close());
  await dying.kill();
  return { a, c, dying, clock, lb, config, cleanup, events: recordEjections(cleanup) };
}

describe('passive outlier detection', { timeout: 60_000 }, () => {
  test('consecutive connect failures eject a backend; it returns after the base time', async (t) => {
    const { dying, clock, lb, cleanup, events } = await liveDeadLive(t, { outlierDetection: { consecutiveFailures: 3 } });
    const b = backendAt(lb, 1);
    await requestUntilEjected(lb, b);
    assert.deepEqual(downReasonNames(b.downReasons), ['outlier-ejected'], 'ejected before the retries ran out (no failed-attempts mark)');
    assert.deepEqual(
      events.map((e) => [e.backend, e.ejected, e.reason, e.durationMs]),
      [[b, true, 'connect', 30_000]],
    );
    assert.ok(messages(lb.logs).includes(`${b.url} ejected for 30s after 3 consecutive connect failures`));
    const view = backendView(b);
    assert.equal(view.state, 'down');
    assert.deepEqual(view.reasons, ['outlier-ejected']);

    // While ejected it gets nothing: every request goes to a or c at the first attempt.
    const tried = b.requestsTotal;
    const served = new Set<string>();
    for (let i = 0; i < 6; i++) served.add((await get(`${lb.url}/`)).text);
    assert.deepEqual([...served].sort(), ['a', 'c']);
    assert.equal(b.requestsTotal, tried);

    // The base time passes: it returns, and once listening again it is served.
    const timers = ejectionTimers(clock);
    assert.deepEqual(timers.map((timer) => timer.ms), [30_000]);
    clock.fire(timers[0] as ManualTimer);
    assert.equal(b.downReasons, 0);
    assert.ok(messages(lb.logs).includes(`${b.url} returned from ejection`));
    assert.deepEqual(events.at(-1), { backend: b, ejected: false, reason: '', durationMs: 0 });
    const revived = await startBackend('b', undefined, dying.port);
    cleanup(() => revived.close());
    for (let i = 0; i < 3; i++) served.add((await get(`${lb.url}/`)).text);
    assert.ok(served.has('b'), 'the returned backend is served again');
  });

  test('each ejection lasts longer, up to maxEjectionTime; time back in shortens the next', async (t) => {
    const { clock, lb, events } = await liveDeadLive(t, { outlierDetection: { consecutiveFailures: 2, baseEjectionTime: '30s', maxEjectionTime: '75s' } });
    const b = backendAt(lb, 1);
    const ejectAndReturn = async (): Promise<number> => {
      await requestUntilEjected(lb, b);
      const [timer] = ejectionTimers(clock);
      assert.ok(timer !== undefined);
      clock.nowMs += timer.ms;
      clock.fire(timer);
      assert.equal(b.downReasons, 0);
      return timer.ms;
    };
    assert.equal(await ejectAndReturn(), 30_000);
    assert.equal(await ejectAndReturn(), 60_000);
    assert.equal(await ejectAndReturn(), 75_000, '90 s capped');
    // Two base times back in rotation forgive two ejections: the fourth counts as the second.
    clock.nowMs += 60_000;
    assert.equal(await ejectAndReturn(), 60_000);
    assert.deepEqual(events.filter((e) => e.ejected).map((e) => e.durationMs), [30_000, 60_000, 75_000, 60_000]);
  });

  test('maxEjectionPercent caps the backends ejected at once, but one always may be', async (t) => {
    const cleanup = cleanupFor(t);
    const live = await Promise.all(['a', 'd'].map((name) => startBackend(name)));
    for (const backend of live) cleanup(() => backend.close());
    const events = recordEjections(cleanup);
    for (const [percent, expected] of [[10, 1], [50, 2]] as const) {
      const dying = await Promise.all([startDyingPort(), startDyingPort()]);
      for (const port of dying) cleanup(() => port.kill());
      const backends = [live[0] as TestBackend, dying[0] as DyingPort, dying[1] as DyingPort, live[1] as TestBackend].map((b) => b.url);
      const config = localConfig({ web: { backends, outlierDetection: { consecutiveFailures: 2, maxEjectionPercent: percent } } });
      const lb = await startConfigured({ config }, { clock: new ManualClock() });
      await Promise.all(dying.map((port) => port.kill()));
      for (let i = 0; i < 12; i++) assert.equal((await get(`${lb.url}/`)).status, 200);
      const dead = [backendAt(lb, 1), backendAt(lb, 2)];
      assert.equal(dead.filter(ejected).length, expected, `${percent}% of 4 backends`);
      // The one not ejected left rotation the older way, once its retries ran out.
      if (expected === 1) assert.ok(dead.some((b) => !ejected(b) && (b.downReasons & DownReason.failedAttempts) !== 0));
      await lb.close();
    }
    assert.equal(events.filter((e) => e.ejected).length, 3);
  });

  test('5xx responses eject only when consecutive5xx is set; a reload keeps the counters and state', async (t) => {
    const cleanup = cleanupFor(t);
    const a = await startBackend('a');
    cleanup(() => a.close());
    const failing = await startBackend('e', (req, res) => {
      req.resume();
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('e failing');
    });
    cleanup(() => failing.close());
    const clock = new ManualClock();
    const upstream = { backends: [a.url, failing.url] };
    const lb = await startConfigured({ config: localConfig({ web: upstream }) }, { clock });
    cleanup(() => lb.close());
    const events = recordEjections(cleanup);
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await get(`${lb.url}/`)).status);
    assert.equal(statuses.filter((s) => s === 503).length, 6, 'off by default: the 5xx backend keeps its share');
    assert.equal(events.length, 0);

    assert.equal((await lb.reload(localConfig({ web: { ...upstream, outlierDetection: { consecutive5xx: 3 } } }))).ok, true);
    const e = backendAt(lb, 1);
    for (let i = 0; i < 6 && !ejected(e); i++) await get(`${lb.url}/`);
    assert.deepEqual(downReasonNames(e.downReasons), ['outlier-ejected']);
    assert.equal(events[0]?.reason, '5xx');
    assert.ok(messages(lb.logs).some((m) => m.startsWith(`${e.url} ejected for 30s after `) && m.endsWith(' consecutive 5xx responses')));
    for (let i = 0; i < 4; i++) assert.equal((await get(`${lb.url}/`)).text, 'a');

    // A reload builds a new detector; the backend stays ejected and the old timer still returns it.
    assert.equal((await lb.reload(localConfig({ web: { ...upstream, outlierDetection: false } }))).ok, true);
    assert.equal(backendAt(lb, 1), e);
    assert.ok(ejected(e));
    const [timer] = ejectionTimers(clock);
    assert.ok(timer !== undefined);
    clock.fire(timer);
    assert.equal(e.downReasons, 0);
    // Closing cancels pending returns: no timer outlives the load balancer.
    assert.equal((await lb.reload(localConfig({ web: { ...upstream, outlierDetection: { consecutive5xx: 1 } } }))).ok, true);
    for (let i = 0; i < 4 && !ejected(e); i++) await get(`${lb.url}/`);
    assert.equal(ejectionTimers(clock).length, 1);
    await lb.close();
    assert.deepEqual(ejectionTimers(clock), []);
  });

  test('client hang-ups are not failures', async (t) => {
    const cleanup = cleanupFor(t);
    // Two backends that hold every request: whichever takes one, another stays up to allow an ejection.
    const holding = await Promise.all(['h1', 'h2'].map((name) => startHoldingBackend(name)));
    for (const backend of holding) cleanup(() => backend.close());
    const config = localConfig({ web: { backends: holding.map((h) => h.url), outlierDetection: { consecutiveFailures: 1, maxEjectionPercent: 100 } } });
    const lb = await startConfigured({ config }, { clock: new ManualClock() });
    cleanup(() => lb.close());
    const events = recordEjections(cleanup);
    const held = (): number => holding.reduce((sum, h) => sum + h.held.length, 0);
    for (let i = 1; i <= 4; i++) {
      const controller = new AbortController();
      const pending = request(`${lb.url}/`, { signal: controller.signal }).catch((err: unknown) => err);
      await until(() => held() === i, 5000, 'a backend to hold the request');
      controller.abort();
      assert.ok((await pending) instanceof Error);
      await until(() => lb.upstream.backends.every((b) => b.inFlight === 0), 5000, 'the attempt to end');
    }
    assert.deepEqual(lb.upstream.backends.map((b) => b.downReasons), [0, 0], 'one counted failure would have ejected a backend');
    assert.deepEqual(events, []);
  });

  test('the last backend in rotation is never ejected', async (t) => {
    const cleanup = cleanupFor(t);
    const failing = await startBackend('e', (req, res) => {
      req.resume();
      res.writeHead(502);
      res.end();
    });
    cleanup(() => failing.close());
    const config = localConfig({ web: { backends: [failing.url], outlierDetection: { consecutive5xx: 1, maxEjectionPercent: 100 } } });
    const lb = await startConfigured({ config }, { clock: new ManualClock() });
    cleanup(() => lb.close());
    for (let i = 0; i < 3; i++) assert.equal((await get(`${lb.url}/`)).status, 502, 'its answers still reach the client');
    assert.equal(backendAt(lb, 0).downReasons, 0);
  });

  test('a health check passing after failures ends an ejection; one that never failed does not', async (t) => {
    const cleanup = cleanupFor(t);
    const server = await startBackend('s');
    cleanup(() => server.close());
    const created: Backend[] = [];
    cleanup(() => Promise.all(created.map((b) => b.close())));
    const recovered = makeBackend(server.url, created);
    const steady = makeBackend(`${server.url}/steady`, created);
    recovered.markDown(DownReason.healthCheck);
    recovered.markDown(DownReason.ejected);
    steady.markDown(DownReason.ejected);
    const events = recordEjections(cleanup);
    const { checker, logs } = makeChecker([recovered, steady], { type: 'tcp' });
    await checker.round();
    await checker.stop();
    assert.equal(recovered.downReasons, 0);
    assert.deepEqual(downReasonNames(steady.downReasons), ['outlier-ejected']);
    assert.ok(messages(logs).includes(`${recovered.url} returned from ejection: health check passed`));
    assert.deepEqual(events, [{ backend: recovered, ejected: false, reason: 'health-check', durationMs: 0 }]);
  });

  test('an ejection after connect failures ends at the first passing check, even when no check failed in between', async (t) => {
    const cleanup = cleanupFor(t);
    const server = await startBackend('s');
    cleanup(() => server.close());
    const created: Backend[] = [];
    cleanup(() => Promise.all(created.map((b) => b.close())));
    const restarted = makeBackend(server.url, created);
    const resetting = makeBackend(`${server.url}/resets`, created);
    // What outlier detection leaves behind: connect failures for one, resets for the other.
    for (const [backend, unreachable] of [[restarted, true], [resetting, false]] as const) {
      (backend.ejection ??= new EjectionState()).ejectedUnreachable = unreachable;
      backend.markDown(DownReason.failedAttempts);
      backend.markDown(DownReason.ejected);
    }
    const { checker, logs } = makeChecker([restarted, resetting], { type: 'tcp' });
    await checker.round();
    await checker.stop();
    assert.equal(restarted.downReasons, 0, 'reachable again: back in rotation');
    assert.ok(messages(logs).includes(`${restarted.url} returned from ejection: health check passed`));
    // A TCP check that connects says nothing about resets: that ejection runs its course.
    assert.deepEqual(downReasonNames(resetting.downReasons), ['outlier-ejected']);
  });
});
