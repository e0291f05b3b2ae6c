import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { cliPath, spawnCli } from '../helpers/cli.js';
import { cleanupFor } from '../helpers/cleanup.js';
import { closeServer, until } from '../helpers/servers.js';
import { adminJson, countingBackends, freshGets, served, startCluster, workersOf } from './cluster-helpers.js';

const dir = mkdtempSync(path.join(tmpdir(), 'swy-workers-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function runCli(args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [cliPath, ...args], { encoding: 'utf8', timeout: 10_000, killSignal: 'SIGKILL' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

async function takenPort(cleanup: (fn: () => unknown) => void): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup(() => closeServer(server));
  return (server.address() as AddressInfo).port;
}

test('validate checks workers; --workers takes a count or auto', () => {
  const file = path.join(dir, 'bad.yaml');
  writeFileSync(file, 'workers: 0\nupstreams:\n  web:\n    backends: [http://127.0.0.1:1]\n');
  const bad = runCli(['validate', file]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:1:10 workers: .+\n$`));
  writeFileSync(file, 'workers: auto\nupstreams:\n  web:\n    backends: [http://127.0.0.1:1]\n');
  assert.equal(runCli(['validate', file]).status, 0);
  const flag = runCli(['--backends', 'http://127.0.0.1:1', '--workers', 'two']);
  assert.equal(flag.status, 2);
  assert.equal(flag.stderr, 'switchyard: --workers: "two" must be a whole number from 1 to 256, or auto\n');
});

test('2 workers on a port in use: one line, exit 2', { timeout: 30_000 }, async (t) => {
  const cleanup = cleanupFor(t);
  const port = await takenPort(cleanup);
  const cli = spawnCli(['--workers', '2', '--backends', 'http://127.0.0.1:1', '--host', '127.0.0.1', '--port', String(port)], cleanup);
  const [code] = await cli.exited;
  assert.equal(code, 2);
  assert.equal(cli.stderr(), `switchyard: port ${port} is already in use\n`);
});

test('a reload no worker can apply fails as a whole and the running config keeps serving', { timeout: 60_000 }, async (t) => {
  const cleanup = cleanupFor(t);
  const backends = await countingBackends(['a'], cleanup);
  const taken = await takenPort(cleanup);
  const file = path.join(dir, 'reload.yaml');
  const text = (ports: readonly number[]): string =>
    ['workers: 2', 'watch: false', `listeners: [${ports.map((p) => `{ host: 127.0.0.1, port: ${p} }`).join(', ')}]`, 'admin: { host: 127.0.0.1, port: 0 }', 'upstreams:', '  web:', `    backends: [${backends[0]!.url}]`, ''].join('\n');
  writeFileSync(file, text([0]));
  const { port, admin } = await startCluster(['--config', file], cleanup);
  writeFileSync(file, text([0, taken]));
  const res = await fetch(`${admin}/api/reload`, { method: 'POST', signal: AbortSignal.timeout(20_000) });
  assert.equal(res.status, 422);
  assert.match(((await res.json()) as { error: string }).error, new RegExp(`^worker \\d: port ${taken} is already in use`));
  const status = (await adminJson(admin, '/api/status')) as { reloads: { failed: number; ok: number } };
  assert.deepEqual([status.reloads.ok, status.reloads.failed], [0, 1]);
  assert.deepEqual([...new Set((await freshGets(port, 20)).map((r) => r.status))], [200]);
});

test('a reload one worker never answers is undone on every worker, the silent one included', { timeout: 90_000 }, async (t) => {
  const cleanup = cleanupFor(t);
  const [a, b] = await countingBackends(['a', 'b'], cleanup);
  const file = path.join(dir, 'silent.yaml');
  const text = (url: string): string => ['workers: 2', 'watch: false', 'listeners: [{ host: 127.0.0.1, port: 0 }]', 'admin: { host: 127.0.0.1, port: 0 }', 'upstreams:', '  web:', `    backends: [${url}]`, ''].join('\n');
  writeFileSync(file, text(a!.url));
  const { cli, port, admin } = await startCluster(['--config', file], cleanup);
  const silent = (await workersOf(admin)).find((w) => w.pid !== null);
  assert.ok(silent !== undefined);
  const pid = silent.pid as number;
  // Stopped, the worker takes no part in the reload; startCluster's clean-up kills it even so.
  process.kill(pid, 'SIGSTOP');
  let stopped = true;
  cleanup(() => stopped && process.kill(pid, 'SIGCONT'));
  writeFileSync(file, text(b!.url));
  const res = await fetch(`${admin}/api/reload`, { method: 'POST', signal: AbortSignal.timeout(40_000) });
  assert.equal(res.status, 422);
  assert.match(((await res.json()) as { error: string }).error, new RegExp(`^worker ${silent.id}: no answer within \\d+s \\(1 other worker went back to the running config\\)`));
  process.kill(pid, 'SIGCONT');
  stopped = false;
  // Once running, it applies what it was sent in order: the new config, then the old one again.
  const undone = () => cli.logs().filter((e) => e['worker'] === silent.id && String(e['msg']).startsWith('config reloaded (api'));
  await until(() => undone().length === 2, 20_000, 'the silent worker to apply the reload and its undoing');
  assert.deepEqual(undone().map((e) => e['source']), ['api', 'api, undone']);
  const before = served(a!);
  const replies = await freshGets(port, 60);
  assert.deepEqual([...new Set(replies.map((r) => r.status))], [200]);
  assert.equal(served(b!), 0);
  assert.equal(served(a!) - before, 60);
});
