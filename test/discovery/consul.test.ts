import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import { systemClock, type Clock, type Timer } from '../../src/clock.js';
import { ConsulSource, type ConsulDeps, type ConsulOptions } from '../../src/discovery/consul.js';
import type { DiscoveredBackend } from '../../src/discovery/source.js';
import { cleanupFor } from '../helpers/cleanup.js';
import { ConsulStandIn } from '../helpers/consul-api.js';
import { recordingLogger } from '../helpers/health.js';
import { closeServer, until } from '../helpers/servers.js';

/** Small intervals so that tests run in milliseconds; production defaults are in consulDefaults. */
const fast = { waitMs: 300, changeIntervalMs: 20, minIntervalMs: 5, backoffBaseMs: 20, backoffMaxMs: 100, timeoutMarginMs: 2000 } as const;

interface Recorder {
  readonly updates: DiscoveredBackend[][];
  readonly errors: Error[];
  last(): DiscoveredBackend[] | undefined;
}

async function setUp(t: TestContext, options: Partial<ConsulOptions> = {}, deps: Partial<ConsulDeps> = {}, consulOptions: ConstructorParameters<typeof ConsulStandIn>[0] = {}) {
  const cleanup = cleanupFor(t);
  const consul = await ConsulStandIn.start(consulOptions);
  cleanup(() => consul.close());
  const { logger } = recordingLogger();
  const start = (more: Partial<ConsulOptions> = {}, moreDeps: Partial<ConsulDeps> = {}) => {
    const source = new ConsulSource({ service: 'web', address: consul.url, ...options, ...more }, { logger, ...fast, ...deps, ...moreDeps });
    const rec: Recorder = { updates: [], errors: [], last: () => rec.updates.at(-1) };
    source.start({ update: (b) => rec.updates.push([...b]), error: (e) => rec.errors.push(e) });
    cleanup(() => source.stop());
    return { source, rec };
  };
  return { consul, start, cleanup };
}

const urls = (set: readonly DiscoveredBackend[] | undefined): string[] => (set ?? []).map((b) => b.url);

async function untilUrls(rec: Recorder, expected: string[], what = expected.join(',')): Promise<void> {
  await until(() => rec.updates.length > 0 && JSON.stringify(urls(rec.last())) === JSON.stringify(expected), 5000, `the set [${what}]`);
}

