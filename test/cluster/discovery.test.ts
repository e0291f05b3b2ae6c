import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { cleanupFor } from '../helpers/cleanup.js';
import { ConsulStandIn } from '../helpers/consul-api.js';
import { byKey, parseExposition } from '../helpers/prometheus.js';
import type { TestBackend } from '../helpers/servers.js';
import { until } from '../helpers/servers.js';
import { adminJson, countingBackends, freshGet, freshGets, served, startCluster, workersOf } from './cluster-helpers.js';

/** Fresh-connection GETs, `concurrency` at a time, until stopped: any worker may take each. */
function freshTraffic(port: number, concurrency = 4) {
  let stopped = false;
  let requests = 0;
  /** Bumped by sinceNow(); each loop notes the epoch its current request started in. */
  let epoch = 0;
  const finishedIn = Array.from({ length: concurrency }, () => -1);
  const failures: string[] = [];
  const loops = Array.from({ length: concurrency }, async (_, i) => {
    while (!stopped) {
      const startedIn = epoch;
      try {
        const reply = await freshGet(port);
        if (reply.status !== 200) failures.push(`${reply.status} ${reply.body}`);
      } catch (err) {
        failures.push((err as Error).message);
      }
      finishedIn[i] = startedIn;
      requests++;
    }
  });
  return {
    get requests() {
      return requests;
    },
    /** Resolves once every loop has finished a request started after this call: none from before is still in flight. */
    async sinceNow(what: string): Promise<void> {
      const target = ++epoch;
      await until(() => finishedIn.every((e) => e >= target), 15_000, what);
    },
    async stop() {
      stopped = true;
      await Promise.all(loops);
      return { requests, failures };
    },
  };
}

test('2 workers with a Consul source: one query stream, every set and its states reach every worker, a restarted worker serves the current set', { timeout: 90_000 }, async (t) => {
  const cleanup = cleanupFor(t);
  const consul = await ConsulStandIn.start();
  cleanup(() => consul.close());
  const [a, b, c] = (await countingBackends(['a', 'b', 'c'], cleanup)) as [TestBackend, TestBackend, TestBackend];
  const portOf = (backend: TestBackend): number => Number(new URL(backend.url).port);
  const register = (name: string, backend: TestBackend): void => consul.register('web', { id: name, address: '127.0.0.1', port: portOf(backend) });
  register('a', a);
  const dir = mkdtempSync(path.join(tmpdir(), 'swy-workers-discovery-'));
  cleanup(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'switchyard.yaml');
  writeFileSync(
    file,
    [
      'workers: 2',
      'watch: false',
      'gracePeriod: 5s',
      'listeners: [{ host: 127.0.0.1, port: 0 }]',
      'admin: { host: 127.0.0.1, port: 0 }',
      'upstreams:',
      '  web:',
      `    discover: { consul: { service: web, address: "${consul.url}" } }`,
      '    healthCheck: { type: tcp, interval: 1s }',
      '',
    ].join('\n'),
  );
  const { cli, port, admin } = await startCluster(['--config', file], cleanup);
  // A query without an index starts a stream: the primary's alone (3 with a source per process).
  const streams = (): number => consul.queries.filter((q) => !q.has('index')).length;
  assert.equal(streams(), 1);
  assert.deepEqual([...new Set((await freshGets(port, 20)).map((r) => r.body))], ['a'], 'the first set is in every worker at start');

  /** Waits until worker `id` has applied a set of `count` backends sent by the primary. */
  const appliedBy = (id: number, count: number, since: number) =>
    cli.logs().slice(since).some((e) => e['worker'] === id && e['upstream'] === 'web' && String(e['msg']).startsWith('discovery for upstream web') && e['backends'] === count);
  const everyWorkerApplied = async (count: number, since: number, what: string): Promise<void> => {
    await until(() => appliedBy(1, count, since) && appliedBy(2, count, since), 15_000, what);
  };

  const traffic = freshTraffic(port);
  cleanup(() => traffic.stop());
  // Scale up: the new backend is checked in the primary, and its state reaches the workers with the set.
  let mark = cli.logs().length;
  register('b', b);
  await everyWorkerApplied(2, mark, 'both workers to apply the set of 2');
  await until(() => served(b) > 20, 15_000, 'traffic on the new backend');

  // Scale down to the new one alone: a worker holding it down would answer 503.
  mark = cli.logs().length;
  consul.deregister('web', 'a');
  await everyWorkerApplied(1, mark, 'both workers to apply the set of 1');
  // Requests the traffic sent before the change may still reach a; those after it may not.
  await traffic.sinceNow('the requests in flight at the change to finish');
  const aServed = served(a);
  const onlyB = await freshGets(port, 40);
  assert.deepEqual([...new Set(onlyB.map((r) => `${r.status} ${r.body}`))], ['200 b']);
  assert.equal(served(a), aServed, 'the removed backend takes nothing new');

  // Connections a killed worker holds are lost (docs/workers.md): the traffic check ends here.
  const report = await traffic.stop();
  t.diagnostic(`${report.requests} requests on fresh connections while the set changed`);
  assert.deepEqual(report.failures, [], 'no request failed');

  // A worker killed and replaced starts with the current set and states from its init message.
  mark = cli.logs().length;
  register('c', c);
  await everyWorkerApplied(2, mark, 'both workers to apply the set of 2 again');
  const victim = (await workersOf(admin))[0]!;
  process.kill(victim.pid as number, 'SIGKILL');
  await cli.waitForLog('worker 1 serving again', 20_000);
  const after = await freshGets(port, 60);
  assert.deepEqual([...new Set(after.map((r) => r.status))], [200]);
  assert.deepEqual([...new Set(after.map((r) => r.body))].sort(), ['b', 'c'], 'both workers route to both backends of the current set');

  // A full reload keeps the sets, in the primary and the workers, and starts no new stream.
  mark = cli.logs().length;
  cli.child.kill('SIGHUP');
  await until(() => cli.logs().slice(mark).filter((e) => String(e['msg']).startsWith('config reloaded (signal)')).length === 3, 15_000, 'the reload in the primary and both workers');
  const reloaded = await freshGets(port, 40);
  assert.deepEqual([...new Set(reloaded.map((r) => `${r.status} ${r.body}`))].sort(), ['200 b', '200 c']);
  assert.equal(streams(), 1, 'still one query stream: workers run no source');
  // The admin API and /metrics show the primary's source.
  const status = (await adminJson(admin, '/api/status')) as { discovery: Record<string, { kind: string; state: string; backends: number; generation: number }> };
  assert.deepEqual([status.discovery['web']?.kind, status.discovery['web']?.state, status.discovery['web']?.backends], ['consul', 'ok', 2]);
  const metrics = byKey(parseExposition(await (await fetch(`${admin}/metrics`)).text()));
  assert.equal(metrics.get('switchyard_discovery_updates_total{source="consul",upstream="web"}'), status.discovery['web']?.generation, 'counted once, by the primary');
  assert.equal(metrics.get('switchyard_discovery_backends{source="consul",upstream="web"}'), 2);
});
