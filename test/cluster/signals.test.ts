import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { cleanupFor } from '../helpers/cleanup.js';
import { describeLoad, startLoad } from '../helpers/load.js';
import { until } from '../helpers/servers.js';
import { adminJson, countingBackends, freshGet, freshGets, served, startCluster } from './cluster-helpers.js';

/** A config file for 2 workers on 127.0.0.1:0 (admin too), without file watching. */
function configText(backends: readonly string[]): string {
  return [
    'workers: 2',
    'watch: false',
    'gracePeriod: 5s',
    'listeners: [{ host: 127.0.0.1, port: 0 }]',
    'admin: { host: 127.0.0.1, port: 0 }',
    'upstreams:',
    '  web:',
    `    backends: [${backends.join(', ')}]`,
    '',
  ].join('\n');
}

test('2 workers under load: SIGHUP reloads every worker and SIGTERM drains them, no request fails', { timeout: 60_000 }, async (t) => {
  const cleanup = cleanupFor(t);
  const dir = mkdtempSync(path.join(tmpdir(), 'swy-workers-'));
  cleanup(() => rmSync(dir, { recursive: true, force: true }));
  const backends = await countingBackends(['a', 'b', 'c'], cleanup);
  const file = path.join(dir, 'switchyard.yaml');
  writeFileSync(file, configText(backends.slice(0, 2).map((b) => b.url)));
  const { cli, port } = await startCluster(['--config', file], cleanup);

  const load = startLoad({ url: `http://127.0.0.1:${port}/`, concurrency: 16, check: (status, body) => (status === 200 && ['a', 'b', 'c'].includes(body) ? null : `${status} ${body}`) });
  cleanup(() => load.stop());
  await until(() => load.count(200) >= 200, 15_000, 'the load to get going');

  writeFileSync(file, configText(backends.map((b) => b.url)));
  cli.child.kill('SIGHUP');
  // The primary's line (the workers' carry a worker field) comes once every worker has applied it.
  await until(() => cli.logs().some((e) => String(e['msg']).startsWith('config reloaded (signal)') && e['worker'] === undefined), 15_000, 'the reload');
  assert.equal(cli.logs().filter((e) => String(e['msg']).startsWith('config reloaded (signal)') && e['worker'] !== undefined).length, 2, 'each worker applied it');
  await until(() => served(backends[2]!) >= 20, 15_000, 'the added backend to get traffic');

  const okBeforeSignal = load.count(200);
  cli.child.kill('SIGTERM');
  const [code, signal] = await cli.exited;
  const report = await load.stop();
  t.diagnostic(describeLoad(report));
  assert.deepEqual({ code, signal }, { code: 0, signal: null }, cli.stderr());
  assert.equal(report.problems, 0, describeLoad(report));
  // After the listeners close, new connections are refused. A connection still in the kernel's
  // accept queue when the shared socket closes is reset (as with nginx): it never reached a worker,
  // which the equality below checks (every request a backend got was answered in full).
  assert.deepEqual(Object.keys(report.errors).filter((name) => name !== 'ECONNREFUSED' && name !== 'ECONNRESET'), [], describeLoad(report));
  assert.deepEqual(Object.keys(report.statuses), ['200']);
  assert.equal(report.statuses[200], backends.reduce((sum, b) => sum + served(b), 0), 'every request the backends got was answered in full');
  assert.ok((report.statuses[200] ?? 0) >= okBeforeSignal);
  assert.ok(cli.logs().some((e) => e['msg'] === 'stopped'));
});

test('2 workers: an ejection one worker decides reaches the primary and every worker, and so does its end', { timeout: 60_000 }, async (t) => {
  const cleanup = cleanupFor(t);
  const dir = mkdtempSync(path.join(tmpdir(), 'swy-workers-'));
  cleanup(() => rmSync(dir, { recursive: true, force: true }));
  const good = await countingBackends(['a', 'b'], cleanup);
  const [bad] = await countingBackends(['bad'], cleanup);
  bad!.server.removeAllListeners('request');
  bad!.server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    bad!.seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders });
    res.writeHead(500).end('bad');
  });
  const file = path.join(dir, 'switchyard.yaml');
  const outlier = '    outlierDetection: { consecutive5xx: 2, consecutiveFailures: 0, baseEjectionTime: 1500ms, maxEjectionPercent: 50 }';
  writeFileSync(file, configText([...good, bad!].map((b) => b.url)) + outlier + '\n');
  const { port, admin } = await startCluster(['--config', file], cleanup);
  const badState = async (): Promise<string[]> => {
    const view = (await adminJson(admin, '/api/upstreams/web')) as { backends: { url: string; reasons: string[] }[] };
    return view.backends.find((b) => b.url === bad!.url)?.reasons ?? [];
  };

  for (let i = 0; i < 60 && !(await badState()).includes('outlier-ejected'); i++) await freshGet(port);
  assert.deepEqual(await badState(), ['outlier-ejected'], 'the primary holds the ejection a worker reported');
  const before = served(bad!);
  const replies = await freshGets(port, 60);
  assert.deepEqual([...new Set(replies.map((r) => r.status))], [200], 'no worker sends to the ejected backend');
  assert.equal(served(bad!), before);
  // The ejecting worker's timer ends it; the primary hears and tells the others.
  const deadline = performance.now() + 15_000;
  while ((await badState()).length > 0 && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
  assert.deepEqual(await badState(), [], 'the ejection ended');
  await freshGets(port, 30);
  assert.ok(served(bad!) > before, 'the backend is back in rotation');
});