describe('Consul discovery source', () => {
  test('the stand-in answers curl like Consul: headers, filter, and a blocking query held until wait', async (t) => {
    const { consul } = await setUp(t);
    consul.register('web', { id: 'a', address: '10.0.0.1', port: 80 });
    const index = consul.currentIndex;
    const curl = (args: string[]) =>
      new Promise<string>((resolve, reject) => execFile('curl', ['-s', '-i', '--max-time', '10', ...args], (err, stdout) => (err === null ? resolve(stdout) : reject(err))));
    const started = performance.now();
    const held = await curl([`${consul.url}/v1/health/service/web?index=${index}&wait=300ms&passing=true`]);
    assert.ok(performance.now() - started >= 250, 'a blocking query with nothing new is held for `wait`');
    assert.match(held, /^HTTP\/1\.1 200/);
    assert.match(held, new RegExp(`\r\nx-consul-index: ${index}\r\n`, 'i'));
    assert.match(held, /\r\ncontent-type: application\/json/i);
    const body = JSON.parse(held.slice(held.indexOf('\r\n\r\n') + 4)) as { Service: { Port: number } }[];
    assert.equal(body[0]?.Service.Port, 80);
  });

  test('the initial set: node address when Service.Address is empty, IPv6 in brackets, weights, token and dc sent', async (t) => {
    const { consul, start } = await setUp(t, { token: 's3cret', datacenter: 'dc2' }, {}, { token: 's3cret', datacenters: ['dc1', 'dc2'] });
    consul.register('web', { id: 'a', address: '10.0.0.1', port: 8080, weights: { Passing: 3, Warning: 1 } }, 'dc2');
    consul.register('web', { id: 'b', address: '', nodeAddress: '10.0.0.2', port: 8081 }, 'dc2');
    consul.register('web', { id: 'c', address: '2001:db8::7', port: 8082 }, 'dc2');
    consul.register('web', { id: 'z', address: '10.9.9.9', port: 80 }, 'dc1');
    const { rec } = start();
    await untilUrls(rec, ['http://10.0.0.1:8080', 'http://10.0.0.2:8081', 'http://[2001:db8::7]:8082']);
    assert.deepEqual(rec.last()?.map((b) => [b.weight, b.terminating]), [[3, false], [1, false], [1, false]]);
    assert.equal(rec.errors.length, 0);
    assert.equal(consul.queries[0]?.get('dc'), 'dc2');
    assert.equal(consul.queries[0]?.get('passing'), 'true');
  });

  test('scale up, scale down, and scaled to zero: an explicit empty set is reported as []', async (t) => {
    const { consul, start } = await setUp(t);
    consul.register('web', { id: 'a', address: '10.0.0.1', port: 80 });
    const { rec } = start();
    await untilUrls(rec, ['http://10.0.0.1:80']);
    consul.register('web', { id: 'b', address: '10.0.0.2', port: 80 });
    await untilUrls(rec, ['http://10.0.0.1:80', 'http://10.0.0.2:80']);
    assert.ok(consul.queries.some((q) => q.has('index') && q.get('wait') === '300ms'), 'later queries block with index and wait');
    consul.deregister('web', 'a');
    await untilUrls(rec, ['http://10.0.0.2:80']);
    consul.deregister('web', 'b');
    await until(() => rec.last()?.length === 0, 5000, 'an empty set');
    assert.equal(rec.errors.length, 0);
  });

  test('a check turning critical: dropped with passingOnly (the default), kept with passingOnly false', async (t) => {
    const { consul, start } = await setUp(t);
    consul.register('web', { id: 'a', address: '10.0.0.1', port: 80 });
    consul.register('web', { id: 'b', address: '10.0.0.2', port: 80, weights: { Passing: 4, Warning: 2 } });
    const passing = start().rec;
    const all = start({ passingOnly: false }).rec;
    const weights = () => all.last()?.map((b) => b.weight).join(',');
    await untilUrls(passing, ['http://10.0.0.1:80', 'http://10.0.0.2:80']);
    await until(() => weights() === '1,4', 5000, 'both, b at its passing weight');
    consul.setStatus('web', 'b', 'warning');
    await untilUrls(passing, ['http://10.0.0.1:80']);
    await until(() => weights() === '1,2', 5000, 'b at its warning weight');
    consul.setStatus('web', 'b', 'critical');
    await until(() => weights() === '1,4', 5000, 'b kept while critical');
    assert.deepEqual(urls(all.last()), ['http://10.0.0.1:80', 'http://10.0.0.2:80']);
    assert.deepEqual(urls(passing.last()), ['http://10.0.0.1:80']);
    assert.ok(consul.queries.some((q) => !q.has('passing')), 'passingOnly false asks without ?passing');
  });

  test('the index going backwards (a Consul restart) resets it to 0 and the set stays right', async (t) => {
    const { consul, start } = await setUp(t);
    for (let i = 0; i < 20; i++) consul.churn();
    consul.register('web', { id: 'a', address: '10.0.0.1', port: 80 });
    const { rec } = start();
    await untilUrls(rec, ['http://10.0.0.1:80']);
    const before = consul.currentIndex;
    await until(() => consul.queries.some((q) => q.get('index') === String(before)), 5000, 'a blocking query at the current index');
    consul.resetIndex(2);
    const seen = consul.queries.length;
    consul.register('web', { id: 'b', address: '10.0.0.2', port: 80 }); // index 3: below the client's, so it is held until wait
    await untilUrls(rec, ['http://10.0.0.1:80', 'http://10.0.0.2:80']);
    await until(() => consul.queries.slice(seen).some((q) => !q.has('index')), 5000, 'a fresh query without an index after the reset');
    consul.register('web', { id: 'c', address: '10.0.0.3', port: 80 });
    await untilUrls(rec, ['http://10.0.0.1:80', 'http://10.0.0.2:80', 'http://10.0.0.3:80']);
    assert.equal(rec.errors.length, 0);
  });

  test('unrelated index churn does not make the loop spin (queries counted over a bounded window)', async (t) => {
    const { consul, start } = await setUp(t);
    consul.register('web', { id: 'a', address: '10.0.0.1', port: 80 });
    const { rec } = start({}, { changeIntervalMs: 100 });
    await untilUrls(rec, ['http://10.0.0.1:80']);
    const before = consul.queries.length;
    let churns = 0;
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        consul.churn();
        if (++churns === 200) {
          clearInterval(timer);
          resolve();
        }
      }, 2);
    });
    const made = consul.queries.length - before;
    // 200 index moves in at least 400 ms; without the limit that is ~200 queries, with it at most ~1 per 100 ms.
    assert.ok(made <= 12, `${made} queries for ${churns} unrelated changes`);
    assert.equal(rec.updates.length, 1, 'the same set is not reported again');
  });

  test('an answer without X-Consul-Index (not blocking) is paced like a change, not repeated at once', async (t) => {
    const { consul, start } = await setUp(t);
    consul.failWith({ status: 200, body: '[]' }); // no index header: every query answers at once
    const { rec } = start({}, { changeIntervalMs: 100 });
    await until(() => rec.updates.length === 1, 5000, 'the empty set');
    const before = consul.queries.length;
    await new Promise((resolve) => setTimeout(resolve, 400));
    const made = consul.queries.length - before;
    assert.ok(made <= 6, `${made} queries in 400 ms`);
    assert.equal(rec.errors.length, 0);
  });

  test('Consul down for a while: errors, the last set kept (never an empty one), then recovery', async (t) => {
    const { consul, start } = await setUp(t);
    consul.register('web', { id: 'a', address: '10.0.0.1', port: 80 });
    const { rec } = start();
    await untilUrls(rec, ['http://10.0.0.1:80']);
    await consul.down();
    await until(() => rec.errors.length >= 3, 5000, 'errors while Consul is down');
    assert.match(rec.errors[0]?.message ?? '', /^consul: http:\/\/127\.0\.0\.1:\d+ unreachable/);
    assert.equal(rec.updates.length, 1, 'no update while down');
    consul.register('web', { id: 'b', address: '10.0.0.2', port: 80 });
    await consul.up();
    await untilUrls(rec, ['http://10.0.0.1:80', 'http://10.0.0.2:80']);
    consul.failWith({ status: 500, body: 'No cluster leader' });
    const errorsBefore = rec.errors.length;
    consul.churn();
    await until(() => rec.errors.length > errorsBefore, 5000, 'a 500 reported');
    assert.match(rec.errors.at(-1)?.message ?? '', /answered 500: No cluster leader/);
    consul.failWith({ status: 200, body: '<html>proxy</html>' });
    await until(() => rec.errors.some((e) => /not JSON/.test(e.message)), 5000, 'bad JSON reported');
    consul.failWith(null);
    const updatesBefore = rec.updates.length;
    await until(() => rec.updates.length > updatesBefore, 5000, 'the set reported again after recovery');
    assert.ok(rec.updates.every((set) => set.length > 0));
  });

  test('a malformed answer is an error and applies nothing of it', async (t) => {
    const { consul, start } = await setUp(t);
    consul.register('web', { id: 'a', address: '10.0.0.1', port: 80 });
    const { rec } = start();
    await untilUrls(rec, ['http://10.0.0.1:80']);
    const bad: [string, RegExp][] = [
      ['{"not":"an array"}', /not a JSON array/],
      ['[{"Node":{"Address":""},"Service":{"Address":"","Port":80}}]', /entry 0 has neither Service.Address nor Node.Address/],
      ['[{"Node":{"Address":"10.0.0.9"},"Service":{"Address":"","Port":80}},{"Service":{"Address":"10.0.0.8","Port":"80"}}]', /entry 1 has no valid Service.Port/],
      ['[null]', /entry 0 is not an object/],
    ];
    for (const [body, message] of bad) {
      consul.failWith({ status: 200, body });
      consul.churn();
      await until(() => rec.errors.some((e) => message.test(e.message)), 5000, String(message));
    }
    assert.equal(rec.updates.length, 1);
  });

  test('ACLs: a wrong token is a 403 error; no token (everything filtered) is an error, not an empty set', async (t) => {
    const { consul, start } = await setUp(t, {}, {}, { token: 'right' });
    consul.register('web', { id: 'a', address: '10.0.0.1', port: 80 });
    const wrong = start({ token: 'wrong' }).rec;
    const none = start().rec;
    const right = start({ token: 'right' }).rec;
    await untilUrls(right, ['http://10.0.0.1:80']);
    await until(() => wrong.errors.length > 0 && none.errors.length > 0, 5000, 'both errors');
    assert.match(wrong.errors[0]?.message ?? '', /answered 403: ACL not found/);
    assert.match(none.errors[0]?.message ?? '', /ACL token may not read service "web"/);
    assert.equal(wrong.updates.length + none.updates.length, 0);
  });

  test('a query held past wait + margin is an error, and the watch goes on', async (t) => {
    const cleanup = cleanupFor(t);
    const silent = http.createServer(() => {}); // accepts, never answers
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    cleanup(() => closeServer(silent));
    const address = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    const errors: Error[] = [];
    const source = new ConsulSource({ service: 'web', address }, { logger: recordingLogger().logger, ...fast, timeoutMarginMs: 50 });
    source.start({ update: () => assert.fail('no update expected'), error: (e) => errors.push(e) });
    cleanup(() => source.stop());
    await until(() => errors.length >= 2, 5000, 'two timeouts');
    assert.match(errors[0]?.message ?? '', /no answer from .* within 50 ms/);
  });

  test('a burst of 100 changes in one second ends in the right set', async (t) => {
    const { consul, start } = await setUp(t);
    const { rec } = start({}, { changeIntervalMs: 50 });
    await until(() => rec.updates.length === 1, 5000, 'the first (empty) set');
    const live = new Set<number>();
    for (let i = 0; i < 100; i++) {
      // Adds ports 1..70, removing every third one again a little later.
      const port = i < 70 ? i + 1 : (i - 70) * 3 + 1;
      if (i < 70) {
        consul.register('web', { id: `i${port}`, address: '10.1.0.1', port });
        live.add(port);
      } else {
        consul.deregister('web', `i${port}`);
        live.delete(port);
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const expected = [...live].map((p) => `http://10.1.0.1:${p}`).sort();
    await untilUrls(rec, expected, `${expected.length} backends`);
    assert.ok(rec.updates.length < 60, `${rec.updates.length} updates for 100 changes: the loop is rate-limited`);
  });

  test('stop() aborts the blocking query and the timers: nothing is left running', async (t) => {
    const { consul, start } = await setUp(t);
    consul.register('web', { id: 'a', address: '10.0.0.1', port: 80 });
    const clock = new CountingClock();
    const { source, rec } = start({}, { clock, waitMs: 60_000 });
    await untilUrls(rec, ['http://10.0.0.1:80']);
    await until(() => consul.queries.some((q) => q.has('index')), 5000, 'a blocking query in flight');
    await source.stop();
    assert.equal(clock.pending, 0, 'no timer left');
    await until(() => consul.connections === 0, 5000, 'its connection closed');
    // While backing off from an error, too.
    await consul.down();
    const second = start({}, { clock, backoffBaseMs: 60_000, backoffMaxMs: 60_000 });
    await until(() => second.rec.errors.length === 1, 5000, 'the first error');
    await second.source.stop();
    assert.equal(clock.pending, 0, 'no backoff timer left');
  });
});

/** The system clock, counting timers set and not yet fired or cleared. */
class CountingClock implements Clock {
  private readonly live = new Set<Timer>();
  get pending(): number {
    return this.live.size;
  }
  now(): number {
    return systemClock.now();
  }
  setTimeout(fn: () => void, ms: number): Timer {
    const timer = systemClock.setTimeout(() => {
      this.live.delete(timer);
      fn();
    }, ms);
    this.live.add(timer);
    return timer;
  }
  clearTimeout(timer: Timer): void {
    this.live.delete(timer);
    systemClock.clearTimeout(timer);
  }
}
