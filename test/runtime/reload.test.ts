import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Agent, request } from 'undici';
import type { ConfigInput } from '../../src/index.js';
import { DownReason } from '../../src/index.js';
import { spawnCli } from '../helpers/cli.js';
import { cleanupFor } from '../helpers/cleanup.js';
import { localConfig, startConfigured } from '../helpers/config.js';
import { startHoldingBackend } from '../helpers/faults.js';
import { deadPort, startBackend, until } from '../helpers/servers.js';

const dir = mkdtempSync(join(tmpdir(), 'swy-reload-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('reload', () => {
  test('keeps the state of backends that stay, drains removed ones and lets their requests finish', async (t) => {
    const cleanup = cleanupFor(t);
    const hold = await startHoldingBackend('hold');
    const [live, added] = await Promise.all([startBackend('live'), startBackend('added')]);
    for (const b of [hold, live, added]) cleanup(() => b.close());
    const lb = await startConfigured({ config: localConfig({ web: { backends: [hold.url, live.url] } }) });
    cleanup(() => lb.close());

    // One request parks on the holding backend; the next goes to the live one.
    const parked = request(`${lb.url}/parked`);
    await until(() => hold.held.length === 1, 5000, 'a request held by the backend');
    assert.equal((await request(`${lb.url}/`)).statusCode, 200);
    const liveBackend = lb.upstream.backends.find((b) => b.url === live.url);
    const holdBackend = lb.upstream.backends.find((b) => b.url === hold.url);
    assert.ok(liveBackend !== undefined && holdBackend !== undefined);
    liveBackend.markDown(DownReason.disabled);
    const liveRequests = liveBackend.requestsTotal;

    const result = await lb.reload(localConfig({ web: { backends: [live.url, added.url] } }));
    assert.equal(result.ok, true, result.error);
    assert.deepEqual([result.added, result.removed], [1, 1]);
    assert.equal(lb.upstream.backends[0], liveBackend, 'the same Backend object, live state and all');
    assert.equal(liveBackend.requestsTotal, liveRequests);
    assert.equal(liveBackend.downReasons, DownReason.disabled, 'an operator disable survives the reload');
    assert.equal(holdBackend.downReasons & DownReason.draining, DownReason.draining);

    for (let i = 0; i < 4; i++) assert.equal(await (await request(`${lb.url}/`)).body.text(), 'added');
    assert.equal(hold.seen.length, 1, 'the removed backend got nothing new');
    (hold.held[0] as import('node:http').ServerResponse).end('finished');
    const response = await parked;
    assert.equal(response.statusCode, 200);
    assert.equal(await response.body.text(), 'finished', 'the in-flight request on the removed backend finished');
  });

  test('a config that fails validation changes nothing and says why', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await startBackend('one');
    cleanup(() => backend.close());
    const lb = await startConfigured({ config: localConfig({ web: { backends: [backend.url] } }) });
    cleanup(() => lb.close());
    const before = lb.upstream;
    const result = await lb.reload(localConfig({ web: { backends: [backend.url], balancer: 'fastest' as 'p2c' } }));
    assert.equal(result.ok, false);
    assert.match(result.error, /upstreams\.web\.balancer/);
    assert.equal(lb.upstream, before);
    const logged = lb.logs.find((e) => String(e['msg']).startsWith('config reload (library) failed'));
    assert.ok(logged !== undefined, 'the failure is logged');
    assert.equal((await request(`${lb.url}/`)).statusCode, 200);
  });

  test('20 reloads under a steady stream of requests: zero failed requests', async (t) => {
    const cleanup = cleanupFor(t);
    const backends = await Promise.all(['a', 'b', 'c', 'd'].map((name) => startBackend(name)));
    for (const b of backends) cleanup(() => b.close());
    const urls = backends.map((b) => b.url);
    const configs: ConfigInput[] = [
      localConfig({ web: { backends: urls.slice(0, 3) } }),
      localConfig({ web: { backends: urls.slice(1, 4), balancer: 'least-conn' } }),
      localConfig({ web: { backends: [{ url: urls[0] as string, weight: 3 }, urls[3] as string], balancer: 'weighted-round-robin' } }),
      localConfig({ web: { backends: urls, balancer: 'p2c', timeouts: { upstreamKeepAlive: '2s' } } }),
    ];
    const lb = await startConfigured({ config: configs[0] as ConfigInput });
    cleanup(() => lb.close());
    const agent = new Agent({ connections: 8 });
    cleanup(() => agent.close());

    const statuses = new Map<number, number>();
    const errors: string[] = [];
    let done = 0;
    let stop = false;
    const client = async (): Promise<void> => {
      while (!stop) {
        try {
          const response = await request(`${lb.url}/`, { dispatcher: agent });
          await response.body.text();
          statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1);
        } catch (err) {
          errors.push((err as Error).message);
        }
        done++;
      }
    };
    const clients = Array.from({ length: 6 }, client);
    try {
      for (let i = 1; i <= 20; i++) {
        const mark = done;
        await until(() => done >= mark + 25, 10_000, 'requests between reloads');
        const result = await lb.reload(configs[i % configs.length] as ConfigInput);
        assert.equal(result.ok, true, result.error);
      }
      const mark = done;
      await until(() => done >= mark + 25, 10_000, 'requests after the last reload');
    } finally {
      stop = true;
      await Promise.all(clients);
    }
    t.diagnostic(`20 reloads: ${done} requests, statuses ${JSON.stringify(Object.fromEntries(statuses))}, ${errors.length} errors`);
    assert.deepEqual(errors, []);
    assert.deepEqual([...statuses.keys()], [200], 'every request answered 200');
    assert.ok(done >= 20 * 25);
  });

  test('listeners added by a reload open, removed ones close', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await startBackend('one');
    cleanup(() => backend.close());
    const lb = await startConfigured({ config: localConfig({ web: { backends: [backend.url] } }) });
    cleanup(() => lb.close());
    const first = lb.address.port;
    // A second listener on a fixed free port (taken from a port-0 bind of our own).
    const probe = await startBackend('probe');
    const port = probe.port;
    await probe.close();
    const two = { ...localConfig({ web: { backends: [backend.url] } }), listeners: [{ host: '127.0.0.1', port: 0 }, { host: '127.0.0.1', port }] };
    assert.equal((await lb.reload(two)).ok, true);
    assert.equal(await (await request(`http://127.0.0.1:${port}/`)).body.text(), 'one');
    assert.equal((await lb.reload(localConfig({ web: { backends: [backend.url] } }))).ok, true);
    await assert.rejects(request(`http://127.0.0.1:${port}/`, { dispatcher: new Agent({ pipelining: 0 }) }), /ECONNREFUSED/);
    assert.equal(await (await request(`http://127.0.0.1:${first}/`)).body.text(), 'one', 'the kept listener still serves');
  });

  test('a reload whose new listener cannot bind fails, says why, and leaves the running listeners and config in force', async (t) => {
    const cleanup = cleanupFor(t);
    const one = await startBackend('one');
    cleanup(() => one.close());
    const two = await startBackend('two');
    cleanup(() => two.close());
    const lb = await startConfigured({ config: localConfig({ web: { backends: [one.url] } }) });
    cleanup(() => lb.close());
    const first = lb.address.port;
    // A port someone else holds, and a free one the reload opens before it reaches the taken one.
    const holder = await startBackend('holder');
    cleanup(() => holder.close());
    const free = await deadPort();
    const next: ConfigInput = {
      ...localConfig({ web: { backends: [two.url] } }),
      listeners: [{ host: '127.0.0.1', port: 0 }, { host: '127.0.0.1', port: free }, { host: '127.0.0.1', port: holder.port }],
    };

    const result = await lb.reload(next);
    assert.equal(result.ok, false);
    assert.equal(result.error, `port ${holder.port} is already in use`);
    assert.ok(
      lb.logs.some((e) => e['level'] === 50 && e['msg'] === `config reload (library) failed, keeping the running config: port ${holder.port} is already in use`),
      'the failure is logged in one line',
    );
    // The old listener serves with the old config; the listener opened on the way is closed again.
    for (let i = 0; i < 3; i++) assert.equal(await (await request(`http://127.0.0.1:${first}/`)).body.text(), 'one');
    await assert.rejects(request(`http://127.0.0.1:${free}/`, { dispatcher: new Agent({ pipelining: 0 }) }), /ECONNREFUSED/);
    assert.equal(await (await request(`http://127.0.0.1:${holder.port}/`)).body.text(), 'holder', 'the port stays its holder\'s');

    // Once the port is free, the same config applies.
    await holder.close();
    assert.equal((await lb.reload(next)).ok, true);
    assert.equal(await (await request(`http://127.0.0.1:${holder.port}/`)).body.text(), 'two');
    assert.equal(await (await request(`http://127.0.0.1:${first}/`)).body.text(), 'two');
  });

  test('settings that need a restart are named in a warning and in the result, until they are back', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await startBackend('one');
    cleanup(() => backend.close());
    const base = localConfig({ web: { backends: [backend.url] } });
    const lb = await startConfigured({ config: base });
    cleanup(() => lb.close());
    const changed: ConfigInput = {
      ...base,
      listeners: [
        { host: '127.0.0.1', port: 0, maxHeaderSize: '32KiB', maxConnections: 5, acceptBatch: 4, clientHeadersTimeout: '5s', trustedProxies: ['10.0.0.0/8'], ambiguousPaths: 'keep' },
        // A listener the reload opens takes its settings as they are: nothing to warn about.
        { host: '127.0.0.1', port: 0, maxHeaderSize: '8KiB' },
      ],
      admin: { host: '127.0.0.1', port: 0 },
      log: { format: 'pretty' },
    };
    const expected = ['listeners[0].clientHeadersTimeout', 'listeners[0].acceptBatch', 'listeners[0].trustedProxies', 'listeners[0].maxHeaderSize', 'listeners[0].maxConnections', 'listeners[0].ambiguousPaths', 'admin', 'log.format'];
    const result = await lb.reload(changed);
    assert.equal(result.ok, true, result.error);
    assert.deepEqual(result.ignored, expected);
    const warning = lb.logs.find((e) => e['level'] === 40 && String(e['msg']).startsWith('config reload (library) did not apply'));
    assert.ok(warning !== undefined, 'a warning is logged');
    assert.deepEqual(warning['ignored'], expected);
    assert.match(String(warning['msg']), /listeners\[0\]\.maxHeaderSize.*restart Switchyard/);
    // Still not in force on the next reload, so still named; back to the original: nothing.
    assert.deepEqual((await lb.reload(changed)).ignored, expected);
    assert.deepEqual((await lb.reload(base)).ignored, []);
  });

  test('saving the watched file reloads it; a broken save keeps the running config', async (t) => {
    const cleanup = cleanupFor(t);
    const [a, b] = await Promise.all([startBackend('a'), startBackend('b')]);
    for (const x of [a, b]) cleanup(() => x.close());
    const file = join(dir, 'watched.yaml');
    const yaml = (urls: string[]) => `listeners: [{ host: 127.0.0.1, port: 0 }]\nadmin: false\nupstreams:\n  web:\n    backends: [${urls.join(', ')}]\n`;
    writeFileSync(file, yaml([a.url]));
    const lb = await startConfigured({ file }, { watch: true });
    cleanup(() => lb.close());
    writeFileSync(file, yaml([a.url, b.url]));
    await until(() => lb.upstream.backends.length === 2, 5000, 'the file change to be applied');
    writeFileSync(file, 'upstreams: [oops\n');
    await until(() => lb.logs.some((e) => String(e['msg']).startsWith('config reload (file) failed')), 5000, 'the failed reload to be logged');
    assert.equal(lb.upstream.backends.length, 2, 'the running config stays');
    const failure = lb.logs.find((e) => String(e['msg']).startsWith('config reload (file) failed'));
    assert.ok(String(failure?.['error']).startsWith(`${file}:`), 'the error names the file');
    assert.match(String(failure?.['error']).slice(file.length), /^:\d+:\d+ /, 'and LINE:COL');
  });

  test('SIGHUP makes the CLI reload its config file', async (t) => {
    const cleanup = cleanupFor(t);
    const [a, b] = await Promise.all([startBackend('a'), startBackend('b')]);
    for (const x of [a, b]) cleanup(() => x.close());
    const file = join(dir, 'hup.yaml');
    const yaml = (url: string) => `listeners: [{ host: 127.0.0.1, port: 0 }]\nadmin: false\nwatch: false\nupstreams:\n  web:\n    backends: [${url}]\n`;
    writeFileSync(file, yaml(a.url));
    const cli = spawnCli(['--config', file], cleanup);
    const port = await cli.started();
    assert.equal(await (await request(`http://127.0.0.1:${port}/`)).body.text(), 'a');
    writeFileSync(file, yaml(b.url));
    cli.child.kill('SIGHUP');
    await cli.waitForLog('config reloaded (signal)');
    assert.equal(await (await request(`http://127.0.0.1:${port}/`)).body.text(), 'b');
    cli.child.kill('SIGTERM');
    const [code] = await cli.exited;
    assert.equal(code, 0);
  });
});
