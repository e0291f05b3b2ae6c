import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { request } from 'undici';
import { cleanupFor } from '../helpers/cleanup.js';
import { localConfig, startConfigured } from '../helpers/config.js';
import { startBackend } from '../helpers/servers.js';

async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  const response = await request(url, { headers });
  return { status: response.statusCode, body: await response.body.text() };
}

describe('routes and listeners from a config', () => {
  test('host and path-prefix routes send requests to their upstreams; no match is 404', async (t) => {
    const cleanup = cleanupFor(t);
    const [web, api, admin] = await Promise.all(['web', 'api', 'admin'].map((name) => startBackend(name)));
    for (const b of [web, api, admin]) cleanup(() => b?.close());
    const lb = await startConfigured({
      config: localConfig(
        { web: { backends: [web!.url] }, api: { backends: [api!.url] }, admin: { backends: [admin!.url] } },
        {
          routes: [
            { host: 'admin.example', upstream: 'admin' },
            { pathPrefix: '/api/', upstream: 'api' },
            { host: 'www.example', upstream: 'web' },
          ],
        },
      ),
    });
    cleanup(() => lb.close());
    assert.deepEqual(await get(`${lb.url}/api/users`, { host: 'www.example' }), { status: 200, body: 'web' }, 'a host route wins over a path route for any host');
    assert.deepEqual(await get(`${lb.url}/api/users`, { host: 'other.example' }), { status: 200, body: 'api' });
    assert.deepEqual(await get(`${lb.url}/anything`, { host: 'ADMIN.example:8080' }), { status: 200, body: 'admin' }, 'host matching ignores case and port');
    assert.deepEqual(await get(`${lb.url}/api`, { host: 'other.example' }), { status: 404, body: 'Not Found\n' }, '/api/ does not match /api');
    assert.equal(api!.seen.length, 1);
  });

  test('every listener serves, each from the same routes', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await startBackend('one');
    cleanup(() => backend.close());
    const lb = await startConfigured({
      config: { listeners: [{ host: '127.0.0.1', port: 0 }, { host: '127.0.0.1', port: 0, clientKeepAlive: '5s' }], admin: false, upstreams: { web: { backends: [backend.url] } } },
    });
    cleanup(() => lb.close());
    assert.equal(lb.urls.length, 2);
    assert.notEqual(lb.urls[0], lb.urls[1]);
    for (const url of lb.urls) assert.deepEqual(await get(`${url}/`), { status: 200, body: 'one' });
  });

  test('the access log writes one line per request with upstream, backend, status, attempts, duration and bytes', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await startBackend('hello');
    cleanup(() => backend.close());
    const lb = await startConfigured({ config: localConfig({ web: { backends: [backend.url] } }, { log: { access: true } }) });
    cleanup(() => lb.close());
    assert.equal((await get(`${lb.url}/path?q=1`)).status, 200);
    const line = lb.logs.find((entry) => entry['access'] === true);
    assert.ok(line !== undefined, 'an access-log line');
    assert.equal(line['msg'], 'GET /path?q=1 200');
    assert.equal(line['upstream'], 'web');
    assert.equal(line['backend'], backend.url);
    assert.equal(line['status'], 200);
    assert.equal(line['attempts'], 1);
    assert.equal(line['bytes'], 5);
    assert.equal(line['client'], '127.0.0.1');
    assert.equal(typeof line['durationMs'], 'number');
  });

  test('with the access log off, no per-request line is written', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await startBackend('hello');
    cleanup(() => backend.close());
    const lb = await startConfigured({ config: localConfig({ web: { backends: [backend.url] } }) });
    cleanup(() => lb.close());
    for (let i = 0; i < 3; i++) assert.equal((await get(`${lb.url}/`)).status, 200);
    assert.equal(lb.logs.filter((entry) => entry['access'] === true).length, 0);
  });
});
