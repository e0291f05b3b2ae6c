import assert from 'node:assert/strict';
import type http from 'node:http';
import { describe, test } from 'node:test';
import { request } from 'undici';
import { startFromConfig } from '../../src/index.js';
import { readinessOf } from '../../src/readiness.js';
import { spawnCli } from '../helpers/cli.js';
import { cleanupFor } from '../helpers/cleanup.js';
import { startConfigured } from '../helpers/config.js';
import { startHoldingBackend } from '../helpers/faults.js';
import { recordingLogger } from '../helpers/health.js';
import { startBackend, until } from '../helpers/servers.js';

async function probe(url: string, method: 'GET' | 'HEAD' | 'POST' = 'GET'): Promise<{ status: number; json: any }> {
  const response = await request(url, { method });
  const text = await response.body.text();
  return { status: response.statusCode, json: text === '' ? null : JSON.parse(text) };
}

describe('GET /live and GET /ready on the admin listener', () => {
  test('after start: both 200 without the admin token, while the API still wants it', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await startBackend('a');
    cleanup(() => backend.close());
    const lb = await startConfigured({
      config: { listeners: [{ host: '127.0.0.1', port: 0 }], admin: { host: '127.0.0.1', port: 0, token: 'admin-secret' }, upstreams: { web: { backends: [backend.url] } } },
    });
    cleanup(() => lb.close());
    const admin = lb.adminUrl as string;
    assert.deepEqual(await probe(`${admin}/live`), { status: 200, json: { live: true } });
    assert.deepEqual(await probe(`${admin}/ready`), { status: 200, json: { ready: true, reason: 'ready' } });
    assert.deepEqual(await probe(`${admin}/ready`, 'HEAD'), { status: 200, json: null });
    assert.equal((await probe(`${admin}/ready`, 'POST')).status, 405);
    assert.equal((await probe(`${admin}/api/status`)).status, 401, 'the rest of the admin API still needs the token');
  });

  test('503 until the first health-check round has finished, /live 200 meanwhile', async (t) => {
    const cleanup = cleanupFor(t);
    // The backend's health endpoint hangs until released, so the first round cannot finish.
    const heldChecks: http.ServerResponse[] = [];
    const backend = await startBackend('a', (req, res) => {
      req.resume();
      if (req.url === '/health') heldChecks.push(res);
      else res.end('a');
    });
    cleanup(() => backend.close());
    const { logger, logs } = recordingLogger();
    const starting = startFromConfig(
      {
        config: {
          listeners: [{ host: '127.0.0.1', port: 0 }],
          admin: { host: '127.0.0.1', port: 0 },
          upstreams: { web: { backends: [backend.url], healthCheck: { type: 'http', path: '/health', timeout: '30s', interval: '1m' } } },
        },
      },
      { log: logger, watch: false },
    );
    cleanup(async () => (await starting).close());
    await until(() => heldChecks.length > 0 && logs.some((e) => typeof e['admin'] === 'string'), 10_000, 'the admin listener and a held health check');
    const admin = logs.find((e) => typeof e['admin'] === 'string')?.['admin'] as string;
    const early = await probe(`${admin}/ready`);
    assert.equal(early.status, 503);
    assert.deepEqual(early.json, { ready: false, reason: 'starting: first health-check round not finished' });
    assert.equal((await probe(`${admin}/live`)).status, 200);
    for (const res of heldChecks) res.end('ok');
    const lb = await starting;
    assert.equal(lb.adminUrl, admin);
    assert.equal((await probe(`${admin}/ready`)).status, 200);
  });

  test('503 after SIGTERM while in-flight requests drain (CLI), then exit 0', { timeout: 30_000 }, async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await startHoldingBackend('slow');
    cleanup(() => backend.close());
    const cli = spawnCli(['--backends', backend.url, '--port', '0', '--host', '127.0.0.1', '--admin', '127.0.0.1:0', '--grace', '20s'], cleanup);
    const port = await cli.started();
    const admin = (await cli.waitForLog('Admin API'))['admin'] as string;
    assert.equal((await probe(`${admin}/ready`)).status, 200);
    const inFlight = request(`http://127.0.0.1:${port}/slow`).then(async (r) => ({ status: r.statusCode, body: await r.body.text() }));
    await until(() => backend.held.length > 0, 5000, 'a request held by the backend');
    cli.child.kill('SIGTERM');
    await cli.waitForLog('SIGTERM received');
    const draining = await probe(`${admin}/ready`);
    assert.equal(draining.status, 503);
    assert.deepEqual(draining.json, { ready: false, reason: 'shutting down: draining in-flight requests' });
    assert.equal((await probe(`${admin}/live`)).status, 200, 'still live while it drains');
    (backend.held[0] as http.ServerResponse).end('done');
    assert.deepEqual(await inFlight, { status: 200, body: 'done' });
    const [code] = await cli.exited;
    assert.equal(code, 0);
  });

  test('the reasons, first one wins: draining, listeners, health, discovery', () => {
    const all = { draining: false, listening: true, firstHealthRoundDone: true, awaitingDiscovery: [] };
    assert.deepEqual(readinessOf(all), { ok: true, reason: 'ready' });
    assert.match(readinessOf({ ...all, awaitingDiscovery: ['web', 'api'] }).reason, /first discovery update of web, api$/);
    assert.match(readinessOf({ ...all, listening: false, firstHealthRoundDone: false }).reason, /listeners not bound/);
    assert.match(readinessOf({ ...all, draining: true, listening: false }).reason, /^shutting down/);
  });
});
