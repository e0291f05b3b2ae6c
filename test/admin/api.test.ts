import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { request } from 'undici';
import { ConfigError, start } from '../../src/index.js';
import { cleanupFor } from '../helpers/cleanup.js';
import { localConfig, startConfigured } from '../helpers/config.js';
import { startH2Backend } from '../helpers/h2.js';
import { startBackend } from '../helpers/servers.js';

const dir = mkdtempSync(join(tmpdir(), 'swy-admin-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function call(url: string, method = 'GET', headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; json: any }> {
  const response = await request(url, { method: method as 'GET', headers });
  const text = await response.body.text();
  return { status: response.statusCode, headers: response.headers, json: text.startsWith('{') ? JSON.parse(text) : text };
}

async function twoBackends(t: import('node:test').TestContext) {
  const cleanup = cleanupFor(t);
  const [a, b] = await Promise.all([startBackend('a'), startBackend('b')]);
  cleanup(() => a.close());
  cleanup(() => b.close());
  const file = join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
  const yaml = (urls: string[]) => `listeners: [{ host: 127.0.0.1, port: 0 }]\nadmin: { host: 127.0.0.1, port: 0 }\nwatch: false\nupstreams:\n  web:\n    backends: [${urls.join(', ')}]\n`;
  writeFileSync(file, yaml([a.url, b.url]));
  const lb = await startConfigured({ file });
  cleanup(() => lb.close());
  assert.ok(lb.adminUrl !== null);
  return { a, b, lb, admin: lb.adminUrl, file, yaml, cleanup };
}

describe('admin API', () => {
  test('status: version, uptime, listeners, config digest and source', async (t) => {
    const { lb, admin, file } = await twoBackends(t);
    const { status, json } = await call(`${admin}/api/status`);
    assert.equal(status, 200);
    assert.equal(json.version, '0.1.0');
    assert.equal(typeof json.uptimeSeconds, 'number');
    assert.deepEqual(json.listeners, [{ address: '127.0.0.1', port: lb.address.port, url: lb.url, tunnels: { open: 0, total: 0, bytesIn: 0, bytesOut: 0 } }]);
    assert.match(json.config.digest, /^[0-9a-f]{64}$/);
    assert.equal(json.config.source, file);
    assert.deepEqual(json.reloads, { ok: 0, failed: 0, last: null });
  });

  test('upstreams list each backend with state, counters, latency and health', async (t) => {
    const { a, lb, admin } = await twoBackends(t);
    for (let i = 0; i < 4; i++) await (await request(`${lb.url}/`)).body.text();
    const { status, json } = await call(`${admin}/api/upstreams`);
    assert.equal(status, 200);
    const [web] = json.upstreams;
    assert.equal(web.name, 'web');
    assert.equal(web.balancer, 'round-robin');
    const first = web.backends[0];
    assert.equal(first.url, a.url);
    assert.equal(first.id, encodeURIComponent(a.url));
    assert.equal(first.protocol, 'http1');
    assert.equal(first.state, 'up');
    assert.deepEqual(first.reasons, []);
    assert.equal(first.requestsTotal, 2);
    assert.equal(first.responses['2xx'], 2);
    assert.ok(first.latencyMs.p50 > 0 && first.latencyMs.p99 >= first.latencyMs.p50);
    assert.equal(first.health.last.ok, true, 'the start-up health check is recorded');
    assert.equal(first.health.history.length, 1);
    assert.equal((await call(`${admin}/api/upstreams/web`)).json.name, 'web');
  });

  test("each backend shows its upstream's protocol", async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await startH2Backend('h2');
    cleanup(() => backend.close());
    const lb = await startConfigured({ config: localConfig({ grpc: { backends: [backend.url], protocol: 'h2c' } }, { admin: { host: '127.0.0.1', port: 0 } }) });
    cleanup(() => lb.close());
    const { json } = await call(`${lb.adminUrl}/api/upstreams/grpc`);
    assert.equal(json.backends[0].protocol, 'h2c');
  });

  test('drain, disable and enable a backend; unknown names are 404, wrong methods 405', async (t) => {
    const { a, b, lb, admin } = await twoBackends(t);
    const id = encodeURIComponent(a.url);
    const drained = await call(`${admin}/api/upstreams/web/backends/${id}/drain`, 'POST');
    assert.equal(drained.status, 200);
    assert.equal(drained.json.backend.state, 'draining');
    for (let i = 0; i < 4; i++) assert.equal(await (await request(`${lb.url}/`)).body.text(), 'b');
    assert.equal((await call(`${admin}/api/upstreams/web/backends/${id}/disable`, 'POST')).json.backend.state, 'disabled');
    const enabled = await call(`${admin}/api/upstreams/web/backends/${id}/enable`, 'POST');
    assert.equal(enabled.json.backend.state, 'up');
    const answers = new Set<string>();
    for (let i = 0; i < 4; i++) answers.add(await (await request(`${lb.url}/`)).body.text());
    assert.deepEqual([...answers].sort(), ['a', 'b']);

    assert.equal((await call(`${admin}/api/upstreams/nope`)).status, 404);
    assert.match((await call(`${admin}/api/upstreams/nope/backends/${id}/drain`, 'POST')).json.error, /no upstream named "nope"/);
    assert.match((await call(`${admin}/api/upstreams/web/backends/${encodeURIComponent('http://127.0.0.1:1')}/drain`, 'POST')).json.error, /has no backend/);
    assert.equal((await call(`${admin}/api/upstreams/web/backends/${id}/explode`, 'POST')).status, 404);
    const wrong = await call(`${admin}/api/upstreams/web/backends/${encodeURIComponent(b.url)}/drain`, 'GET');
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers['allow'], 'POST');
    assert.equal((await call(`${admin}/api/status`, 'DELETE')).status, 405);
    assert.equal((await call(`${admin}/nothing-here`)).status, 404);
  });

  test('POST /api/reload applies the file; a broken file is 422 and changes nothing', async (t) => {
    const { a, lb, admin, file, yaml } = await twoBackends(t);
    writeFileSync(file, yaml([a.url]));
    const ok = await call(`${admin}/api/reload`, 'POST');
    assert.equal(ok.status, 200);
    assert.equal(ok.json.ok, true);
    assert.equal(lb.upstream.backends.length, 1);
    writeFileSync(file, 'upstreams:\n  web:\n    backends: []\n');
    const bad = await call(`${admin}/api/reload`, 'POST');
    assert.equal(bad.status, 422);
    assert.match(bad.json.error, /:3:\d+ upstreams\.web\.backends/);
    assert.equal(lb.upstream.backends.length, 1);
    const status = (await call(`${admin}/api/status`)).json;
    assert.equal(status.reloads.ok, 1);
    assert.equal(status.reloads.failed, 1);
    assert.equal(status.reloads.last.ok, false);
    assert.equal((await call(`${admin}/api/reload`, 'GET')).status, 405);
  });

  test('POST /api/reload names the changed settings that need a restart', async (t) => {
    const { a, b, admin, file } = await twoBackends(t);
    assert.deepEqual((await call(`${admin}/api/reload`, 'POST')).json.ignored, []);
    writeFileSync(file, `listeners: [{ host: 127.0.0.1, port: 0, maxHeaderSize: 32KiB }]\nadmin: { host: 127.0.0.1, port: 0, token: new-token }\nwatch: false\nupstreams:\n  web:\n    backends: [${a.url}, ${b.url}]\n`);
    // The token change is not applied either: the old (no token) admin listener answers.
    const reply = await call(`${admin}/api/reload`, 'POST');
    assert.equal(reply.status, 200);
    assert.equal(reply.json.ok, true);
    assert.deepEqual(reply.json.ignored, ['listeners[0].maxHeaderSize', 'admin.token']);
    assert.equal(reply.json.warning, 'not applied until a restart: listeners[0].maxHeaderSize, admin.token');
  });

  test('GET /metrics counts proxied requests by upstream, backend, method and class', async (t) => {
    const { a, lb, admin } = await twoBackends(t);
    for (let i = 0; i < 4; i++) await (await request(`${lb.url}/some/raw/path?id=${i}`)).body.text();
    const response = await request(`${admin}/metrics`);
    assert.equal(response.statusCode, 200);
    assert.match(String(response.headers['content-type']), /^text\/plain/);
    const text = await response.body.text();
    assert.match(text, new RegExp(`switchyard_requests_total\\{[^}]*upstream="web"[^}]*backend="${a.url.replace(/[.]/g, '\\.')}"[^}]*\\} 2`));
    assert.match(text, /switchyard_backend_up\{[^}]*\} 1/);
    assert.match(text, /switchyard_request_duration_seconds_bucket/);
    assert.doesNotMatch(text, /some\/raw\/path/, 'no raw paths in labels');
  });

  test('GET / serves the dashboard page', async (t) => {
    const { admin } = await twoBackends(t);
    const response = await request(`${admin}/`);
    assert.equal(response.statusCode, 200);
    assert.match(String(response.headers['content-type']), /^text\/html/);
    assert.match(await response.body.text(), /<!doctype html>/i);
  });

  test('a token, when set, is required on the API and /metrics', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await startBackend('one');
    cleanup(() => backend.close());
    const lb = await start({ backends: [backend.url], host: '127.0.0.1', port: 0, admin: { host: '127.0.0.1', port: 0, token: 's3cret-token' }, log: { level: 'silent' } });
    cleanup(() => lb.close());
    const denied = await call(`${lb.adminUrl}/api/status`);
    assert.equal(denied.status, 401);
    assert.match(String(denied.headers['www-authenticate']), /^Bearer/);
    assert.equal((await call(`${lb.adminUrl}/api/status`, 'GET', { authorization: 'Bearer wrong' })).status, 401);
    assert.equal((await call(`${lb.adminUrl}/metrics`)).status, 401);
    assert.equal((await call(`${lb.adminUrl}/api/status`, 'GET', { authorization: 'Bearer s3cret-token' })).status, 200);
  });

  test('the Authorization scheme is case-insensitive (RFC 9110 section 11.1)', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await startBackend('one');
    cleanup(() => backend.close());
    const lb = await start({ backends: [backend.url], host: '127.0.0.1', port: 0, admin: { host: '127.0.0.1', port: 0, token: 's3cret-token' }, log: { level: 'silent' } });
    cleanup(() => lb.close());
    for (const authorization of ['bearer s3cret-token', 'BEARER s3cret-token', 'BeArEr s3cret-token', 'Bearer  s3cret-token']) {
      assert.equal((await call(`${lb.adminUrl}/api/status`, 'GET', { authorization })).status, 200, authorization);
    }
    for (const authorization of ['bearer wrong', 'Bearers3cret-token', 'Basic s3cret-token', 'bearer ', 's3cret-token']) {
      assert.equal((await call(`${lb.adminUrl}/api/status`, 'GET', { authorization })).status, 401, authorization);
    }
  });

  test('an admin listener on a public address without a token refuses to start', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await startBackend('one');
    cleanup(() => backend.close());
    const saved = process.env['SWITCHYARD_ADMIN_TOKEN'];
    delete process.env['SWITCHYARD_ADMIN_TOKEN'];
    cleanup(() => {
      if (saved !== undefined) process.env['SWITCHYARD_ADMIN_TOKEN'] = saved;
    });
    await assert.rejects(
      start({ backends: [backend.url], host: '127.0.0.1', port: 0, admin: { host: '0.0.0.0', port: 0 }, log: { level: 'silent' } }),
      (err: Error) => err instanceof ConfigError && /admin listener on 0\.0\.0\.0 is not loopback/.test(err.message),
    );
  });
});
