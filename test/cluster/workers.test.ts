import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cleanupFor } from '../helpers/cleanup.js';
import { until } from '../helpers/servers.js';
import { adminJson, countingBackends, freshGets, probes, served, startCluster, workersOf } from './cluster-helpers.js';

/** Sum of every sample of `name` in Prometheus text. */
function total(text: string, name: string): number {
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

test('2 workers: round-robin stays fair across workers, one probe stream per backend, merged metrics count every request', { timeout: 60_000 }, async (t) => {
  const cleanup = cleanupFor(t);
  const backends = await countingBackends(['a', 'b'], cleanup);
  const intervalMs = 200;
  const { port, admin } = await startCluster(['--workers', '2', '--backends', backends.map((b) => b.url).join(','), '--health-path', '/health', '--health-interval', `${intervalMs}ms`], cleanup);
  const workers = await workersOf(admin);
  assert.deepEqual(
    workers.map((w) => [w.id, w.serving, typeof w.pid]),
    [
      [1, true, 'number'],
      [2, true, 'number'],
    ],
  );

  const replies = await freshGets(port, 400);
  assert.deepEqual(replies.filter((r) => r.status !== 200), []);
  // Each worker alternates on its own, so the totals are within one request per worker of half.
  for (const backend of backends) assert.ok(Math.abs(served(backend) - 200) <= 2, `backend ${backend.url} got ${served(backend)} of 400`);

  // Probes come from the primary alone: at most one per interval (less jitter) per backend.
  const before = backends.map(probes);
  const windowStart = performance.now();
  await new Promise((resolve) => setTimeout(resolve, 5 * intervalMs));
  const windowMs = performance.now() - windowStart;
  backends.forEach((backend, i) => {
    const count = probes(backend) - (before[i] as number);
    assert.ok(count >= 2 && count <= Math.ceil(windowMs / (0.9 * intervalMs)) + 1, `${count} probes of ${backend.url} in ${windowMs.toFixed(0)} ms`);
  });

  const metrics = await (await fetch(`${admin}/metrics`)).text();
  assert.equal(total(metrics, 'switchyard_requests_total'), 400, metrics);
  assert.equal(total(metrics, 'switchyard_backend_up'), 2, 'backend state is the primary\'s, counted once');
  const view = (await adminJson(admin, '/api/upstreams')) as { upstreams: { backends: { requestsTotal: number }[] }[] };
  assert.equal(view.upstreams[0]?.backends.reduce((sum, b) => sum + b.requestsTotal, 0), 400);
});

test('4 workers: a sticky cookie from one worker holds on all; a drained backend gets nothing from any', { timeout: 60_000 }, async (t) => {
  const cleanup = cleanupFor(t);
  const backends = await countingBackends(['a', 'b'], cleanup);
  const { cli, port, admin } = await startCluster(['--workers', '4', '--backends', backends.map((b) => b.url).join(','), '--sticky', '--accept-batch', '8', '--log-level', 'debug'], cleanup);
  assert.equal((await workersOf(admin)).filter((w) => w.serving).length, 4);
  // Each worker accepts on its share of the batch: 8 / 4 descriptors of the shared socket.
  const listening = cli.logs().filter((e) => String(e['msg']).startsWith('listening at'));
  assert.deepEqual(listening.map((e) => [e['port'], e['acceptFds']]), [port, port, port, port].map((p) => [p, 2]));

  const [first] = await freshGets(port, 1);
  const cookie = String(first?.headers['set-cookie']?.[0]).split(';')[0] as string;
  const pinned = first?.body;
  const stuck = await freshGets(port, 40, 8, { cookie });
  assert.deepEqual([...new Set(stuck.map((r) => r.body))], [pinned], 'every worker honoured the cookie');

  const drained = backends[0]!;
  const reply = (await adminJson(admin, `/api/upstreams/default/backends/${encodeURIComponent(drained.url)}/drain`, 'POST')) as { ok: boolean };
  assert.equal(reply.ok, true);
  const before = served(drained);
  const after = await freshGets(port, 100);
  assert.deepEqual([...new Set(after.map((r) => r.status))], [200]);
  assert.equal(served(drained) - before, 0, 'no worker sent anything to the drained backend after the API call returned');
});

test('a killed worker is replaced while the others keep serving', { timeout: 60_000 }, async (t) => {
  const cleanup = cleanupFor(t);
  const backends = await countingBackends(['a', 'b'], cleanup);
  const { cli, port, admin } = await startCluster(['--workers', '2', '--backends', backends.map((b) => b.url).join(',')], cleanup);
  const victim = (await workersOf(admin))[0]!;
  process.kill(victim.pid as number, 'SIGKILL');
  await cli.waitForLog('worker 1 (pid');
  // New connections after the kill go to the worker left (the dead one's descriptors are closed).
  const replies = await freshGets(port, 100);
  assert.deepEqual([...new Set(replies.map((r) => r.status))], [200]);
  await cli.waitForLog('worker 1 serving again', 15_000);
  const now = await workersOf(admin);
  assert.equal(now.filter((w) => w.serving).length, 2);
  assert.notEqual(now[0]?.pid, victim.pid);
  const exited = cli.logs().find((e) => String(e['msg']).startsWith('worker 1 (pid'));
  assert.equal(exited?.['signal'], 'SIGKILL');
  assert.equal(exited?.['level'], 40);
  await until(() => !isAlive(victim.pid as number), 5000, 'the killed worker to be gone');
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
