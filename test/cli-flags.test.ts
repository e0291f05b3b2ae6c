import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { request } from 'undici';
import { spawnCli, type CliProcess } from './helpers/cli.js';
import { cleanupFor } from './helpers/cleanup.js';
import { startBackend, until } from './helpers/servers.js';

/**
 * The quick start (`--demo`) and CLI switches that only the CLI process exercises end to end:
 * `--no-preserve-host` and `--access-log`.
 */

/** SIGTERM, then the exit code and signal (bounded: 10 s). */
async function terminate(cli: CliProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  cli.child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the CLI did not exit within 10 s; stderr: ${cli.stderr()}`)), 10_000);
  });
  try {
    const [code, signal] = await Promise.race([cli.exited, late]);
    return { code, signal };
  } finally {
    clearTimeout(timer);
  }
}

describe('switchyard --demo', () => {
  test('starts three demo backends, balances over them, and exits 0 on SIGTERM', async (t) => {
    const cleanup = cleanupFor(t);
    const cli = spawnCli(['--demo', '--port', '0', '--host', '127.0.0.1'], cleanup);
    const port = await cli.started();
    // The banner follows once the first health check round is done.
    const banner = `Switchyard demo: http://127.0.0.1:${port} balances over`;
    await until(() => cli.stdout().includes(banner), 10_000, 'the demo banner');

    const answers: string[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await request(`http://127.0.0.1:${port}/hello`);
      const body = await res.body.text();
      assert.equal(res.statusCode, 200);
      assert.equal(body, `Hello from ${String(res.headers['x-backend'])} (GET /hello)\n`);
      answers.push(String(res.headers['x-backend']));
    }
    // Round-robin over three distinct backends, twice.
    assert.deepEqual([...new Set(answers)].sort(), ['demo-backend-1', 'demo-backend-2', 'demo-backend-3']);
    assert.deepEqual(answers.slice(3), answers.slice(0, 3));
    assert.ok(cli.stdout().includes(`${banner} 3 demo backends.`), cli.stdout());

    assert.deepEqual(await terminate(cli), { code: 0, signal: null });
    assert.equal(cli.stderr(), '');
  });
});

describe('CLI switches', () => {
  test('--no-preserve-host: the backend gets its own host:port as Host, the client\'s in X-Forwarded-Host', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await startBackend('a');
    cleanup(() => backend.close());
    const cli = spawnCli(['--backends', backend.url, '--port', '0', '--host', '127.0.0.1', '--no-preserve-host'], cleanup);
    const port = await cli.started();
    const res = await request(`http://127.0.0.1:${port}/`, { headers: { host: 'shop.example' } });
    assert.equal(await res.body.text(), 'a');
    const seen = backend.seen.at(-1);
    assert.equal(seen?.headers.host, `127.0.0.1:${backend.port}`);
    assert.equal(seen?.headers['x-forwarded-host'], 'shop.example');
    assert.deepEqual(await terminate(cli), { code: 0, signal: null });
  });

  test('without --no-preserve-host the client\'s Host goes through, and without --access-log no request is logged', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await startBackend('a');
    cleanup(() => backend.close());
    const cli = spawnCli(['--backends', backend.url, '--port', '0', '--host', '127.0.0.1'], cleanup);
    const port = await cli.started();
    const res = await request(`http://127.0.0.1:${port}/quiet`, { headers: { host: 'shop.example' } });
    assert.equal(await res.body.text(), 'a');
    assert.equal(backend.seen.at(-1)?.headers.host, 'shop.example');
    assert.deepEqual(await terminate(cli), { code: 0, signal: null });
    assert.deepEqual(cli.logs().filter((e) => e['access'] === true), []);
  });

  test('--access-log: one line per request on stdout, with its method, path, status and backend', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await startBackend('a');
    cleanup(() => backend.close());
    const cli = spawnCli(['--backends', backend.url, '--port', '0', '--host', '127.0.0.1', '--access-log'], cleanup);
    const port = await cli.started();
    for (const path of ['/first?q=1', '/second']) {
      const res = await request(`http://127.0.0.1:${port}${path}`, { headers: { host: 'shop.example' } });
      assert.equal(await res.body.text(), 'a');
    }
    const line = await cli.waitForLog('GET /second 200');
    assert.equal((await cli.waitForLog('GET /first?q=1 200'))['path'], '/first?q=1');
    assert.deepEqual(
      { access: line['access'], method: line['method'], host: line['host'], path: line['path'], status: line['status'], backend: line['backend'], attempts: line['attempts'] },
      { access: true, method: 'GET', host: 'shop.example', path: '/second', status: 200, backend: backend.url, attempts: 1 },
    );
    assert.deepEqual(await terminate(cli), { code: 0, signal: null });
    assert.equal(cli.logs().filter((e) => e['access'] === true).length, 2, 'one line per request, no more');
  });
});
